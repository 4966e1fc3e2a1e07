package io.quotaauthority.config;

import com.sun.security.auth.module.UnixSystem;

/** The numeric id of the user this process runs as, for the owner check of secret files. */
final class RunningUser {
  private static final long UID = lookup();

  private RunningUser() {}

  /** The process's uid, or -1 where there is none (not a Unix system). */
  static long uid() {
    return UID;
  }

  private static long lookup() {
    try {
      // jdk.security.auth is part of every JDK and JRE image; it reads getuid() without JNI of
      // ours.
      return new UnixSystem().getUid();
    } catch (LinkageError | RuntimeException e) {
      return -1;
    }
  }
}
