package dev.weft;

/**
 * Receives remote presence (see {@link Sync#setPresenceListener}). Runs on the sync client's
 * network thread (attached to the JVM for the call) and must not block; it may call other Sync
 * methods, but not {@link Sync#close}. An exception goes to the thread's uncaught-exception
 * handler.
 */
@FunctionalInterface
public interface PresenceListener {
  /** A remote node's ephemeral payload for doc (valid after the call: it is a copy). */
  void onPresence(String doc, long node, byte[] payload);
}
