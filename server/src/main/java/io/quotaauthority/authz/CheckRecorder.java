package io.quotaauthority.authz;

import io.quotaauthority.keys.Verdict;

/** Told of every Check decision (metrics); must not block or allocate. */
public interface CheckRecorder {
  CheckRecorder NONE = (verdict, nanos) -> {};

  void record(Verdict verdict, long elapsedNanos);
}
