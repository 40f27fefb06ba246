package dev.weft;

import java.lang.ref.Cleaner;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * A sync client of a replica (from {@link Replica#sync}): WebSocket connections to peers (relays
 * or replicas), on its own network thread, that exchange changes in the background. Every method
 * is thread-safe. close() closes the connections and stops the thread (not from inside a Weft
 * callback: BUSY); the replica cannot be closed before. It lives as long as its replica is
 * reachable.
 */
public final class Sync implements AutoCloseable {
  private static final class State implements Runnable {
    final Handle handle;
    final Replica.State replica;
    long presenceRef;

    State(long ptr, Replica.State replica) {
      this.handle = new Handle("sync client", ptr);
      this.replica = replica;
    }

    @Override
    public void run() {
      handle.close(NativeApi::syncFree);
      synchronized (this) {
        if (presenceRef != 0) NativeApi.deleteRef(presenceRef);
        presenceRef = 0;
      }
      replica.releaseDependent();
    }
  }

  private final Replica replica;
  private final State state;
  private final Cleaner.Cleanable cleanable;

  Sync(Replica replica, long ptr) {
    this.replica = replica;
    this.state = new State(ptr, replica.state());
    replica.state().retain();
    this.cleanable = Cleanup.CLEANER.register(this, state);
    replica.adopt(this);
  }

  private <T> T with(java.util.function.LongFunction<T> f) {
    return state.handle.call(f);
  }

  private static byte[] url(String url) {
    return Utf8.encode(url, "the URL");
  }

  /** Starts syncing with the peer at url (ws://host:port[/path] or wss://...); OK when added. */
  public void addPeer(String url) {
    byte[] u = url(url);
    with(p -> {
      NativeApi.syncAddPeer(p, u);
      return null;
    });
  }

  /** Closes the connection to url; NOT_FOUND when not added. */
  public void removePeer(String url) {
    byte[] u = url(url);
    with(p -> {
      NativeApi.syncRemovePeer(p, u);
      return null;
    });
  }

  /**
   * Blocks until both sides hold each other's changes of every synced document and the peer has
   * acknowledged them; TIMEOUT after timeoutMs (the message says what is awaited), NOT_FOUND for
   * a URL not added.
   */
  public SyncSummary waitUntilSynced(String url, long timeoutMs) {
    byte[] u = url(url);
    Scope.index(timeoutMs, "the timeout");
    return with(p -> NativeApi.syncWaitUntilSynced(p, u, timeoutMs));
  }

  /**
   * Blocks until a peer (url, or any when null) has acknowledged storing durably every change a
   * causal token of doc names; TIMEOUT after timeoutMs.
   */
  public void waitForAck(String doc, String token, long timeoutMs, String url) {
    byte[] d = Utf8.encode(doc, "the document ID");
    byte[] t = Utf8.encode(token, "the token");
    byte[] u = Utf8.encodeOrNull(url, "the URL");
    Scope.index(timeoutMs, "the timeout");
    with(p -> {
      NativeApi.syncWaitForAck(p, d, t, timeoutMs, u);
      return null;
    });
  }

  /** A snapshot of every peer's connection state and replication lag. */
  public List<PeerStatus> peers() {
    return Collections.unmodifiableList(Arrays.asList(with(NativeApi::syncPeers)));
  }

  /**
   * Sends ephemeral presence (at most 64 KiB, never stored) to every peer syncing doc;
   * DISCONNECTED when no peer is connected.
   */
  public void publishPresence(String doc, byte[] payload) {
    byte[] d = Utf8.encode(doc, "the document ID");
    Scope.notNull(payload, "the payload");
    with(p -> {
      NativeApi.syncPublishPresence(p, d, payload);
      return null;
    });
  }

  /** Sets (null: clears) the presence listener; when this returns, a replaced one is idle. */
  public void setPresenceListener(PresenceListener listener) {
    NativeApi.PresenceSink sink = listener == null ? null : (doc, node, payload) -> {
      NativeApi.enterCallback();
      try {
        listener.onPresence(Utf8.decode(doc), node, payload);
      } catch (Throwable t) {
        NativeApi.report(t);
      } finally {
        NativeApi.leaveCallback();
      }
    };
    with(p -> {
      synchronized (state) {
        long old = state.presenceRef;
        state.presenceRef = NativeApi.syncSetPresence(p, sink);
        if (old != 0) NativeApi.deleteRef(old);
      }
      return null;
    });
  }

  public boolean isClosed() {
    return !state.handle.isOpen();
  }

  /**
   * Closes every connection (waiting up to about a second for close handshakes) and stops the
   * network thread; closing twice is a no-op. BUSY inside a Weft callback.
   */
  @Override
  public void close() {
    if (NativeApi.inCallback()) {
      throw new WeftException(WeftException.BUSY,
          "a sync client cannot be closed from inside a Weft callback");
    }
    if (state.handle.inUseByThisThread()) {
      throw new WeftException(WeftException.BUSY,
          "the sync client cannot be closed from inside a call on it");
    }
    cleanable.clean();
    replica.disown(this);
  }
}
