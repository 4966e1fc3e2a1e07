package io.quotaauthority.provider;

import static org.assertj.core.api.Assertions.assertThat;

import io.quotaauthority.provider.Endpoints.Kind;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class EndpointsTest {

  @ParameterizedTest(name = "{0} {1} {2} -> {3}")
  @CsvSource(
      nullValues = "-",
      value = {
        // provider, method, path, kind, what (for not metered)
        "OPENAI, POST, /v1/chat/completions, METERED, -",
        "OPENAI, GET, /v1/chat/completions, FREE, -",
        "OPENAI, POST, /v1/chat/completions/chatcmpl-abc, FREE, -",
        "OPENAI, DELETE, /v1/chat/completions/chatcmpl-abc, FREE, -",
        "OPENAI, POST, /v1/completions, METERED, -",
        "OPENAI, POST, /v1/responses, METERED, -",
        "OPENAI, GET, /v1/responses/resp_123, FREE, -",
        "OPENAI, GET, /v1/responses/resp_123/input_items, FREE, -",
        "OPENAI, POST, /v1/responses/resp_123/cancel, FREE, -",
        "OPENAI, DELETE, /v1/responses/resp_123, FREE, -",
        "OPENAI, POST, /v1/responses/input_tokens, FREE, -",
        "OPENAI, POST, /v1/responses/resp_123, NOT_METERED, this endpoint",
        "OPENAI, POST, /v1/embeddings, METERED, -",
        "OPENAI, POST, /v1/moderations, FREE, -",
        "OPENAI, GET, /v1/models, FREE, -",
        "OPENAI, GET, /v1/models/ft:gpt-4o-mini:acme::abc123, FREE, -",
        "OPENAI, DELETE, /v1/models/ft:gpt-4o-mini:acme::abc123, FREE, -",
        "OPENAI, POST, /v1/files, FREE, -",
        "OPENAI, GET, /v1/files/file-abc/content, FREE, -",
        "OPENAI, DELETE, /v1/files/file-abc, FREE, -",
        "OPENAI, POST, /v1/uploads, FREE, -",
        "OPENAI, POST, /v1/uploads/upload_abc/parts, FREE, -",
        "OPENAI, POST, /v1/uploads/upload_abc/complete, FREE, -",
        "OPENAI, POST, /v1/uploads/upload_abc/cancel, FREE, -",
        "OPENAI, POST, /v1/batches, NOT_METERED, the Batch API",
        "OPENAI, GET, /v1/batches/batch_abc, FREE, -",
        "OPENAI, POST, /v1/batches/batch_abc/cancel, FREE, -",
        "OPENAI, POST, /v1/fine_tuning/jobs, NOT_METERED, fine-tuning",
        "OPENAI, POST, /v1/fine_tuning/jobs/ftjob-abc/cancel, FREE, -",
        "OPENAI, POST, /v1/fine_tuning/jobs/ftjob-abc/resume, NOT_METERED, fine-tuning",
        "OPENAI, POST, /v1/images/generations, NOT_METERED, image generation",
        "OPENAI, POST, /v1/images/edits, NOT_METERED, image generation",
        "OPENAI, POST, /v1/audio/speech, NOT_METERED, 'audio (speech, transcription, translation)'",
        "OPENAI, POST, /v1/audio/transcriptions, NOT_METERED, 'audio (speech, transcription, translation)'",
        "OPENAI, GET, /v1/realtime, NOT_METERED, the Realtime API",
        "OPENAI, POST, /v1/realtime/client_secrets, NOT_METERED, the Realtime API",
        "OPENAI, POST, /v1/vector_stores, NOT_METERED, vector stores",
        "OPENAI, POST, /v1/assistants, NOT_METERED, the Assistants API",
        "OPENAI, POST, /v1/threads/thread_abc/runs, NOT_METERED, the Assistants API",
        "OPENAI, POST, /v1/videos, NOT_METERED, video generation",
        "OPENAI, POST, /v1/containers, NOT_METERED, this endpoint",
        "OPENAI, PATCH, /v1/chat/completions, NOT_METERED, this endpoint",
        "OPENAI, HEAD, /v1/models, FREE, -",
        "ANTHROPIC, POST, /v1/messages, METERED, -",
        "ANTHROPIC, POST, /v1/messages/count_tokens, FREE, -",
        "ANTHROPIC, POST, /v1/messages/batches, NOT_METERED, message batches",
        "ANTHROPIC, GET, /v1/messages/batches/msgbatch_abc/results, FREE, -",
        "ANTHROPIC, POST, /v1/messages/batches/msgbatch_abc/cancel, FREE, -",
        "ANTHROPIC, DELETE, /v1/messages/batches/msgbatch_abc, FREE, -",
        "ANTHROPIC, GET, /v1/models, FREE, -",
        "ANTHROPIC, POST, /v1/files, FREE, -",
        "ANTHROPIC, DELETE, /v1/files/file_abc, FREE, -",
        "ANTHROPIC, POST, /v1/complete, NOT_METERED, the legacy Text Completions API",
        // OpenAI's rows are not Anthropic's
        "ANTHROPIC, POST, /v1/chat/completions, NOT_METERED, this endpoint",
        "GEMINI, POST, /v1beta/models/gemini-2.5-flash:generateContent, METERED, -",
        "GEMINI, POST, /v1beta/models/gemini-2.5-flash:streamGenerateContent, METERED, -",
        "GEMINI, POST, /v1/models/gemini-2.5-flash:generateContent, METERED, -",
        "GEMINI, POST, /v1beta/tunedModels/my-model:generateContent, METERED, -",
        "GEMINI, POST, /v1beta/models/gemini-2.5-flash:countTokens, FREE, -",
        "GEMINI, POST, /v1/models/gemini-2.5-flash:countTokens, FREE, -",
        "GEMINI, POST, /v1beta/models/text-embedding-004:embedContent, NOT_METERED, Gemini embeddings",
        "GEMINI, POST, /v1/models/text-embedding-004:batchEmbedContents, NOT_METERED, Gemini embeddings",
        "GEMINI, POST, /v1beta/models/gemini-2.5-flash:batchGenerateContent, NOT_METERED, the Batch API",
        "GEMINI, POST, /v1beta/models/imagen-4.0-generate-001:predict, NOT_METERED, 'image and video generation (Imagen, Veo)'",
        "GEMINI, POST, /v1beta/models/veo-3.0-generate-001:predictLongRunning, NOT_METERED, 'image and video generation (Imagen, Veo)'",
        "GEMINI, POST, /v1beta/cachedContents, NOT_METERED, context caching",
        "GEMINI, PATCH, /v1beta/cachedContents/abc, NOT_METERED, this endpoint",
        "GEMINI, DELETE, /v1beta/cachedContents/abc, FREE, -",
        "GEMINI, GET, /v1beta/files/abc, FREE, -",
        "GEMINI, DELETE, /v1beta/files/abc, FREE, -",
        "GEMINI, POST, /upload/v1beta/files, FREE, -",
        "GEMINI, POST, /upload/v1beta/fileSearchStores/s:uploadToFileSearchStore, NOT_METERED, this endpoint",
        "GEMINI, POST, /v1beta/openai/chat/completions, METERED, -",
        "GEMINI, POST, /v1beta/openai/embeddings, METERED, -",
        "GEMINI, POST, /v1beta/openai/images/generations, NOT_METERED, image generation",
        "GEMINI, GET, /v1beta/models, FREE, -",
        "GEMINI, POST, /v1beta/models/gemini-2.5-flash:generateAnswer, NOT_METERED, this endpoint",
      })
  void classify_everyRow(Provider provider, String method, String path, Kind kind, String what) {
    Endpoints.Row row = Endpoints.classify(provider, method, path);
    assertThat(row.kind()).as("%s", row).isEqualTo(kind);
    if (kind == Kind.NOT_METERED) {
      assertThat(row.what()).isEqualTo(what);
    }
  }

  @ParameterizedTest(name = "{0} {1} {2} -> {3}")
  @CsvSource(
      nullValues = "-",
      value = {
        // query strings and trailing slashes do not change the row
        "OPENAI, POST, /v1/chat/completions?foo=bar, METERED",
        "OPENAI, POST, /v1/chat/completions/, METERED",
        "OPENAI, POST, /v1/chat/completions//, METERED",
        "GEMINI, POST, /v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=x, METERED",
        "OPENAI, POST, /v1/batches?x=/v1/files, NOT_METERED",
        // a free row's ids never hide an encoded path: encoded slashes fail closed
        "OPENAI, POST, /v1/batches/..%2F..%2Fchat%2Fcompletions/cancel, NOT_METERED",
        "OPENAI, POST, /v1/uploads/a%2Fb/parts, NOT_METERED",
        "OPENAI, POST, /v1%2Ffiles, NOT_METERED",
        // double slashes (Envoy merges them; we fail closed if it did not)
        "OPENAI, POST, //v1/files, NOT_METERED",
        "OPENAI, POST, /v1//files, NOT_METERED",
        "OPENAI, POST, /v1/uploads//parts, NOT_METERED",
        // case: paths are case-sensitive on every provider, so a variant is an unknown endpoint
        "OPENAI, POST, /V1/FILES, NOT_METERED",
        "OPENAI, post, /v1/files, NOT_METERED",
        "GEMINI, POST, /v1beta/models/x:COUNTTOKENS, NOT_METERED",
        // a wildcard is one segment, never more, never empty
        "OPENAI, POST, /v1/uploads/a/b/parts, NOT_METERED",
        "GEMINI, POST, /v1beta/models/:countTokens, NOT_METERED",
        "GEMINI, POST, /v1beta/models/a/b:countTokens, NOT_METERED",
        // prefixes are whole segments
        "OPENAI, POST, /v1/filesx, NOT_METERED",
        "OPENAI, POST, /v1/batchesx, NOT_METERED",
        "OPENAI, GET, /v1/batchesx, FREE",
        // nothing, or no provider
        "OPENAI, POST, '', NOT_METERED",
        "OPENAI, POST, /, NOT_METERED",
        "OPENAI, GET, /, FREE",
        "-, POST, /v1/chat/completions, NOT_METERED",
        "-, GET, /v1/chat/completions, FREE",
        "OPENAI, -, /v1/chat/completions, NOT_METERED",
        "OPENAI, POST, -, NOT_METERED",
      })
  void classify_hostilePaths_failClosed(Provider provider, String method, String path, Kind kind) {
    assertThat(Endpoints.classify(provider, method, path).kind()).isEqualTo(kind);
  }

  @Test
  void rows_everyNotMeteredRowNamesWhatItRefuses_andNoRowRepeats() {
    Set<String> seen = new HashSet<>();
    for (Endpoints.Row row : Endpoints.rows()) {
      assertThat(seen.add(row.provider() + " " + row.endpoint())).as("%s twice", row).isTrue();
      assertThat(row.what()).as("%s", row).isNotBlank();
      assertThat(row.index()).isEqualTo(Endpoints.rows().indexOf(row));
    }
    assertThat(Endpoints.rows()).last().isEqualTo(Endpoints.ANY_OTHER);
  }

  @Test
  void rows_eachIsReachable_byARequestShapedLikeIt() {
    // A row hidden behind an earlier one would be dead in the README too.
    for (Endpoints.Row row : Endpoints.rows()) {
      if (row.provider() == null) {
        continue;
      }
      String method = row.method().equals("*") ? "POST" : row.method();
      String path = row.pattern().replace("/**", "").replaceAll("\\{[a-z]+\\}", "abc");
      assertThat(Endpoints.classify(row.provider(), method, path))
          .as("%s %s", method, path)
          .isSameAs(row);
    }
  }
}
