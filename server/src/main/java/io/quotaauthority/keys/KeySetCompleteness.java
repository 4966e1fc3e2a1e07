package io.quotaauthority.keys;

/**
 * Whether {@link LiveKeyHashes} may be trusted to say "no such key": only when it was bulk-loaded
 * while this instance was listening for key changes, and it has kept listening ever since. A load
 * that began before LISTEN, or a connection lost at any time since, could have missed a creation;
 * then an unknown key must be looked up in the database again.
 *
 * <p>Driven by the one listener thread; read by any Check thread.
 */
public final class KeySetCompleteness {
  /** Bumped at every LISTEN: a load counts only for the connection it began on. */
  private long connection;

  private boolean listening;
  private long loadedOn = -1;
  private volatile boolean complete;

  /** LISTEN is in place on a new connection: whatever was loaded before no longer counts. */
  public synchronized void listening() {
    connection++;
    listening = true;
    update();
  }

  /** The listen connection is gone: a creation may be announced to nobody. */
  public synchronized void lost() {
    listening = false;
    update();
  }

  /** A bulk load is about to start; pass the returned token to {@link #loaded}. */
  public synchronized long loadStarting() {
    return listening ? connection : -1;
  }

  /** The bulk load that began with {@code token} is swapped in. */
  public synchronized void loaded(long token) {
    if (token >= 0) {
      loadedOn = token;
    }
    update();
  }

  /** True while an unknown hash may be answered 401 without a query. */
  public boolean complete() {
    return complete;
  }

  private void update() {
    complete = listening && loadedOn == connection;
  }
}
