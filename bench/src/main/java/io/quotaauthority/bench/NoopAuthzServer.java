package io.quotaauthority.bench;

import com.google.rpc.Code;
import com.google.rpc.Status;
import io.envoyproxy.envoy.service.auth.v3.AuthorizationGrpc;
import io.envoyproxy.envoy.service.auth.v3.CheckRequest;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;
import io.envoyproxy.envoy.service.auth.v3.OkHttpResponse;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.CountDownLatch;

/**
 * The baseline: an ext_authz server that allows everything, with the same gRPC setup as
 * quota-authority's authz port (Netty, directExecutor, generated service that parses the request)
 * and nothing else. Started by the bench in its own JVM with the server's JVM flags: {@code java
 * -cp quota-bench.jar io.quotaauthority.bench.NoopAuthzServer <port>}.
 */
public final class NoopAuthzServer {
  private NoopAuthzServer() {}

  public static void main(String[] args) throws Exception {
    int port = Integer.parseInt(args[0]);
    CheckResponse ok =
        CheckResponse.newBuilder()
            .setStatus(Status.newBuilder().setCode(Code.OK_VALUE))
            .setOkResponse(OkHttpResponse.getDefaultInstance())
            .build();
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress(InetAddress.getLoopbackAddress(), port))
            .directExecutor()
            .addService(
                new AuthorizationGrpc.AuthorizationImplBase() {
                  @Override
                  public void check(CheckRequest request, StreamObserver<CheckResponse> out) {
                    out.onNext(ok);
                    out.onCompleted();
                  }
                })
            .build()
            .start();
    System.out.println("noop ext_authz serving on 127.0.0.1:" + server.getPort());
    CountDownLatch stopped = new CountDownLatch(1);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  server.shutdownNow();
                  stopped.countDown();
                }));
    stopped.await();
  }
}
