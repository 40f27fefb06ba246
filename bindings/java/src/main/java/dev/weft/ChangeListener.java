package dev.weft;

/**
 * Receives the change feed (see {@link Replica#subscribe}). Runs on the thread that committed:
 * the caller of {@link Replica#transact} for local commits, a sync client's network thread for
 * remote ones (attached to the JVM for the call). It may read the replica and start transactions,
 * but must not block for long. An exception it throws goes to the thread's uncaught-exception
 * handler; the feed goes on.
 */
@FunctionalInterface
public interface ChangeListener {
  void onChange(ChangeEvent event);
}
