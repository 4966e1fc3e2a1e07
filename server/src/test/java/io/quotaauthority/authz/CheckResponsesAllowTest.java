package io.quotaauthority.authz;

import static org.assertj.core.api.Assertions.assertThat;

import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.auth.v3.OkHttpResponse;
import java.math.BigDecimal;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The gateway headers an allowed request carries upstream, and those a client's are removed. */
class CheckResponsesAllowTest {
  private static List<String> set(OkHttpResponse ok) {
    return ok.getHeadersList().stream()
        .map(h -> h.getHeader().getKey() + "=" + h.getHeader().getValue())
        .toList();
  }

  @Test
  void allow_cappedKey_writesItsCapUpstreamAndRemovesAnyAdmissionMark() {
    CheckResponse r = CheckResponses.allow("7", new BigDecimal("1.5"), false, 5);
    OkHttpResponse ok = r.getOkResponse();
    assertThat(set(ok))
        .containsExactly(
            "x-quota-key-id=7", "x-quota-key-limited=true", "x-quota-key-concurrency=5");
    assertThat(ok.getHeadersToRemoveList())
        .contains("x-quota-admitted")
        .doesNotContain("x-quota-key-concurrency");
  }

  @Test
  void allow_uncappedKey_removesAClientsConcurrencyHeaderAndAdmissionMark() {
    CheckResponse r = CheckResponses.allow("7", null, false, 0);
    OkHttpResponse ok = r.getOkResponse();
    assertThat(set(ok)).containsExactly("x-quota-key-id=7", "x-quota-key-limited=false");
    assertThat(ok.getHeadersToRemoveList()).contains("x-quota-admitted", "x-quota-key-concurrency");
  }
}
