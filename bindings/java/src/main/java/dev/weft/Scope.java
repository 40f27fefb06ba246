package dev.weft;

import java.util.ArrayList;
import java.util.List;

/**
 * The lifetime of a borrowed native pointer (a transaction or a view): valid only on the thread
 * that runs the callback, until it returns. Value lists read with a causal context stay alive
 * until then, so that a write in the same transaction can replace exactly what was read.
 */
final class Scope {
  private final Thread thread = Thread.currentThread();
  private final String what;
  private final List<Long> lists = new ArrayList<>();
  private boolean live = true;

  Scope(String what) {
    this.what = what;
  }

  void check() {
    if (!live) throw WeftException.invalid("the " + what + " is used after it ended");
    if (Thread.currentThread() != thread) {
      throw WeftException.invalid("the " + what + " is used on another thread");
    }
  }

  boolean isLive() {
    return live && Thread.currentThread() == thread;
  }

  /** Keeps a weft_values list until the scope ends. */
  void keep(long list) {
    lists.add(list);
  }

  void end() {
    live = false;
    for (long l : lists) NativeApi.valuesFree(l);
    lists.clear();
  }

  static long index(long i, String what) {
    if (i < 0) throw WeftException.invalid(what + " is negative (" + i + ")");
    return i;
  }

  static <T> T notNull(T o, String what) {
    if (o == null) throw WeftException.invalid(what + " is null");
    return o;
  }
}
