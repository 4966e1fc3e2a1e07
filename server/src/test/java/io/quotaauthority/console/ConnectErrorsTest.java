package io.quotaauthority.console;

import static org.assertj.core.api.Assertions.assertThat;

import io.grpc.Status;
import java.util.Arrays;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ConnectErrorsTest {
  @ParameterizedTest(name = "{0} -> {1} {2}")
  @CsvSource({
    "OK,                  200, ok",
    "CANCELLED,           499, canceled",
    "UNKNOWN,             500, unknown",
    "INVALID_ARGUMENT,    400, invalid_argument",
    "DEADLINE_EXCEEDED,   504, deadline_exceeded",
    "NOT_FOUND,           404, not_found",
    "ALREADY_EXISTS,      409, already_exists",
    "PERMISSION_DENIED,   403, permission_denied",
    "RESOURCE_EXHAUSTED,  429, resource_exhausted",
    "FAILED_PRECONDITION, 400, failed_precondition",
    "ABORTED,             409, aborted",
    "OUT_OF_RANGE,        400, out_of_range",
    "UNIMPLEMENTED,       501, unimplemented",
    "INTERNAL,            500, internal",
    "UNAVAILABLE,         503, unavailable",
    "DATA_LOSS,           500, data_loss",
    "UNAUTHENTICATED,     401, unauthenticated",
  })
  void everyGrpcCode_mapsToConnectsHttpStatusAndName(Status.Code code, int http, String name) {
    assertThat(ConnectErrors.httpStatus(code)).isEqualTo(http);
    assertThat(ConnectErrors.name(code)).isEqualTo(name);
  }

  @org.junit.jupiter.api.Test
  void table_coversEveryCode() {
    // A code added to gRPC fails the switch at compile time; this keeps the table above whole.
    assertThat(Arrays.stream(Status.Code.values()).map(ConnectErrors::name)).hasSize(17);
  }
}
