package io.quotaauthority.bench;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * What the bench must undo however it ends (child JVMs, the proxy, the database): run in reverse
 * order from the main thread's finally and from a shutdown hook (Ctrl-C, SIGTERM), whichever comes
 * first; each action runs once.
 */
final class Cleanup implements Runnable {
  interface Action {
    void run() throws Exception;
  }

  private final Deque<Action> actions = new ArrayDeque<>();

  synchronized void add(Action action) {
    actions.push(action);
  }

  /** Runs and forgets one action now (a child JVM no longer needed), keeping the rest. */
  synchronized void runNow(Action action) {
    actions.remove(action);
    runQuietly(action);
  }

  @Override
  public synchronized void run() {
    while (!actions.isEmpty()) {
      runQuietly(actions.pop());
    }
  }

  private static void runQuietly(Action action) {
    try {
      action.run();
    } catch (Exception | Error e) {
      System.err.println("cleanup: " + e);
    }
  }
}
