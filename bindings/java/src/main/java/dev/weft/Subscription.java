package dev.weft;

import java.lang.ref.Cleaner;

/**
 * A change-feed subscription (from {@link Replica#subscribe}). close() ends it: when it returns,
 * the listener is not running (unless close is called from inside it) and is not called again.
 * It lives as long as its replica is reachable; the replica cannot be closed while it is open.
 * Thread-safe.
 */
public final class Subscription implements AutoCloseable {
  private static final class State implements Runnable {
    final Handle handle;
    final long sinkRef;
    final Replica.State replica;

    State(long sub, long sinkRef, Replica.State replica) {
      this.handle = new Handle("subscription", sub);
      this.sinkRef = sinkRef;
      this.replica = replica;
    }

    @Override
    public void run() {
      handle.close(p -> NativeApi.unsubscribe(p, sinkRef));
      replica.releaseDependent();
    }
  }

  private final Replica replica;
  private final State state;
  private final Cleaner.Cleanable cleanable;

  Subscription(Replica replica, long[] subAndRef) {
    this.replica = replica;
    this.state = new State(subAndRef[0], subAndRef[1], replica.state());
    replica.state().retain();
    this.cleanable = Cleanup.CLEANER.register(this, state);
    replica.adopt(this);
  }

  public boolean isClosed() {
    return !state.handle.isOpen();
  }

  /** Ends the subscription; closing twice is a no-op. */
  @Override
  public void close() {
    cleanable.clean();
    replica.disown(this);
  }
}
