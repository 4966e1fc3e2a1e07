package io.quotaauthority.metering;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.grpc.Channel;
import io.quotaauthority.provider.GatewayHeaders;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.OptionalLong;

/**
 * One OpenAI chat completion of a key with a quota, walked through a real metering port exactly as
 * Envoy's ext_proc filter walks it: request headers as Check left them (x-quota-key-id and
 * x-quota-key-limited: true), the BUFFERED request body (where the hold is taken or refused), then,
 * only when admitted, the response headers and the response body with its usage. A refused request
 * sends nothing more: Envoy answers the client with the immediate response and never calls the
 * provider. For the hold ITs of other packages (cluster, faults), which cannot reach {@link
 * EnvoyStream}.
 *
 * <p>The models of {@link #PRICES_YAML} cost nothing for input, so a request's maximum cost is its
 * output bound times the output price whatever its prompt: exactly {@link #ESTIMATE} for both.
 */
public final class HeldRequest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * {@link #MODEL}: 50 USD per million output tokens, requests state max_tokens {@link
   * #MAX_TOKENS}. {@link #OVERRUN_MODEL}: the same price, and a max_output of 1000 that is wrong on
   * purpose (its responses report more): a request without max_tokens is held on 1000 tokens.
   */
  public static final String PRICES_YAML =
      """
      as_of: "holds-it"
      models:
        "holds-model":   {input: "0", output: "50.00"}
        "holds-overrun": {input: "0", output: "50.00", max_output: 1000}
      """;

  public static final String MODEL = "holds-model";
  public static final String OVERRUN_MODEL = "holds-overrun";
  public static final long MAX_TOKENS = 1000;

  /** 1000 output tokens x 50 USD per million: both models' maximum cost. */
  public static final BigDecimal ESTIMATE = new BigDecimal("0.05000000");

  /** USD per output token. */
  private static final BigDecimal OUTPUT_PRICE = new BigDecimal("0.00005");

  /** How a request's body was answered. */
  public enum Outcome {
    /** Held and marked x-quota-admitted: Envoy sends it upstream. */
    ADMITTED,
    /** 429 insufficient_quota immediate response: never sent upstream. */
    INSUFFICIENT_QUOTA,
    /** 503 quota_unavailable immediate response: never sent upstream. */
    QUOTA_UNAVAILABLE,
    /**
     * Let through without the admission mark (metering answered it unread: its lane was saturated):
     * Envoy's fail-closed stage refuses it, so it never reaches the provider either.
     */
    UNMARKED
  }

  private final EnvoyStream envoy;
  private final String model;
  private final byte[] body;
  private final long keyId;
  private final String requestId;
  private ProcessingResponse bodyAnswer;

  private HeldRequest(EnvoyStream envoy, String model, byte[] body, long keyId, String requestId) {
    this.envoy = envoy;
    this.model = model;
    this.body = body;
    this.keyId = keyId;
    this.requestId = requestId;
  }

  /**
   * Waits until the tokenizer encodings a server loads in the background at start are loaded (once
   * per JVM, seconds of CPU): a run that starts before would time its lanes against that load.
   */
  public static void awaitWarm() {
    assertThat(TokenEstimate.awaitEncodings(Duration.ofSeconds(30))).isTrue();
  }

  /** Writes {@link #PRICES_YAML} into {@code dir}, for QUOTA_PRICES_FILE. */
  public static Path writePrices(Path dir) {
    try {
      return Files.writeString(dir.resolve("holds-prices.yaml"), PRICES_YAML);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** What an OpenAI response reporting {@code completionTokens} output tokens costs. */
  public static BigDecimal cost(long completionTokens) {
    return OUTPUT_PRICE.multiply(BigDecimal.valueOf(completionTokens)).setScale(8);
  }

  /**
   * Opens the ext_proc stream (as Envoy does when the request arrives); nothing is sent yet.
   *
   * @param maxTokens the request's max_tokens, or empty to state none
   */
  public static HeldRequest open(
      Channel envoyMetering, long keyId, String model, OptionalLong maxTokens, String requestId) {
    String limit = maxTokens.isPresent() ? "\"max_tokens\":" + maxTokens.getAsLong() + "," : "";
    byte[] body =
        ("{\"model\":\""
                + model
                + "\","
                + limit
                + "\"messages\":[{\"role\":\"user\",\"content\":\"Say ok.\"}]}")
            .getBytes(StandardCharsets.UTF_8);
    return new HeldRequest(new EnvoyStream(envoyMetering), model, body, keyId, requestId);
  }

  /** {@link #open} and {@link #requestHeaders} at once. */
  public static HeldRequest start(
      Channel envoyMetering, long keyId, String model, OptionalLong maxTokens, String requestId) {
    HeldRequest r = open(envoyMetering, keyId, model, maxTokens, requestId);
    r.requestHeaders();
    return r;
  }

  /**
   * Sends the request headers as Envoy does after Check allowed a key with a quota; asserts they
   * are answered without an immediate response and without the admission mark (the hold is taken at
   * the body).
   */
  public void requestHeaders() {
    Map<String, String> headers =
        EnvoyStream.requestHeaders(
            "/v1/chat/completions", Long.toString(keyId), requestId, body.length);
    // As Check sets it for a key with a quota (CheckResponses.allow).
    headers.put(GatewayHeaders.KEY_LIMITED, "true");
    ProcessingResponse answer = envoy.requestHeaders(headers, false);
    assertThat(answer.hasRequestHeaders()).as("request headers answered: %s", answer).isTrue();
    assertThat(admittedMark(answer.getRequestHeaders().getResponse().getHeaderMutation()))
        .as("a key with a quota is not admitted before its hold")
        .isFalse();
  }

  /**
   * Sends the whole request body (BUFFERED) and classifies the answer; asserts its shape: an
   * admission carries x-quota-admitted: 1 and no immediate response; a refusal is the provider's
   * error shape with its status and code, and the server then ends the stream.
   */
  public Outcome admit() {
    bodyAnswer = envoy.requestBody(body);
    if (bodyAnswer.hasRequestBody()) {
      return admittedMark(bodyAnswer.getRequestBody().getResponse().getHeaderMutation())
          ? Outcome.ADMITTED
          : Outcome.UNMARKED;
    }
    assertThat(bodyAnswer.hasImmediateResponse())
        .as("the request body is either admitted or refused at once: %s", bodyAnswer)
        .isTrue();
    ImmediateResponse reply = bodyAnswer.getImmediateResponse();
    JsonNode error = errorOf(reply);
    Outcome outcome;
    if (reply.getStatus().getCodeValue() == 429) {
      assertThat(reply.getDetails()).isEqualTo("insufficient_quota");
      assertThat(error.at("/error/code").asText()).isEqualTo("insufficient_quota");
      assertThat(error.at("/error/message").asText())
          .startsWith("This request may cost up to " + ESTIMATE.toPlainString() + " USD; ");
      outcome = Outcome.INSUFFICIENT_QUOTA;
    } else {
      assertThat(reply.getStatus().getCodeValue()).as("refusal status").isEqualTo(503);
      assertThat(reply.getDetails()).isEqualTo("quota_unavailable");
      assertThat(error.at("/error/code").asText()).isEqualTo("quota_unavailable");
      outcome = Outcome.QUOTA_UNAVAILABLE;
    }
    // Nothing reached the provider and nothing more is metered: the server ends the stream, as
    // for a local reply, and Envoy sends no response phase for it.
    envoy.awaitClosed();
    assertThat(envoy.error()).as("the refused stream ends cleanly").isNull();
    return outcome;
  }

  /** The refusal's message (what remains, as the instance saw it). */
  public String refusalMessage() {
    return errorOf(bodyAnswer.getImmediateResponse()).at("/error/message").asText();
  }

  /**
   * The provider's answer to an admitted request: 200, a JSON chat completion reporting these
   * tokens, in one body message with end_of_stream, then Envoy half-closes the stream.
   */
  public void respond(long promptTokens, long completionTokens) {
    ProcessingResponse headers = envoy.responseHeaders(200, "application/json");
    assertThat(headers.hasResponseHeaders()).isTrue();
    byte[] response =
        ("{\"id\":\"chatcmpl-holds\",\"object\":\"chat.completion\",\"created\":1748779200,"
                + "\"model\":\""
                + model
                + "\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                + "\"content\":\"ok\"},\"finish_reason\":\"stop\"}],"
                + "\"usage\":{\"prompt_tokens\":"
                + promptTokens
                + ",\"completion_tokens\":"
                + completionTokens
                + ",\"total_tokens\":"
                + (promptTokens + completionTokens)
                + "}}")
            .getBytes(StandardCharsets.UTF_8);
    assertThat(envoy.responseBody(response, 0, response.length, true))
        .isEqualTo(ExtProcServiceTest.CONTINUE_RESPONSE_BODY);
    envoy.complete();
  }

  /** Envoy resets the stream (the client went away before any response). */
  public void cancel() {
    envoy.cancel();
  }

  private static boolean admittedMark(HeaderMutation m) {
    for (HeaderValueOption h : m.getSetHeadersList()) {
      if (h.getHeader().getKey().equals(GatewayHeaders.ADMITTED)) {
        assertThat(h.getHeader().getRawValue().toStringUtf8()).isEqualTo("1");
        return true;
      }
    }
    return false;
  }

  private static JsonNode errorOf(ImmediateResponse reply) {
    try {
      return JSON.readTree(reply.getBody().toStringUtf8());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
