package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import com.google.rpc.Code;
import com.google.rpc.Status;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.auth.v3.OkHttpResponse;
import io.quotaauthority.provider.GatewayHeaders;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link AllowEncoding} writes exactly the bytes protobuf writes for the allow response built field
 * by field with the message builders (the reference below), over every combination of the options
 * and values of every length class (1-byte and 2-byte length prefixes, non-ASCII).
 */
class AllowEncodingTest {
  private static final List<String> IDS = List.of("7", "123456789012", "9".repeat(130));
  private static final List<String> OPTIONAL =
      new ArrayList<>(java.util.Arrays.asList(null, "0", "12.5", "caf\u00e9", "m".repeat(200)));

  @Test
  void encode_everyCombination_equalsTheMessageBuildersEncoding() throws Exception {
    int combinations = 0;
    for (String id : IDS) {
      for (String remaining : OPTIONAL) {
        for (boolean strip : new boolean[] {false, true}) {
          for (String cap : List.of("", "5")) {
            for (String models : OPTIONAL) {
              for (String resets : List.of("", "2026-12-31T23:00:00Z")) {
                for (String hold : List.of("", "h1.AbC-_x")) {
                  String c = cap.isEmpty() ? null : cap;
                  String r = resets.isEmpty() ? null : resets;
                  String h = hold.isEmpty() ? null : hold;
                  byte[] encoded = AllowEncoding.encode(id, remaining, strip, c, models, r, h);
                  CheckResponse expected = reference(id, remaining, strip, c, models, r, h);

                  assertThat(encoded)
                      .as("%s %s %s %s %s %s %s", id, remaining, strip, c, models, r, h)
                      .isEqualTo(expected.toByteArray());
                  assertThat(CheckResponse.parseFrom(encoded)).isEqualTo(expected);
                  combinations++;
                }
              }
            }
          }
        }
      }
    }
    assertThat(combinations).isEqualTo(3 * 5 * 2 * 2 * 5 * 2 * 2);
  }

  @Test
  void encode_moreResponseHeaders_followTheOthersInOrder() throws Exception {
    String[] extra = {
      "x-quota-window-5h-remaining-usd", "19.5", "x-ratelimit-limit-requests", "60"
    };

    byte[] encoded =
        AllowEncoding.encode(
            "7", "1.5", false, null, null, null, null, AllowEncoding.responseHeaders(extra));

    CheckResponse.Builder expected =
        reference("7", "1.5", false, null, null, null, null).toBuilder();
    expected
        .getOkResponseBuilder()
        .addResponseHeadersToAdd(header(extra[0], extra[1]))
        .addResponseHeadersToAdd(header(extra[2], extra[3]));
    assertThat(encoded).isEqualTo(expected.build().toByteArray());
  }

  /** The allow response as it was built before AllowEncoding, with protobuf's builders. */
  private static CheckResponse reference(
      String keyId,
      String remaining,
      boolean stripQueryKey,
      String cap,
      String models,
      String resetsAt,
      String holdId) {
    OkHttpResponse.Builder ok =
        OkHttpResponse.newBuilder()
            .addHeaders(header(GatewayHeaders.KEY_ID, keyId))
            .addHeaders(header(GatewayHeaders.KEY_LIMITED, remaining == null ? "false" : "true"));
    for (String h : new String[] {"authorization", "x-api-key", "x-goog-api-key"}) {
      ok.addHeadersToRemove(h);
    }
    ok.addHeadersToRemove(GatewayHeaders.ADMITTED);
    if (holdId == null) {
      ok.addHeadersToRemove(GatewayHeaders.HOLD_ID);
    }
    if (cap != null) {
      ok.addHeaders(header(GatewayHeaders.KEY_CONCURRENCY, cap));
    } else {
      ok.addHeadersToRemove(GatewayHeaders.KEY_CONCURRENCY);
    }
    if (models != null) {
      ok.addHeaders(header(GatewayHeaders.KEY_MODELS, models));
    } else {
      ok.addHeadersToRemove(GatewayHeaders.KEY_MODELS);
    }
    if (holdId != null) {
      ok.addHeaders(header(GatewayHeaders.HOLD_ID, holdId));
    }
    if (stripQueryKey) {
      ok.addQueryParametersToRemove("key");
    }
    if (remaining != null) {
      ok.addResponseHeadersToAdd(header(GatewayHeaders.REMAINING_USD, remaining));
    }
    if (resetsAt != null) {
      ok.addResponseHeadersToAdd(header(GatewayHeaders.BUDGET_RESETS_AT, resetsAt));
    }
    return CheckResponse.newBuilder()
        .setStatus(Status.newBuilder().setCode(Code.OK_VALUE))
        .setOkResponse(ok)
        .setDynamicMetadata(
            Struct.newBuilder()
                .putFields("key_id", Value.newBuilder().setStringValue(keyId).build()))
        .build();
  }

  private static HeaderValueOption header(String name, String value) {
    return HeaderValueOption.newBuilder()
        .setHeader(HeaderValue.newBuilder().setKey(name).setValue(value))
        .setAppendAction(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD)
        .build();
  }
}
