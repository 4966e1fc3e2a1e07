package io.quotaauthority.grpc;

import com.google.protobuf.Message;
import io.grpc.Attributes;
import io.grpc.KnownLength;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.SecurityLevel;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerMethodDefinition;
import io.grpc.ServerServiceDefinition;
import io.grpc.ServiceDescriptor;
import io.grpc.Status;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Answers a request that does not parse (a proto3 string field with invalid UTF-8, a truncated
 * message) with INVALID_ARGUMENT naming the field, instead of gRPC's default. Left alone, gRPC
 * parses the request before any interceptor sees it and, when that throws, closes the stream
 * UNKNOWN ("Application error processing RPC") underneath every interceptor, so such calls were
 * neither answered by the contract nor counted in {@code quota_admin_calls_total}.
 *
 * <p>{@link #refuse} rebuilds a service so that each method receives the raw request bytes and
 * parses them itself, here, with the method's own marshaller: a failure closes the call through the
 * interceptors (and so is counted) with a description naming the field, e.g. {@code key.name is not
 * valid UTF-8}. Meant for the admin service, where requests are small; Check reads its request's
 * bytes itself (authz.CheckReader) and names a bad field with {@link #describe} too.
 */
public final class MalformedRequests {
  private MalformedRequests() {}

  public static ServerServiceDefinition refuse(ServerServiceDefinition service) {
    ServiceDescriptor original = service.getServiceDescriptor();
    List<ServerMethodDefinition<byte[], ?>> methods = new ArrayList<>();
    for (ServerMethodDefinition<?, ?> m : service.getMethods()) {
      methods.add(wrap(m));
    }
    // Same name and schema (server reflection still describes the service), raw request bytes.
    ServiceDescriptor.Builder descriptor =
        ServiceDescriptor.newBuilder(original.getName())
            .setSchemaDescriptor(original.getSchemaDescriptor());
    methods.forEach(m -> descriptor.addMethod(m.getMethodDescriptor()));
    ServerServiceDefinition.Builder b = ServerServiceDefinition.builder(descriptor.build());
    methods.forEach(b::addMethod);
    return b.build();
  }

  private static <Q, A> ServerMethodDefinition<byte[], A> wrap(
      ServerMethodDefinition<Q, A> original) {
    MethodDescriptor<Q, A> method = original.getMethodDescriptor();
    MethodDescriptor<byte[], A> raw =
        method.toBuilder(BYTES, method.getResponseMarshaller()).build();
    return ServerMethodDefinition.create(raw, (call, headers) -> start(original, call, headers));
  }

  private static <Q, A> ServerCall.Listener<byte[]> start(
      ServerMethodDefinition<Q, A> original, ServerCall<byte[], A> call, Metadata headers) {
    MethodDescriptor<Q, A> method = original.getMethodDescriptor();
    ServerCallHandler<Q, A> handler = original.getServerCallHandler();
    ServerCall.Listener<Q> delegate = handler.startCall(new Call<>(call, method), headers);
    return new ServerCall.Listener<>() {
      /** Set once a request was refused: the call is closed, the handler hears no more of it. */
      private boolean refused;

      @Override
      public void onMessage(byte[] bytes) {
        if (refused) {
          return;
        }
        Q request;
        try {
          request = method.parseRequest(new ByteArrayInputStream(bytes));
        } catch (RuntimeException e) {
          refused = true;
          call.close(
              Status.INVALID_ARGUMENT.withDescription(describe(method, bytes)), new Metadata());
          return;
        }
        delegate.onMessage(request);
      }

      @Override
      public void onHalfClose() {
        if (!refused) {
          delegate.onHalfClose();
        }
      }

      @Override
      public void onCancel() {
        delegate.onCancel();
      }

      @Override
      public void onComplete() {
        delegate.onComplete();
      }

      @Override
      public void onReady() {
        if (!refused) {
          delegate.onReady();
        }
      }
    };
  }

  /** "key.name is not valid UTF-8", or a generic line when no string field is to blame. */
  public static String describe(MethodDescriptor<?, ?> method, byte[] bytes) {
    if (method.getRequestMarshaller() instanceof MethodDescriptor.PrototypeMarshaller<?> p
        && p.getMessagePrototype() instanceof Message prototype) {
      Optional<String> field = Utf8Fields.firstInvalid(prototype.getDescriptorForType(), bytes);
      if (field.isPresent()) {
        return field.get() + " is not valid UTF-8";
      }
    }
    return "request is not a valid " + method.getFullMethodName().replace('/', '.') + " message";
  }

  /**
   * The request as it came, parsed later by {@link #start}'s listener (tests send raw bytes with
   * it).
   */
  public static final MethodDescriptor.Marshaller<byte[]> BYTES =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
          return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
          try {
            if (stream instanceof KnownLength) {
              // gRPC's own stream knows its length: one array of that size, no growing copies.
              byte[] b = new byte[stream.available()];
              if (stream.readNBytes(b, 0, b.length) == b.length && stream.read() < 0) {
                return b;
              }
              throw new IOException("the request's stream changed length while read");
            }
            return stream.readAllBytes();
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }
      };

  /** The raw call as the original handler expects it: same responses, the original descriptor. */
  private static final class Call<Q, A> extends ServerCall<Q, A> {
    private final ServerCall<byte[], A> raw;
    private final MethodDescriptor<Q, A> method;

    Call(ServerCall<byte[], A> raw, MethodDescriptor<Q, A> method) {
      this.raw = raw;
      this.method = method;
    }

    @Override
    public void request(int numMessages) {
      raw.request(numMessages);
    }

    @Override
    public void sendHeaders(Metadata headers) {
      raw.sendHeaders(headers);
    }

    @Override
    public void sendMessage(A message) {
      raw.sendMessage(message);
    }

    @Override
    public void close(Status status, Metadata trailers) {
      raw.close(status, trailers);
    }

    @Override
    public boolean isCancelled() {
      return raw.isCancelled();
    }

    @Override
    public boolean isReady() {
      return raw.isReady();
    }

    @Override
    public void setMessageCompression(boolean enabled) {
      raw.setMessageCompression(enabled);
    }

    @Override
    public void setCompression(String compressor) {
      raw.setCompression(compressor);
    }

    @Override
    public void setOnReadyThreshold(int numBytes) {
      raw.setOnReadyThreshold(numBytes);
    }

    @Override
    public SecurityLevel getSecurityLevel() {
      return raw.getSecurityLevel();
    }

    @Override
    public Attributes getAttributes() {
      return raw.getAttributes();
    }

    @Override
    public String getAuthority() {
      return raw.getAuthority();
    }

    @Override
    public MethodDescriptor<Q, A> getMethodDescriptor() {
      return method;
    }
  }
}
