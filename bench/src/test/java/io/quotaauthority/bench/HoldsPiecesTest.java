package io.quotaauthority.bench;

import static org.assertj.core.api.Assertions.assertThat;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.ext_proc.v3.BodyResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.CommonResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import java.math.BigDecimal;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/** The holds group's pure parts: the load generator's keys, requests and answers, the probe. */
class HoldsPiecesTest {
  @Test
  void promptTokens_gpt4oMiniHold_isWhatTheHoldWasPricedOn() {
    // 28 prompt tokens x 15e-8 + 256 output tokens x 60e-8 = 0.00015780 USD.
    assertThat(HoldsScenario.promptTokens(new BigDecimal("0.00015780"))).isEqualTo(28);
    // A hold below the output's price alone still reports one prompt token.
    assertThat(HoldsScenario.promptTokens(new BigDecimal("0.00010000"))).isEqualTo(1);
  }

  @Test
  void untilRefused_refusal_movesToTheNextKeyUntilNoneIsLeft() {
    HoldsLoad.UntilRefused keys = new HoldsLoad.UntilRefused(10, 12);

    long first = keys.next(-1, false);
    assertThat(keys.next(first, false)).isEqualTo(first);
    long second = keys.next(first, true);
    assertThat(keys.next(second, true)).isEqualTo(-1);

    assertThat(first).isEqualTo(10);
    assertThat(second).isEqualTo(11);
    assertThat(keys.ranOut()).isTrue();
    assertThat(keys.used(10)).isEqualTo(2);
  }

  @Test
  void admits_bodyAnswerWithTheAdmittedMark_onlyThat() {
    ProcessingResponse marked =
        ProcessingResponse.newBuilder()
            .setRequestBody(
                BodyResponse.newBuilder()
                    .setResponse(
                        CommonResponse.newBuilder()
                            .setHeaderMutation(
                                HeaderMutation.newBuilder()
                                    .addSetHeaders(
                                        HeaderValueOption.newBuilder()
                                            .setHeader(
                                                HeaderValue.newBuilder()
                                                    .setKey("x-quota-admitted")
                                                    .setRawValue(ByteString.copyFromUtf8("1")))))))
            .build();
    ProcessingResponse plain =
        ProcessingResponse.newBuilder()
            .setRequestBody(
                BodyResponse.newBuilder().setResponse(CommonResponse.getDefaultInstance()))
            .build();

    assertThat(HoldsLoad.admits(marked)).isTrue();
    assertThat(HoldsLoad.admits(plain)).isFalse();
  }

  @Test
  void requestHeaders_asEnvoySendsThemAfterCheck_carryTheKeyAndItsLimit() {
    var headers = HoldsLoad.requestHeaders(4_000_000_001L, "r-1").getRequestHeaders().getHeaders();
    Map<String, String> h = new TreeMap<>();
    headers.getHeadersList().forEach(v -> h.put(v.getKey(), v.getRawValue().toStringUtf8()));

    assertThat(h)
        .containsEntry("x-quota-key-id", "4000000001")
        .containsEntry("x-quota-key-limited", "true")
        .containsEntry(":path", "/v1/chat/completions")
        .containsEntry("content-length", Integer.toString(HoldsLoad.REQUEST_BODY.length));
    assertThat(headers.getHeadersList()).allMatch(v -> v.getValue().isEmpty());
  }
}
