package dev.weft;

/**
 * Resolves on write (see {@link Replica#setConflictResolver}). Runs on the thread that applied
 * the remote change (a sync network thread, or the caller of {@link Replica#applyChanges}), after
 * it was committed and reported to the change feed; it may read the replica.
 */
@FunctionalInterface
public interface ConflictResolver {
  /**
   * A scalar to write as a local change replacing exactly the siblings shown, or null to leave
   * them for the app to resolve on read. A choice that is not a scalar, or an exception, leaves
   * the siblings as they are (the exception goes to the thread's uncaught-exception handler).
   */
  Value resolve(Conflict conflict);
}
