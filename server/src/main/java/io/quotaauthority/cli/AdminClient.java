package io.quotaauthority.cli;

import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import io.quotaauthority.grpc.BearerTokenInterceptor;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc;
import io.quotaauthority.proto.v1.KeyAdminServiceGrpc.KeyAdminServiceBlockingStub;
import io.quotaauthority.text.ActorNames;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

/**
 * A connection to the admin API that sends the bearer token and the acting OS user with every call
 * and turns a failed call into a {@link CliException} with the right exit code.
 */
public final class AdminClient implements AutoCloseable {
  static final Duration DEADLINE = Duration.ofSeconds(15);

  private final ManagedChannel channel;
  private final KeyAdminServiceBlockingStub stub;
  private final String target;
  private final String tokenSource;

  private AdminClient(
      ManagedChannel channel, KeyAdminServiceBlockingStub stub, String target, String tokenSource) {
    this.channel = channel;
    this.stub = stub;
    this.target = target;
    this.tokenSource = tokenSource;
  }

  /**
   * @param target host:port of the admin port
   * @param tokenSource where the token came from, named when the server refuses it
   * @param actor the OS user, recorded by the server in the audit and its log line
   */
  public static AdminClient connect(
      String target,
      ChannelCredentials credentials,
      String token,
      String tokenSource,
      String actor) {
    ManagedChannel channel = Grpc.newChannelBuilder(target, credentials).build();
    Metadata headers = new Metadata();
    headers.put(BearerTokenInterceptor.AUTHORIZATION, "Bearer " + token);
    headers.put(BearerTokenInterceptor.ACTOR, sanitize(actor));
    KeyAdminServiceBlockingStub stub =
        KeyAdminServiceGrpc.newBlockingStub(channel)
            .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    return new AdminClient(channel, stub, target, tokenSource);
  }

  /** Runs one RPC with a deadline. */
  public <T> T call(Function<KeyAdminServiceBlockingStub, T> rpc) {
    try {
      return rpc.apply(stub.withDeadlineAfter(DEADLINE.toMillis(), TimeUnit.MILLISECONDS));
    } catch (StatusRuntimeException e) {
      throw Errors.fromStatus(e, target, tokenSource);
    }
  }

  /** Header values must be printable ASCII; the server applies the same rule again. */
  static String sanitize(String actor) {
    return actor == null || actor.isBlank() ? "unknown" : ActorNames.sanitize(actor);
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
