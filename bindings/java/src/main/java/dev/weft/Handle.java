package dev.weft;

import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.LongFunction;

/**
 * One native handle: its pointer, freed at most once. Every call on the handle holds the read
 * lock (acquire/release), closing takes the write lock, so a handle is never freed while another
 * thread is inside a call on it, and a closed handle gives a WeftException, not a crash.
 */
final class Handle {
  /** Frees a native pointer (may fail, e.g. a replica still in use: then it stays open). */
  interface Freer {
    void free(long ptr);
  }

  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private final String what;
  private long ptr;

  Handle(String what, long ptr) {
    this.what = what;
    this.ptr = ptr;
  }

  /** The pointer, with the read lock held until release(); throws when closed. */
  long acquire() {
    lock.readLock().lock();
    if (ptr == 0) {
      lock.readLock().unlock();
      throw WeftException.closed(what);
    }
    return ptr;
  }

  void release() {
    lock.readLock().unlock();
  }

  /** f(pointer), with the read lock held during the call; throws when closed. */
  <T> T call(LongFunction<T> f) {
    long p = acquire();
    try {
      return f.apply(p);
    } finally {
      release();
    }
  }

  /** Whether this thread is inside a call on the handle (e.g. in its transaction's body). */
  boolean inUseByThisThread() {
    return lock.getReadHoldCount() > 0;
  }

  boolean isOpen() {
    lock.readLock().lock();
    try {
      return ptr != 0;
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * Frees the pointer once, after calls on other threads have returned. Closing again is a
   * no-op. When the freer throws, the handle stays open.
   */
  void close(Freer freer) {
    if (inUseByThisThread()) {
      throw new WeftException(WeftException.BUSY,
          "the " + what + " cannot be closed from inside a call on it");
    }
    lock.writeLock().lock();
    try {
      if (ptr == 0) return;
      freer.free(ptr);
      ptr = 0;
    } finally {
      lock.writeLock().unlock();
    }
  }
}
