package io.quotaauthority.metering;

import com.google.protobuf.ByteString;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * Reads one response body, chunk by chunk, and keeps the latest token counts it reported. A JSON
 * body is scanned as one document (a Gemini JSON-array stream as one array); an SSE body is scanned
 * event by event, each event's data as its own document. Usage counts in every supported stream are
 * cumulative, so the latest value is kept PER FIELD, never per usage object: a later event's value
 * of a field replaces an earlier one (an Anthropic {@code message_delta}'s output_tokens replaces
 * the 1 of {@code message_start}), a field a later event leaves out keeps its earlier value, and a
 * later 0 never replaces an earlier non-zero count (a {@code message_delta} that restates the
 * top-level counts with {@code cache_read_input_tokens: 0} does not erase the cache reads {@code
 * message_start} reported: a cumulative count cannot fall to 0, and dropping it would charge those
 * tokens nothing).
 */
final class UsageExtractor {
  // Beside the usage, it counts the text the response generated (for the estimate a response
  // cut short is charged, see TokenEstimate) and tells whether the provider's final usage came.

  /** How the body is framed. */
  enum Framing {
    /** {@code text/event-stream}. */
    SSE,
    /** One JSON document (object or array). */
    JSON,
    /** Unknown content type: decided by the first non-blank byte ('{' or '[' is JSON). */
    SNIFF;

    static Framing of(String contentType) {
      if (contentType == null || contentType.isBlank()) {
        return SNIFF;
      }
      String ct = contentType.toLowerCase(Locale.ROOT);
      if (ct.startsWith("text/event-stream")) {
        return SSE;
      }
      return ct.contains("json") ? JSON : SNIFF;
    }
  }

  /** More distinct usage fields than any provider sends; a guard against hostile bodies. */
  private static final int MAX_FIELDS = 64;

  private static final byte[] NEWLINE = {'\n'};

  /** Copy size for {@link #feed(ByteString)}; the scanners keep nothing of it between calls. */
  private static final int FEED_BUFFER = 8192;

  private final UsageFormat format;
  private Framing framing;
  private final Map<String, Long> latest = new HashMap<>();
  private String reportedModel;

  /** The service tier the response names (OpenAI), or null. */
  private String reportedServiceTier;

  private final JsonUsageScanner scanner;
  private final SseEventSplitter splitter;
  private byte[] buffer;

  /** Counts the generated text; null when not estimating. */
  private final TokenEstimate.Output output;

  private boolean finalUsage;
  private boolean started;

  UsageExtractor(UsageFormat format, Framing framing) {
    this(format, framing, null);
  }

  UsageExtractor(UsageFormat format, Framing framing, TokenEstimate.Output output) {
    this.format = format;
    this.framing = framing;
    this.output = output;
    this.scanner =
        new JsonUsageScanner(
            new JsonUsageScanner.Listener() {
              @Override
              public void usage(Map<String, Long> fields) {
                for (Map.Entry<String, Long> e : fields.entrySet()) {
                  Long earlier = latest.get(e.getKey());
                  if (e.getValue() == 0 && earlier != null && earlier > 0) {
                    continue; // a restated 0 is no news: cumulative counts never drop to 0 (see
                    // above)
                  }
                  if (latest.size() < MAX_FIELDS || earlier != null) {
                    latest.put(e.getKey(), e.getValue());
                  }
                }
                // Not a simple name: the field is assigned once this listener exists, before any
                // call.
                if (format.isFinal(UsageExtractor.this.scanner.lastUsageAtTop())) {
                  finalUsage = true;
                }
              }

              @Override
              public void text(byte[] utf8, int offset, int length) {
                if (output != null) {
                  output.add(utf8, offset, length);
                }
              }

              @Override
              public void model(String model) {
                reportedModel = model;
              }

              @Override
              public void serviceTier(String tier) {
                reportedServiceTier = tier.toLowerCase(Locale.ROOT);
              }
            });
    this.splitter =
        new SseEventSplitter(
            new SseEventSplitter.Listener() {
              @Override
              public void data(byte[] bytes, int offset, int length) {
                scanner.feed(bytes, offset, length);
              }

              @Override
              public void dataLineEnd() {
                // Joined data lines are separated by a newline, which JSON reads as blank space.
                scanner.feed(NEWLINE, 0, 1);
              }

              @Override
              public void eventEnd() {
                scanner.reset();
              }
            });
  }

  void feed(byte[] bytes) {
    feed(bytes, 0, bytes.length);
  }

  /**
   * Feeds a chunk straight from the message's bytes, through a small reused buffer: the chunk is
   * never copied whole (ByteString.toByteArray would copy all of it).
   */
  void feed(ByteString chunk) {
    if (chunk.isEmpty()) {
      return;
    }
    if (buffer == null) {
      buffer = new byte[FEED_BUFFER];
    }
    try (InputStream in = chunk.newInput()) {
      int n;
      while ((n = in.read(buffer)) > 0) {
        feed(buffer, 0, n);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e); // a ByteString's stream reads memory: cannot happen
    }
  }

  void feed(byte[] bytes, int offset, int length) {
    if (length > 0) {
      started = true;
    }
    if (framing == Framing.SNIFF) {
      int i = offset;
      int end = offset + length;
      while (i < end && isBlank(bytes[i])) {
        i++; // leading blank space means nothing in either framing
      }
      if (i == end) {
        return;
      }
      framing = bytes[i] == '{' || bytes[i] == '[' ? Framing.JSON : Framing.SSE;
      length -= i - offset;
      offset = i;
    }
    if (framing == Framing.SSE) {
      splitter.feed(bytes, offset, length);
    } else {
      scanner.feed(bytes, offset, length);
    }
  }

  /** The body is complete (or will never complete): a last unterminated SSE event counts. */
  void end() {
    if (framing == Framing.SSE) {
      splitter.end();
    }
    scanner.end();
  }

  /** True once the provider's final usage was read (see {@link UsageFormat#isFinal}). */
  boolean finalUsageSeen() {
    return finalUsage;
  }

  /** True once any byte of the body arrived: the provider had begun answering. */
  boolean started() {
    return started;
  }

  /** The body's framing: SNIFF until its first non-blank byte. */
  Framing framing() {
    return framing;
  }

  /** Tokens of the generated text seen so far (0 when not estimating). */
  long outputTokens() {
    return output == null ? 0 : output.tokens();
  }

  /** The tokens seen so far, or empty if no usage object has been seen. */
  Optional<TokenUsage> usage() {
    return format.tokens(latest);
  }

  /** The service tier the response named (OpenAI's service_tier), lower-cased, if it did. */
  Optional<String> reportedServiceTier() {
    return Optional.ofNullable(reportedServiceTier);
  }

  /** The model the response named, if it did. */
  Optional<String> reportedModel() {
    return Optional.ofNullable(reportedModel);
  }

  int retainedBytes() {
    int model = reportedModel == null ? 0 : reportedModel.length();
    int counted = output == null ? 0 : output.retainedBytes();
    int tier = reportedServiceTier == null ? 0 : reportedServiceTier.length();
    return scanner.retainedBytes()
        + splitter.retainedBytes()
        + latest.size() * 64
        + model
        + counted
        + tier;
  }

  private static boolean isBlank(byte b) {
    return b == ' ' || b == '\n' || b == '\r' || b == '\t';
  }
}
