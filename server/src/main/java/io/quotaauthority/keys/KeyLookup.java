package io.quotaauthority.keys;

import java.util.Collection;
import java.util.List;
import java.util.Optional;

/** Where the key cache reads rows from (the database, in production). */
public interface KeyLookup {
  /** The row with that hash, deleted or not (a deleted row is a tombstone with its version). */
  Optional<KeyRecord> findByHash(KeyHash hash);

  /** The rows with these ids, deleted or not, in one query. */
  List<KeyRecord> findByIds(Collection<Long> ids);
}
