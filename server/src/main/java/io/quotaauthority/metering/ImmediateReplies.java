package io.quotaauthority.metering;

import com.google.protobuf.ByteString;
import io.envoyproxy.envoy.config.core.v3.HeaderValue;
import io.envoyproxy.envoy.config.core.v3.HeaderValueOption;
import io.envoyproxy.envoy.service.ext_proc.v3.HeaderMutation;
import io.envoyproxy.envoy.service.ext_proc.v3.ImmediateResponse;
import io.envoyproxy.envoy.service.ext_proc.v3.ProcessingResponse;
import io.envoyproxy.envoy.type.v3.HttpStatus;
import io.envoyproxy.envoy.type.v3.StatusCode;
import io.quotaauthority.provider.Provider;
import io.quotaauthority.provider.ProviderError;
import java.nio.charset.StandardCharsets;

/**
 * ext_proc's way to refuse a request before Envoy sends it upstream: an immediate response, which
 * Envoy sends to the client as the whole answer (the provider is never called). The body has the
 * provider's error shape, like Check's denials.
 */
final class ImmediateReplies {
  private ImmediateReplies() {}

  static ProcessingResponse refusal(Provider provider, ProviderError error) {
    StatusCode status = StatusCode.forNumber(error.http());
    if (status == null) {
      throw new IllegalArgumentException("no Envoy StatusCode for HTTP " + error.http());
    }
    HeaderMutation.Builder headers =
        HeaderMutation.newBuilder().addSetHeaders(header("content-type", "application/json"));
    if (error.retryAfterSeconds() > 0) {
      headers.addSetHeaders(header("retry-after", Integer.toString(error.retryAfterSeconds())));
    }
    return ProcessingResponse.newBuilder()
        .setImmediateResponse(
            ImmediateResponse.newBuilder()
                .setStatus(HttpStatus.newBuilder().setCode(status))
                .setHeaders(headers)
                .setBody(ByteString.copyFrom(error.body(provider), StandardCharsets.UTF_8))
                // Envoy's access log and response-code details name the reason.
                .setDetails(error.code()))
        .build();
  }

  private static HeaderValueOption header(String name, String value) {
    return HeaderValueOption.newBuilder()
        // raw_value only: Envoy refuses a HeaderValue with both value fields set.
        .setHeader(
            HeaderValue.newBuilder().setKey(name).setRawValue(ByteString.copyFromUtf8(value)))
        .setAppendAction(HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD)
        .build();
  }
}
