package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

class RequestBodyTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static byte[] utf8(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  @Test
  void inspect_chatRequest_readsModelAndStream() {
    RequestBody b =
        RequestBody.inspect(
            utf8(
                "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"gpt-4o\",\"stream\":true}"));
    assertThat(b.model()).contains("gpt-4o");
    assertThat(b.stream()).isTrue();
    assertThat(b.needsIncludeUsage()).isTrue();
  }

  @Test
  void inspect_includeUsageAlreadyTrue_needsNothing() {
    RequestBody b =
        RequestBody.inspect(
            utf8(
                "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"));
    assertThat(b.needsIncludeUsage()).isFalse();
  }

  @Test
  void inspect_notStreaming_needsNothing() {
    assertThat(
            RequestBody.inspect(utf8("{\"model\":\"gpt-4o\",\"stream\":false}"))
                .needsIncludeUsage())
        .isFalse();
    assertThat(RequestBody.inspect(utf8("{\"model\":\"gpt-4o\"}")).needsIncludeUsage()).isFalse();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "not json",
        "[1,2]",
        "{\"model\":\"x\",\"stream\":true",
        "{\"model\":\"x\",\"stream\":true} trailing",
        "{\"stream\":true,\"stream\":true}"
      })
  void inspect_notOneJsonObject_isLeftAlone(String body) {
    RequestBody b = RequestBody.inspect(utf8(body));
    assertThat(b.isJsonObject()).isFalse();
    assertThat(b.needsIncludeUsage()).isFalse();
  }

  @Test
  void withIncludeUsage_noStreamOptions_insertsMemberKeepingOtherBytes() throws Exception {
    String body =
        "  {\"model\":\"gpt-4o\", \"temperature\": 1.0, \"stream\": true,"
            + " \"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9 ☕\"}]}\n";
    RequestBody b = RequestBody.inspect(utf8(body));
    String out = new String(b.withIncludeUsage(utf8(body)), StandardCharsets.UTF_8);
    assertThat(out)
        .isEqualTo(
            "  {\"stream_options\":{\"include_usage\":true},\"model\":\"gpt-4o\","
                + " \"temperature\": 1.0, \"stream\": true,"
                + " \"messages\":[{\"role\":\"user\",\"content\":\"caf\\u00e9 ☕\"}]}\n");
    assertThat(JSON.readTree(out).at("/stream_options/include_usage").asBoolean()).isTrue();
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"include_usage\":false},\"temperature\":0.70}",
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{},\"temperature\":0.70}",
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":null,\"temperature\":0.70}",
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{\"x\":[1,{\"y\":2}]},\"temperature\":0.70}"
      })
  void withIncludeUsage_existingStreamOptions_setsIncludeUsageKeepingTheRest(String body)
      throws Exception {
    RequestBody b = RequestBody.inspect(utf8(body));
    assertThat(b.needsIncludeUsage()).isTrue();
    byte[] out = b.withIncludeUsage(utf8(body));
    JsonNode tree = JSON.readTree(out);
    assertThat(tree.at("/stream_options/include_usage").asBoolean()).isTrue();
    assertThat(tree.get("model").asText()).isEqualTo("gpt-4o");
    // number text kept as sent, not re-rendered from a double
    assertThat(new String(out, StandardCharsets.UTF_8)).contains("\"temperature\":0.70");
    JsonNode original = JSON.readTree(body);
    assertThat(tree.size()).isEqualTo(original.size());
  }

  /**
   * The streaming rewrite, exactly: only include_usage changes (set in place, or appended to the
   * options, or the member inserted up front); key order and number text are kept. Single quotes
   * stand for double quotes to keep the table readable.
   */
  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      quoteCharacter = '"',
      textBlock =
          """
      no stream_options    | {'model':'m','stream':true}                                  | {'stream_options':{'include_usage':true},'model':'m','stream':true}
      empty options        | {'stream':true,'stream_options':{},'n':1}                    | {'stream':true,'stream_options':{'include_usage':true},'n':1}
      include_usage false  | {'stream':true,'stream_options':{'include_usage':false,'x':1}} | {'stream':true,'stream_options':{'include_usage':true,'x':1}}
      include_usage null   | {'stream_options':{'include_usage':null},'stream':true}      | {'stream_options':{'include_usage':true},'stream':true}
      other options        | {'stream':true,'stream_options':{'o':[1,{'a':null}]}}        | {'stream':true,'stream_options':{'o':[1,{'a':null}],'include_usage':true}}
      options not object   | {'stream':true,'stream_options':[1,2],'k':false}             | {'stream':true,'stream_options':{'include_usage':true},'k':false}
      numbers kept as text | {'stream':true,'stream_options':{},'t':1.0,'p':0.70,'e':1E+400,'z':-0.0,'b':123456789012345678901234567890} | {'stream':true,'stream_options':{'include_usage':true},'t':1.0,'p':0.70,'e':1E+400,'z':-0.0,'b':123456789012345678901234567890}
      blank space kept     | { 'stream' : true , 'stream_options' : { } , 'a' : [ 1 , 2 ] } | { 'stream' : true , 'stream_options' : {'include_usage':true} , 'a' : [ 1 , 2 ] }
      options re-encoded   | {'stream':true,'stream_options':{ 'o' : 1.50 , 'include_usage' : false }} | {'stream':true,'stream_options':{'o':1.50,'include_usage':true}}
      options last         | {'stream':true,'stream_options':null} | {'stream':true,'stream_options':{'include_usage':true}}
      """)
  void withIncludeUsage_table_changesOnlyIncludeUsage(String name, String body, String expected)
      throws Exception {
    byte[] in = utf8(body.replace('\'', '"'));
    RequestBody b = RequestBody.inspect(in);
    assertThat(b.unread()).isEmpty();
    assertThat(b.needsIncludeUsage()).isTrue();
    assertThat(new String(b.withIncludeUsage(in), StandardCharsets.UTF_8))
        .isEqualTo(expected.replace('\'', '"'));
  }

  @Test
  void withIncludeUsage_unicodeEscapes_keptAsSentOutsideTheOptionsAndMeantInside()
      throws Exception {
    String escaped = "\"caf\\u00e9 \\ud83d\\udc4b \\\" \\\\ \\n \\u0001\"";
    String body =
        "{\"stream\":true,\"c\":" + escaped + ",\"stream_options\":{\"\\u006b\":" + escaped + "}}";
    byte[] out = RequestBody.inspect(utf8(body)).withIncludeUsage(utf8(body));
    // Outside stream_options every byte is the client's; inside, tokens are re-encoded as UTF-8
    // with JSON's minimal escapes (a surrogate pair stays escaped, so even a lone surrogate a
    // client sent survives): same strings, same key (the escaped k is k).
    assertThat(new String(out, StandardCharsets.UTF_8))
        .isEqualTo(
            "{\"stream\":true,\"c\":"
                + escaped
                + ",\"stream_options\":{"
                + "\"k\":\"café \\uD83D\\uDC4B \\\" \\\\ \\n \\u0001\",\"include_usage\":true}}");
    assertThat(JSON.readTree(out).at("/stream_options/k").asText())
        .isEqualTo(JSON.readTree(body).get("c").asText());
  }

  @Test
  void withIncludeUsage_existingOptions_returnsARopeOverTheOriginalBytes() throws Exception {
    byte[] big =
        utf8(
            "{\"stream\":true,\"stream_options\":{},\"messages\":\"" + "x".repeat(1 << 20) + "\"}");
    ByteString body = ByteString.copyFrom(big);
    ByteString out = RequestBody.inspect(body).withIncludeUsage(body);
    assertThat(out.size()).isEqualTo(big.length + "\"include_usage\":true".length());
    // Not one flat copy: the 1 MiB string is shared with the request, not copied into the answer.
    assertThat(out.getClass().getSimpleName()).isEqualTo("RopeByteString");
  }

  /**
   * Bodies the constraints or the duplicate check refuse: passed through unread, with the reason.
   */
  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      quoteCharacter = '"',
      textBlock =
          """
      duplicate top key    | DUPLICATE_KEY | {'stream':true,'stream_options':{},'a':1,'a':2}
      duplicate nested key | DUPLICATE_KEY | {'stream':true,'x':[{'k':1,'k':2}]}
      not json             | NOT_JSON      | {'stream':true,
      """)
  void inspect_refusedBody_isUnreadWithReason(String name, RequestBody.Unread reason, String body) {
    RequestBody b = RequestBody.inspect(utf8(body.replace('\'', '"')));
    assertThat(b.unread()).contains(reason);
    assertThat(b.isJsonObject()).isFalse();
    assertThat(b.needsIncludeUsage()).isFalse();
  }

  @Test
  void inspect_nestingAtTheLimit_isReadAndOneDeeperIsRefused() {
    // The top-level object is level 1.
    int inner = RequestBody.MAX_DEPTH - 1;
    String atLimit = "{\"stream\":true,\"x\":" + "[".repeat(inner) + "]".repeat(inner) + "}";
    String deeper = "{\"stream\":true,\"x\":" + "[".repeat(inner + 1) + "]".repeat(inner + 1) + "}";
    assertThat(RequestBody.inspect(utf8(atLimit)).unread()).isEmpty();
    assertThat(RequestBody.inspect(utf8(deeper)).unread()).contains(RequestBody.Unread.TOO_DEEP);
  }

  @Test
  void inspect_100000DeepNesting_isRefusedAsTooDeep() {
    String body =
        "{\"stream\":true,\"stream_options\":{},\"x\":"
            + "{\"a\":".repeat(100_000)
            + "1"
            + "}".repeat(100_000)
            + "}";
    RequestBody b = RequestBody.inspect(utf8(body));
    assertThat(b.unread()).contains(RequestBody.Unread.TOO_DEEP);
    assertThat(b.needsIncludeUsage()).isFalse();
  }

  @Test
  void inspect_numberLongerThanLimit_isRefusedAsTooLong() {
    String ok = "{\"stream\":true,\"n\":" + "1".repeat(RequestBody.MAX_NUMBER_CHARS) + "}";
    String tooLong = "{\"stream\":true,\"n\":" + "1".repeat(RequestBody.MAX_NUMBER_CHARS + 1) + "}";
    assertThat(RequestBody.inspect(utf8(ok)).unread()).isEmpty();
    assertThat(RequestBody.inspect(utf8(tooLong)).unread()).contains(RequestBody.Unread.TOO_LONG);
  }

  @Test
  void inspect_longStringLikeABase64Image_isRead() throws Exception {
    // 25 MiB in one string: beyond Jackson's default 20M chars, within the metering limit.
    String body =
        "{\"model\":\"gpt-4o\",\"stream\":true,\"stream_options\":{},\"image\":\""
            + "A".repeat(25 << 20)
            + "\"}";
    RequestBody b = RequestBody.inspect(utf8(body));
    assertThat(b.unread()).isEmpty();
    assertThat(b.model()).contains("gpt-4o");
    byte[] out = b.withIncludeUsage(utf8(body));
    assertThat(out.length).isEqualTo(body.length() + "\"include_usage\":true".length());
  }

  @Test
  void inspect_wellFormedObject_isNotUnread() {
    assertThat(RequestBody.inspect(utf8("{\"model\":\"m\"}")).unread()).isEmpty();
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{\"model\":\"gpt-4o\",\"input\":\"x\",\"background\":true}|true",
        "{\"background\":false,\"model\":\"gpt-4o\"}|false",
        "{\"background\":\"true\",\"model\":\"gpt-4o\"}|false",
        "{\"model\":\"gpt-4o\",\"metadata\":{\"background\":true}}|false",
        "{\"model\":\"gpt-4o\"}|false",
      })
  void inspect_background_onlyATopLevelTrue(String body, boolean background) {
    RequestBody b = RequestBody.inspect(body.getBytes(StandardCharsets.UTF_8));
    assertThat(b.background()).isEqualTo(background);
    assertThat(b.model()).hasValue("gpt-4o");
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      nullValues = "none",
      value = {
        // name                       | body                                                | limit
        "chat max_tokens              | {\"model\":\"gpt-4o\",\"max_tokens\":256}                | 256",
        "chat max_completion_tokens   | {\"max_completion_tokens\":4096,\"model\":\"o3\"}        | 4096",
        "responses max_output_tokens  | {\"model\":\"gpt-5\",\"max_output_tokens\":128000}       | 128000",
        "anthropic max_tokens         | {\"model\":\"claude-sonnet-4-5\",\"max_tokens\":1024,\"messages\":[]} | 1024",
        "gemini generationConfig      | {\"contents\":[],\"generationConfig\":{\"temperature\":0.2,\"stopSequences\":[\"x\"],\"maxOutputTokens\":2048}} | 2048",
        "gemini snake_case            | {\"generation_config\":{\"max_output_tokens\":512}}       | 512",
        "two limits: the larger       | {\"max_tokens\":100,\"max_completion_tokens\":300}         | 300",
        "exactly a billion            | {\"max_tokens\":1000000000}                            | 1000000000",
        "absent                       | {\"model\":\"gpt-4o\"}                                  | none",
        "nested max_tokens ignored    | {\"metadata\":{\"max_tokens\":5},\"tools\":[{\"max_tokens\":7}]} | none",
        "gemini limit at top level    | {\"maxOutputTokens\":64}                               | none",
        "negative                     | {\"max_tokens\":-1}                                    | none",
        "zero                         | {\"max_tokens\":0}                                     | none",
        "fraction                     | {\"max_tokens\":100.5}                                 | none",
        "integral float               | {\"max_tokens\":100.0}                                 | none",
        "exponent                     | {\"max_tokens\":1e3}                                   | none",
        "quoted                       | {\"max_tokens\":\"256\"}                                 | none",
        "null                         | {\"max_tokens\":null}                                  | none",
        "object                       | {\"max_tokens\":{\"a\":1}}                               | none",
        "past a billion               | {\"max_tokens\":1000000001}                            | none",
        "past a long                  | {\"max_tokens\":99999999999999999999999}               | none",
        "generationConfig not object  | {\"generationConfig\":2048}                            | none",
        "gemini negative              | {\"generationConfig\":{\"maxOutputTokens\":-5}}          | none",
        "invalid one, valid other     | {\"max_tokens\":-1,\"max_completion_tokens\":50}          | 50",
        "duplicate key: body unread   | {\"max_tokens\":1,\"max_tokens\":100000}                  | none",
        "duplicate nested: unread     | {\"generationConfig\":{\"maxOutputTokens\":1,\"maxOutputTokens\":9}} | none",
        "not json                     | {\"max_tokens\":256                                    | none",
      })
  void inspect_outputLimit_readsEachApisFieldAndTreatsHostileValuesAsAbsent(
      String name, String body, Long limit) {
    RequestBody b = RequestBody.inspect(ByteString.copyFromUtf8(body), new TokenEstimate.Prompt());
    if (limit == null) {
      assertThat(b.outputLimit()).isEmpty();
    } else {
      assertThat(b.outputLimit()).hasValue(limit);
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "absent                 | {\"model\":\"gpt-4o\"}                                  | 1",
        "openai n               | {\"n\":3,\"max_tokens\":10}                               | 3",
        "gemini candidateCount  | {\"generationConfig\":{\"candidateCount\":2}}            | 2",
        "n at OpenAI's maximum  | {\"n\":128}                                            | 128",
        "n past it              | {\"n\":129}                                            | 1",
        "n negative             | {\"n\":-4}                                             | 1",
        "n fractional           | {\"n\":2.5}                                            | 1",
        "n quoted               | {\"n\":\"4\"}                                            | 1",
      })
  void inspect_choices_readsNAndCandidateCountElseOne(String name, String body, int choices) {
    assertThat(RequestBody.inspect(ByteString.copyFromUtf8(body), null).choices())
        .isEqualTo(choices);
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "text only              | {\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]} | 0",
        "openai chat image_url  | {\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\",\"detail\":\"high\"}}]}]} | 1",
        "openai chat file+audio | {\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"file\",\"file\":{\"file_id\":\"f\"}},{\"type\":\"input_audio\",\"input_audio\":{\"data\":\"AA\"}}]}]} | 2",
        "responses input_image  | {\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\",\"image_url\":\"https://x/a.png\"},{\"type\":\"input_image\",\"file_id\":\"f\"},{\"type\":\"input_file\",\"file_data\":\"AA\",\"filename\":\"a.pdf\"}]}]} | 3",
        "anthropic image+doc    | {\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"data\":\"AA\"}},{\"type\":\"document\",\"source\":{\"type\":\"url\",\"url\":\"u\"}}]}]} | 2",
        "anthropic tool result  | {\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"content\":[{\"type\":\"image\",\"source\":{}}]}]}]} | 1",
        "gemini parts           | {\"contents\":[{\"parts\":[{\"text\":\"a\"},{\"inline_data\":{\"mime_type\":\"image/png\",\"data\":\"AA\"}},{\"fileData\":{\"fileUri\":\"u\"}},{\"inlineData\":{}}]}]} | 3",
        "image in a tool schema | {\"tools\":[{\"image_url\":{}}],\"messages\":[]}             | 0",
      })
  void inspect_mediaParts_areCountedOncePerPart(String name, String body, long items) {
    TokenEstimate.Prompt prompt = new TokenEstimate.Prompt();
    RequestBody b = RequestBody.inspect(ByteString.copyFromUtf8(body), prompt);
    assertThat(b.unread()).isEmpty();
    assertThat(prompt.mediaItems()).isEqualTo(items);
    assertThat(prompt.mediaTokens()).isEqualTo(items * TokenEstimate.MEDIA_TOKENS_PER_ITEM);
  }

  @Test
  void mediaTokensPerItem_isOpenAisLargestHighDetailImage() {
    // gpt-4o-mini, high detail, 8 tiles of 512 px (768 x 2048 after scaling): 2833 + 8 x 5667.
    assertThat(TokenEstimate.MEDIA_TOKENS_PER_ITEM).isEqualTo(48_169);
  }
}
