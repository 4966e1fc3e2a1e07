package io.quotaauthority.metering;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.EncodingRegistry;
import com.knuddels.jtokkit.api.EncodingType;
import io.quotaauthority.provider.Provider;
import java.nio.CharBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What a response cut short (client gone, upstream reset, a stream that ended without its usage) is
 * charged: token counts estimated from the request's text and from the response text seen, never
 * less than what the provider reported before the cut.
 *
 * <p>Counting:
 *
 * <ul>
 *   <li>OpenAI models: exactly, with OpenAI's own encodings (jtokkit): {@code o200k_base} for
 *       gpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o-series, chatgpt-* and gpt-oss; {@code cl100k_base}
 *       for gpt-4, gpt-3.5 and text-embedding-*.
 *   <li>Everything else (Anthropic, Gemini, OpenAI-compatible surfaces, unknown models): the
 *       conservative {@link Tokenizer#BYTE_BOUND}, 1 token per 3 ASCII bytes plus 1 per 2 bytes of
 *       non-ASCII UTF-8, each rounded up. Real tokenizers take about 4 bytes of English (and 3
 *       bytes, one character, of CJK) per token, so this over-counts English by about a third and
 *       CJK by half, and never under-counts ordinary text.
 *   <li>Input adds {@link #TOKENS_PER_MESSAGE} per message and {@link #TOKENS_PER_REQUEST} once
 *       (the role and framing tokens every chat format wraps a message in; OpenAI documents 3 and
 *       3), and counts tool definitions by the byte bound of their JSON.
 * </ul>
 *
 * <p>Bounded work: at most {@link #MAX_EXACT_CHARS} characters of request text and {@link
 * #MAX_EXACT_OUTPUT_BYTES} bytes of response text are tokenized exactly; the rest is counted by the
 * byte bound, which costs one comparison a byte. The response is counted as it arrives, never kept:
 * {@link Output} holds at most {@link #OUTPUT_PENDING} bytes between chunks.
 */
final class TokenEstimate {
  private static final Logger log = LoggerFactory.getLogger(TokenEstimate.class);

  /** Role and framing tokens per message (OpenAI's chat format uses 3; one more for a name). */
  static final int TOKENS_PER_MESSAGE = 4;

  /** Tokens that prime the reply, once per request (OpenAI's chat format uses 3). */
  static final int TOKENS_PER_REQUEST = 3;

  /** ASCII bytes per token in the byte bound. */
  static final int ASCII_BYTES_PER_TOKEN = 3;

  /** Non-ASCII UTF-8 bytes per token in the byte bound. */
  static final int NON_ASCII_BYTES_PER_TOKEN = 2;

  /**
   * Input tokens one image or file part is assumed to cost in {@link MaxCost}: the largest any
   * provider publishes for one image, OpenAI's gpt-4o-mini at high detail (2,833 base + 5,667 per
   * 512 px tile, at most 8 tiles once scaled to fit 2048 px with the short side at 768 px: OpenAI
   * "Images and vision", calculating costs). It covers OpenAI's other models (gpt-4o: 85 + 170 per
   * tile; patch models: at most 1,536 patches x 2.46), Anthropic's (about 1,600 per image once
   * resized to 1.15 megapixels: "Vision", image costs) and Gemini's (258 per 768 px tile). Not an
   * upper bound for a document (a PDF costs per page), audio or video: those are counted as one
   * image each and are not yet bounded.
   */
  static final long MEDIA_TOKENS_PER_ITEM = 2_833 + 8 * 5_667;

  /** Request text tokenized exactly (about 250,000 tokens); the rest by the byte bound. */
  static final int MAX_EXACT_CHARS = 1 << 20;

  /** Response text tokenized exactly; the rest by the byte bound. */
  static final long MAX_EXACT_OUTPUT_BYTES = 1L << 20;

  /** Response text held between chunks before it is counted. */
  static final int OUTPUT_PENDING = 1024;

  private TokenEstimate() {}

  /** How text becomes tokens. */
  enum Tokenizer {
    O200K(EncodingType.O200K_BASE),
    CL100K(EncodingType.CL100K_BASE),
    /** 1 token per 3 ASCII bytes plus 1 per 2 non-ASCII UTF-8 bytes, each rounded up. */
    BYTE_BOUND(null);

    private final EncodingType type;

    Tokenizer(EncodingType type) {
      this.type = type;
    }

    /**
     * The tokenizer for this provider's model. Only OpenAI's own API is counted with OpenAI's
     * encodings: Gemini's OpenAI-compatible surface speaks OpenAI JSON but bills Gemini tokens.
     */
    static Tokenizer of(Provider provider, String model) {
      if (provider != Provider.OPENAI || model == null) {
        return BYTE_BOUND;
      }
      String m = model.toLowerCase(Locale.ROOT);
      // A fine-tuned model ("ft:gpt-4o-mini:org::id") tokenizes as its base.
      if (m.startsWith("ft:")) {
        m = m.substring(3);
      }
      Tokenizer exact = BYTE_BOUND;
      if (m.startsWith("gpt-4o")
          || m.startsWith("gpt-4.1")
          || m.startsWith("gpt-4.5")
          || m.startsWith("gpt-5")
          || m.startsWith("chatgpt-")
          || m.startsWith("gpt-oss")
          || (m.length() > 1 && m.charAt(0) == 'o' && Character.isDigit(m.charAt(1)))) {
        exact = O200K;
      } else if (m.startsWith("gpt-4")
          || m.startsWith("gpt-3.5")
          || m.startsWith("text-embedding-")) {
        exact = CL100K;
      }
      // Until the encodings are loaded (about a second after start) the bound stands in: a
      // metering thread must never wait for them, Envoy gives each message 1 s.
      return exact != BYTE_BOUND && Registry.ready() ? exact : BYTE_BOUND;
    }

    /** The tokens of this text. */
    long count(CharSequence text) {
      if (text.length() == 0) {
        return 0;
      }
      if (type == null) {
        Bytes b = new Bytes();
        b.add(text);
        return b.tokens();
      }
      // Ordinary: "<|endoftext|>" in a prompt is text to the provider, not a special token.
      return Registry.LOADED.join().getEncoding(type).countTokensOrdinary(text.toString());
    }

    boolean exact() {
      return type != null;
    }
  }

  /**
   * Starts loading the encodings in the background, if not yet started: they take about a second
   * and some 40 MB of heap, which the first metered request must not wait for. Called when the
   * metering service is made.
   */
  static void warmUp() {
    Registry.ready();
  }

  /** Waits for the encodings (tests: so that an OpenAI count is exact from the first request). */
  static boolean awaitEncodings(Duration wait) {
    try {
      Registry.LOADED.get(wait.toMillis(), TimeUnit.MILLISECONDS);
      return true;
    } catch (TimeoutException | ExecutionException e) {
      return false;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    }
  }

  /** The encodings, loaded once on a daemon thread when this class is first used. */
  private static final class Registry {
    static final CompletableFuture<EncodingRegistry> LOADED = new CompletableFuture<>();

    static {
      Thread loader =
          new Thread(
              () -> {
                try {
                  EncodingRegistry r = Encodings.newLazyEncodingRegistry();
                  // getEncoding builds the lazy encoding; both are loaded now, off the request
                  // path.
                  r.getEncoding(EncodingType.O200K_BASE).countTokensOrdinary("");
                  r.getEncoding(EncodingType.CL100K_BASE).countTokensOrdinary("");
                  LOADED.complete(r);
                } catch (RuntimeException | Error e) {
                  // Estimates then use the byte bound for every model: conservative, never wrong
                  // low.
                  log.warn(
                      "OpenAI tokenizer encodings could not be loaded; estimates use the byte bound",
                      e);
                  LOADED.completeExceptionally(e);
                }
              },
              "tokenizer-load");
      loader.setDaemon(true);
      loader.start();
    }

    static boolean ready() {
      return LOADED.isDone() && !LOADED.isCompletedExceptionally();
    }
  }

  /** The byte bound over text given piece by piece: counts only, nothing kept. */
  static final class Bytes {
    private long ascii;
    private long nonAscii;

    void add(CharSequence s) {
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        if (c < 0x80) {
          ascii++;
        } else if (c < 0x800 || Character.isSurrogate(c)) {
          nonAscii += 2; // a surrogate pair is 4 bytes of UTF-8: 2 per half
        } else {
          nonAscii += 3;
        }
      }
    }

    void add(char[] s, int offset, int length) {
      add(CharBuffer.wrap(s, offset, length));
    }

    void add(byte[] utf8, int offset, int length) {
      for (int i = offset; i < offset + length; i++) {
        if (utf8[i] >= 0) {
          ascii++;
        } else {
          nonAscii++;
        }
      }
    }

    /** Bytes of JSON (a tool schema) counted as ASCII. */
    void addAscii(long bytes) {
      ascii += bytes;
    }

    long tokens() {
      return ceilDiv(ascii, ASCII_BYTES_PER_TOKEN) + ceilDiv(nonAscii, NON_ASCII_BYTES_PER_TOKEN);
    }

    private static long ceilDiv(long a, long b) {
      return (a + b - 1) / b;
    }
  }

  /**
   * A request's text, gathered by {@link RequestBody#inspect} in its one pass and counted once the
   * model (which may come after the messages) is known. Keeps at most {@link #MAX_EXACT_CHARS}
   * characters; text past that, and tool definitions, only add to a byte count.
   */
  static final class Prompt {
    private final StringBuilder text = new StringBuilder();
    private final Bytes beyond = new Bytes();
    private int messages;
    private long media;

    void text(char[] chars, int offset, int length) {
      int room = Math.max(0, MAX_EXACT_CHARS - text.length());
      int kept = Math.min(room, length);
      text.append(chars, offset, kept);
      if (kept < length) {
        beyond.add(chars, offset + kept, length - kept);
      }
      // Pieces are separate texts: a space keeps their last and first words apart.
      if (kept > 0 && text.length() < MAX_EXACT_CHARS) {
        text.append('\n');
      }
    }

    void text(String s) {
      text(s.toCharArray(), 0, s.length());
    }

    /** A tool definition or other structured input, by the byte length of its JSON. */
    void json(long bytes) {
      beyond.addAscii(bytes);
    }

    void message() {
      messages++;
    }

    int messages() {
      return messages;
    }

    /** An image, file or audio part (RequestBody's media fields). */
    void media() {
      media++;
    }

    /** Image, file and audio parts seen; not in {@link #tokens}, see {@link #mediaTokens}. */
    long mediaItems() {
      return media;
    }

    /** The bound on what the media parts cost: {@link #MEDIA_TOKENS_PER_ITEM} each. */
    long mediaTokens() {
      return media * MEDIA_TOKENS_PER_ITEM;
    }

    /** Input tokens: the text, the framing of each message, and the reply's priming. */
    long tokens(Tokenizer tokenizer) {
      long framing = (long) messages * TOKENS_PER_MESSAGE + TOKENS_PER_REQUEST;
      return tokenizer.count(text) + beyond.tokens() + framing;
    }
  }

  /**
   * Counts response text as it arrives, UTF-8 bytes at a time. For an exact tokenizer it holds up
   * to {@link #OUTPUT_PENDING} bytes and counts them at the last blank before that (a word
   * boundary, where the encodings split text anyway), so a count over pieces matches the count of
   * the whole within a token per piece boundary.
   */
  static final class Output {
    private final Tokenizer tokenizer;
    private final byte[] pending;
    private int length;
    private long exactBytes;
    private long tokens;
    private final Bytes beyond = new Bytes();

    Output(Tokenizer tokenizer) {
      this.tokenizer = tokenizer;
      this.pending = tokenizer.exact() ? new byte[OUTPUT_PENDING] : null;
    }

    void add(byte[] utf8, int offset, int count) {
      if (pending == null || exactBytes >= MAX_EXACT_OUTPUT_BYTES) {
        beyond.add(utf8, offset, count);
        return;
      }
      while (count > 0) {
        int n = Math.min(count, pending.length - length);
        System.arraycopy(utf8, offset, pending, length, n);
        length += n;
        offset += n;
        count -= n;
        if (length == pending.length) {
          flush(cutPoint());
        }
        if (exactBytes >= MAX_EXACT_OUTPUT_BYTES && count > 0) {
          beyond.add(utf8, offset, count);
          return;
        }
      }
    }

    /** Tokens of all text seen so far. */
    long tokens() {
      if (pending != null && length > 0) {
        flush(length);
      }
      return tokens + beyond.tokens();
    }

    int retainedBytes() {
      return pending == null ? 32 : pending.length + 32;
    }

    /** Just before the last blank, else after the last whole UTF-8 character, else all. */
    private int cutPoint() {
      for (int i = length - 1; i > 0; i--) {
        if (pending[i] == ' ' || pending[i] == '\n') {
          return i;
        }
      }
      for (int i = length - 1; i > 0; i--) {
        if ((pending[i] & 0xC0) != 0x80) {
          return i; // a lead or ASCII byte: everything before it is whole characters
        }
      }
      return length;
    }

    private void flush(int upTo) {
      tokens += tokenizer.count(new String(pending, 0, upTo, StandardCharsets.UTF_8));
      exactBytes += upTo;
      System.arraycopy(pending, upTo, pending, 0, length - upTo);
      length -= upTo;
    }
  }

  /**
   * Whether a 2xx response is charged an estimate rather than exactly what it reported: it began (a
   * body byte arrived), and it ended without the provider's final usage. A body that did not
   * complete (client gone, upstream reset) lacks it unless that usage had already arrived; a
   * complete SSE stream without it was cut by its upstream; a complete JSON body without usage is
   * an endpoint that reports none, not charged as before. A Gemini body's last usageMetadata is
   * final only if the body completed.
   *
   * @param finalUsage the provider's final usage was read ({@link UsageFormat#isFinal})
   * @param complete the response body ended (end of stream or trailers)
   * @param sse the body is an event stream
   */
  static boolean needed(
      UsageFormat format, boolean started, boolean finalUsage, boolean complete, boolean sse) {
    if (finalUsage) {
      return false;
    }
    if (!started) {
      // 2xx headers and then nothing (a reasoning model thinks before its first byte, and the
      // client gave up): the provider still bills the prompt, so the prompt is charged.
      return !complete;
    }
    if (format == UsageFormat.GEMINI) {
      return !complete;
    }
    return !complete || sse;
  }

  /**
   * The charge for a response cut short. Output: the larger of the provider's count so far and the
   * estimate (the count stops where the stream did; the text seen may be more). Input: what the
   * provider reported, in its buckets, when it reported any; otherwise the estimate, as uncached
   * input. A provider reports input before the end only as its final count of the prompt
   * (Anthropic's message_start, Gemini's promptTokenCount in every chunk), so an estimate above it
   * would be the estimate's own excess, not tokens used; OpenAI reports nothing before its last
   * chunk, so there the estimate is all there is.
   */
  static TokenUsage charge(Optional<TokenUsage> reported, long inputTokens, long outputTokens) {
    TokenUsage r = reported.orElse(new TokenUsage(0, 0, 0, 0));
    long reportedInput = r.inputTokens() + r.cachedInputTokens() + r.cacheWriteTokens();
    long input = reportedInput > 0 ? r.inputTokens() : inputTokens;
    return new TokenUsage(
        input,
        Math.max(r.outputTokens(), outputTokens),
        r.cachedInputTokens(),
        r.cacheWriteTokens());
  }
}
