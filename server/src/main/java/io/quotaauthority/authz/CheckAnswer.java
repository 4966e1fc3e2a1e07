package io.quotaauthority.authz;

import com.google.protobuf.InvalidProtocolBufferException;
import io.envoyproxy.envoy.service.auth.v3.CheckResponse;

/**
 * A CheckResponse with its encoding, made on first send and kept: the denials (one per provider and
 * verdict) and each key snapshot's allow are sent many times, so they are serialized once, not once
 * per Check.
 */
public final class CheckAnswer {
  private final CheckResponse response;

  /**
   * The encoding once made. Volatile so that a thread seeing the array sees its bytes (a volatile
   * read is a plain load on x86); two threads racing on the first send make equal arrays.
   */
  private volatile byte[] wire;

  private CheckAnswer(CheckResponse response) {
    this.response = response;
  }

  public static CheckAnswer of(CheckResponse response) {
    return new CheckAnswer(response);
  }

  /** An answer already encoded (the allow, see AllowEncoding); the caller gives up the array. */
  static CheckAnswer ofWire(byte[] encoded) {
    CheckAnswer a = new CheckAnswer(null);
    a.wire = encoded;
    return a;
  }

  /** The message (parsed again from the encoding when only that is kept: tests, not Check). */
  public CheckResponse response() {
    if (response != null) {
      return response;
    }
    try {
      return CheckResponse.parseFrom(wire);
    } catch (InvalidProtocolBufferException e) {
      throw new IllegalStateException("an encoding made here does not parse", e);
    }
  }

  /** The encoded response; the caller must not change it. */
  public byte[] wire() {
    byte[] w = wire;
    if (w == null) {
      w = response.toByteArray();
      wire = w;
    }
    return w;
  }
}
