package dev.weft;

/** Carrying an app's exception out of a body that ran under native code. */
final class Callbacks {
  private Callbacks() {}

  /** t itself when unchecked (throw the result); a checked one wrapped as ABORTED. */
  static RuntimeException rethrow(Throwable t) {
    if (t instanceof RuntimeException) return (RuntimeException) t;
    if (t instanceof Error) throw (Error) t;
    return new WeftException(WeftException.ABORTED, "the body threw " + t, t);
  }
}
