package dev.weft;

import java.lang.ref.Cleaner;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.LongFunction;

/**
 * A replica: one device's Weft database (SQLite), holding many documents. Open it with
 * {@link #open}, close it with {@link #close} (try-with-resources); a replica the app forgets is
 * closed by a Cleaner once it and its Syncs and Subscriptions are unreachable.
 *
 * <p>Threads: a Replica may be used from any number of threads at once. A transaction or read
 * body runs on the calling thread; inside it, do not start another transaction or read on this
 * replica (use the Txn and its view). close() waits for calls on other threads to return; it
 * throws BUSY inside a call on this replica, or while a Sync or Subscription of it is open.
 *
 * <p>Errors: every failure is a {@link WeftException} with the C API's code; bad arguments
 * (null, a lone surrogate in a string, a negative index) fail with INVALID_ARGUMENT and change
 * nothing. Document IDs are 1 to 1024 bytes of UTF-8.
 */
public final class Replica implements AutoCloseable {
  /** What the Cleaner needs; never refers to the Replica itself. */
  static final class State implements Runnable {
    final Handle handle;
    private int dependents;
    private boolean closeWanted;
    private final Map<String, Long> resolverRefs = new HashMap<>();
    // Held while a resolver is replaced (not the state's monitor: the native call waits for a
    // running resolver, which may subscribe or open a sync).
    final Object resolverLock = new Object();

    State(long ptr) {
      handle = new Handle("replica", ptr);
    }

    /** The Cleaner's action: close once no Sync or Subscription depends on the replica. */
    @Override
    public void run() {
      synchronized (this) {
        closeWanted = true;
        if (dependents > 0) return;
      }
      handle.close(NativeApi::close);
      synchronized (this) {
        for (long ref : resolverRefs.values()) NativeApi.deleteRef(ref);
        resolverRefs.clear();
      }
    }

    synchronized void retain() {
      dependents++;
    }

    void releaseDependent() {
      synchronized (this) {
        if (--dependents > 0 || !closeWanted) return;
      }
      run();
    }

    synchronized int dependents() {
      return dependents;
    }

    synchronized Long swapResolver(String doc, long ref) {
      return ref == 0 ? resolverRefs.remove(doc) : resolverRefs.put(doc, ref);
    }
  }

  private final State state;
  private final Cleaner.Cleanable cleanable;
  private final String path;
  // Open Subscriptions and Syncs stay reachable as long as their replica is.
  private final Set<Object> children = Collections.synchronizedSet(new HashSet<>());
  private final ThreadLocal<String> inBody = new ThreadLocal<>();

  private Replica(long ptr, String path) {
    this.state = new State(ptr);
    this.path = path;
    this.cleanable = Cleanup.CLEANER.register(this, state);
  }

  /** Opens (creating it if missing) the replica at a file path, with default options. */
  public static Replica open(String path) {
    return open(path, null);
  }

  /**
   * Opens the replica at a file path. CORRUPTION for a file that is not a Weft database,
   * UNSUPPORTED_VERSION for one written by a newer Weft, IO_ERROR / NOT_FOUND when it cannot be
   * opened or does not exist; nothing is changed on failure.
   */
  public static Replica open(String path, ReplicaOptions options) {
    byte[] p = Utf8.encode(path, "the path");
    ReplicaOptions o = options != null ? options : new ReplicaOptions();
    long ptr = NativeApi.open(p, options != null, o.durabilityFull, o.snapshotChanges,
        o.snapshotOps, o.publicDocuments, o.createIfMissing, o.driftCheck, o.maxDriftMs);
    return new Replica(ptr, path);
  }

  /** The library's version, e.g. "0.1.0". */
  public static String libraryVersion() {
    return NativeApi.version();
  }

  /**
   * Closes the replica. BUSY (and nothing is closed) while a Sync or Subscription of it is open,
   * or when called inside a call on it; waits for calls on other threads. Closing twice is a
   * no-op; afterwards every method throws INVALID_ARGUMENT ("the replica is closed").
   */
  @Override
  public void close() {
    if (state.handle.inUseByThisThread()) {
      throw new WeftException(WeftException.BUSY,
          "the replica cannot be closed from inside a call on it");
    }
    int open = state.dependents();
    if (open > 0) {
      throw new WeftException(WeftException.BUSY, open
          + " Sync or Subscription handle(s) of this replica are still open; close them first");
    }
    cleanable.clean();
  }

  public boolean isClosed() {
    return !state.handle.isOpen();
  }

  /** The path it was opened with. */
  public String path() {
    return path;
  }

  State state() {
    return state;
  }

  void adopt(Object child) {
    children.add(child);
  }

  void disown(Object child) {
    children.remove(child);
  }

  <T> T with(LongFunction<T> f) {
    return state.handle.call(f);
  }

  private static byte[] docId(String doc) {
    return Utf8.encode(doc, "the document ID");
  }

  private static byte[] key(byte[] k) {
    if (k == null || k.length != 32) {
      throw WeftException.invalid("a public key is 32 bytes");
    }
    return k;
  }

  /** The stable node ID (random, chosen on first open): its identity in sync. */
  public long nodeId() {
    return with(NativeApi::nodeId);
  }

  /** The author ID of the changes this open makes (a new one after a crash or a copy). */
  public long actorId() {
    return with(NativeApi::actorId);
  }

  /** This device's identity: its Ed25519 public key (32 bytes). */
  public byte[] publicKey() {
    return with(NativeApi::publicKey);
  }

  /** The public key as 64 lowercase hex characters (the keys of {@link #members}). */
  public String publicKeyHex() {
    return Keys.toHex(publicKey());
  }

  /** Creates the document; nothing happens when it exists. */
  public void createDocument(String doc) {
    byte[] d = docId(doc);
    with(p -> {
      NativeApi.docCreate(p, d);
      return null;
    });
  }

  public boolean hasDocument(String doc) {
    byte[] d = docId(doc);
    return with(p -> NativeApi.docExists(p, d));
  }

  /** Removes the document, its log and snapshots; NOT_FOUND when absent. */
  public void deleteDocument(String doc) {
    byte[] d = docId(doc);
    with(p -> {
      NativeApi.docDelete(p, d);
      return null;
    });
  }

  /** Every document ID, sorted. */
  public List<String> documents() {
    return Collections.unmodifiableList(
        Arrays.asList(Utf8.decodeAll(with(NativeApi::docList))));
  }

  /** Writes a snapshot of the document now (normally done by the snapshot policy). */
  public void snapshot(String doc) {
    byte[] d = docId(doc);
    with(p -> {
      NativeApi.docSnapshot(p, d);
      return null;
    });
  }

  private void notInBody(String what) {
    String body = inBody.get();
    if (body != null) {
      throw new WeftException(WeftException.BUSY, what + " inside a " + body
          + " of the same replica (use the transaction and its view)");
    }
  }

  /**
   * Runs body in one transaction on doc (created if new): when it returns, its writes commit as
   * one change; when it throws, nothing is left behind and that exception is rethrown as is.
   * Other writers wait meanwhile; readers go on. Change listeners for the commit run on this
   * thread before transact returns.
   */
  public CommitInfo transact(String doc, Consumer<Txn> body) {
    byte[] d = docId(doc);
    Scope.notNull(body, "the transaction body");
    notInBody("a transaction started");
    Throwable[] failure = new Throwable[1];
    NativeApi.Body run = txn -> {
      Scope scope = new Scope("transaction");
      inBody.set("transaction");
      try {
        body.accept(new Txn(scope, txn, doc));
        return 0;
      } catch (WeftException e) {
        failure[0] = e;
        return e.code();
      } catch (Throwable t) {
        failure[0] = t;
        return WeftException.ABORTED;
      } finally {
        inBody.remove();
        scope.end();
      }
    };
    try {
      return with(p -> NativeApi.transact(p, d, run));
    } catch (WeftException e) {
      throw failure[0] != null ? Callbacks.rethrow(failure[0]) : e;
    }
  }

  /** Runs fn with a consistent read-only view of doc; NOT_FOUND when the document is absent. */
  public <T> T read(String doc, Function<View, T> fn) {
    byte[] d = docId(doc);
    return viewCall(fn, (p, body) -> NativeApi.read(p, d, body));
  }

  /**
   * Runs fn with doc as it was at a version (a causal token; "" for before its first change).
   * NOT_FOUND when this replica does not hold that version; INVALID_ARGUMENT for a malformed
   * token or one of another document; HISTORY_TRUNCATED when older than the history kept.
   */
  public <T> T readAt(String doc, String token, Function<View, T> fn) {
    byte[] d = docId(doc);
    byte[] tk = Utf8.encode(token, "the token");
    return viewCall(fn, (p, body) -> NativeApi.readAt(p, d, tk, body));
  }

  private interface ViewCall {
    void call(long replica, NativeApi.Body body);
  }

  private <T> T viewCall(Function<View, T> fn, ViewCall call) {
    Scope.notNull(fn, "the read body");
    notInBody("a read started");
    List<T> result = new ArrayList<>(1);
    Throwable[] failure = new Throwable[1];
    NativeApi.Body run = view -> {
      Scope scope = new Scope("view");
      inBody.set("read");
      try {
        result.add(fn.apply(new View(scope, view)));
      } catch (Throwable t) {
        failure[0] = t;
      } finally {
        inBody.remove();
        scope.end();
      }
      return 0;
    };
    with(p -> {
      call.call(p, run);
      return null;
    });
    if (failure[0] != null) throw Callbacks.rethrow(failure[0]);
    return result.get(0);
  }

  /** The whole document as JSON. */
  public String toJson(String doc) {
    return read(doc, View::toJson);
  }

  /** What changed from version `from` to `to` of doc (causal tokens; from must be earlier). */
  public List<Patch> diff(String doc, String from, String to) {
    byte[] d = docId(doc);
    byte[] f = Utf8.encode(from, "the from token");
    byte[] t = Utf8.encode(to, "the to token");
    return Collections.unmodifiableList(Arrays.asList(with(p -> NativeApi.diff(p, d, f, t))));
  }

  /** doc's changes in this replica's log order (causal), oldest first. */
  public List<HistoryEntry> history(String doc) {
    byte[] d = docId(doc);
    return Collections.unmodifiableList(Arrays.asList(with(p -> NativeApi.history(p, d))));
  }

  /**
   * Calls listener after each commit of doc (null: every document), in commit order, one call at
   * a time, until the Subscription is closed. See {@link ChangeListener} for its thread.
   */
  public Subscription subscribe(String doc, ChangeListener listener) {
    byte[] d = doc == null ? null : docId(doc);
    Scope.notNull(listener, "the listener");
    return with(p -> new Subscription(this, NativeApi.subscribe(p, d, ev -> {
      NativeApi.enterCallback();
      try {
        listener.onChange(ev);
      } catch (Throwable t) {
        NativeApi.report(t);
      } finally {
        NativeApi.leaveCallback();
      }
    })));
  }

  /**
   * Sets the conflict resolver for doc (null: every document without its own), replacing any
   * earlier one; a null resolver removes it. When this returns, a replaced resolver is not
   * running. See {@link ConflictResolver} for its thread.
   */
  public void setConflictResolver(String doc, ConflictResolver resolver) {
    byte[] d = doc == null ? new byte[0] : docId(doc);
    String slot = doc == null ? "" : doc;
    NativeApi.ResolverSink sink = resolver == null ? null
        : (dd, node, seq, k, sibs) -> {
          NativeApi.enterCallback();
          try {
            Value v = resolver.resolve(
                new Conflict(Utf8.decode(dd), new ObjectId(node, seq), Utf8.decode(k), sibs));
            return v == null || v.kind().isObject() ? null : v;
          } catch (Throwable t) {
            NativeApi.report(t);
            return null;
          } finally {
            NativeApi.leaveCallback();
          }
        };
    with(p -> {
      synchronized (state.resolverLock) {
        long ref = NativeApi.setResolver(p, d, sink);
        Long old = state.swapResolver(slot, ref);
        if (old != null) NativeApi.deleteRef(old);
      }
      return null;
    });
  }

  /**
   * Gives the device with this public key a role (READER, WRITER or ADMIN) in doc.
   * PERMISSION_DENIED unless this device is the owner or an admin (ADMIN: owner only).
   */
  public void grant(String doc, byte[] publicKey, Role role) {
    byte[] d = docId(doc);
    byte[] k = key(publicKey);
    Scope.notNull(role, "the role");
    with(p -> {
      NativeApi.docGrant(p, d, k, role.ordinal());
      return null;
    });
  }

  /** Takes that device's role away; its later changes are refused where this reaches. */
  public void revoke(String doc, byte[] publicKey) {
    byte[] d = docId(doc);
    byte[] k = key(publicKey);
    with(p -> {
      NativeApi.docRevoke(p, d, k);
      return null;
    });
  }

  /** The access list: public key (64 hex characters) to role; empty for a public document. */
  public Map<String, Role> members(String doc) {
    byte[] d = docId(doc);
    String json = Utf8.decode(with(p -> NativeApi.docMembers(p, d)));
    Map<String, Role> out = new LinkedHashMap<>();
    for (Map.Entry<String, String> e : Keys.parseFlatJson(json).entrySet()) {
      out.put(e.getKey(), Role.named(e.getValue()));
    }
    return Collections.unmodifiableMap(out);
  }

  /** The role of a key in doc (NONE for a public document or a stranger). */
  public Role role(String doc, byte[] publicKey) {
    byte[] d = docId(doc);
    byte[] k = key(publicKey);
    return Role.of(with(p -> NativeApi.docRole(p, d, k))[0]);
  }

  /** Whether doc has an owner (false: public, anyone may read and write it). */
  public boolean isOwned(String doc) {
    byte[] d = docId(doc);
    byte[] k = publicKey();
    return with(p -> NativeApi.docRole(p, d, k))[1] != 0;
  }

  /**
   * An admission token (hex) for the device with this public key, valid for ttlSeconds, signed by
   * this replica's key (relays started with --admission-key set to its key accept it).
   */
  public String issueToken(byte[] devicePublicKey, long ttlSeconds) {
    byte[] k = key(devicePublicKey);
    Scope.index(ttlSeconds, "the time to live");
    return Utf8.decode(with(p -> NativeApi.issueToken(p, k, ttlSeconds)));
  }

  /** doc's current version as a short URL-safe token; NOT_FOUND when absent. */
  public String causalToken(String doc) {
    byte[] d = docId(doc);
    return Utf8.decode(with(p -> NativeApi.causalToken(p, d)));
  }

  /** Whether this replica holds everything a token (from any replica) names. */
  public boolean satisfies(String token) {
    byte[] t = Utf8.encode(token, "the token");
    return with(p -> NativeApi.tokenSatisfied(p, t));
  }

  /** Blocks until this replica holds everything a token names; TIMEOUT after timeoutMs. */
  public void waitFor(String token, long timeoutMs) {
    byte[] t = Utf8.encode(token, "the token");
    Scope.index(timeoutMs, "the timeout");
    with(p -> {
      NativeApi.waitForToken(p, t, timeoutMs);
      return null;
    });
  }

  /**
   * The encoded changes of doc that a replica at token (null: one that has nothing) lacks, in
   * causal order: sync without a network (e.g. through files).
   */
  public List<byte[]> changesSince(String doc, String token) {
    byte[] d = docId(doc);
    byte[] t = Utf8.encodeOrNull(token, "the token");
    return Collections.unmodifiableList(
        Arrays.asList(with(p -> NativeApi.changesSince(p, d, t))));
  }

  /**
   * Validates and applies encoded changes (any order) in one transaction, all or nothing:
   * CORRUPTION for a malformed change, MISSING_DEPENDENCY for one whose dependency is neither
   * held nor given. Returns how many new changes were applied.
   */
  public long applyChanges(String doc, List<byte[]> changes) {
    byte[] d = docId(doc);
    Scope.notNull(changes, "the changes");
    byte[][] blobs = changes.toArray(new byte[0][]);
    for (byte[] b : blobs) Scope.notNull(b, "a change");
    return with(p -> NativeApi.applyChanges(p, d, blobs));
  }

  /** Starts a sync client with default options (see {@link Sync}). */
  public Sync sync() {
    return sync(new SyncOptions());
  }

  /** Starts a sync client with its own network thread; close it before the replica. */
  public Sync sync(SyncOptions options) {
    Scope.notNull(options, "the sync options");
    return with(p -> new Sync(this, options.create(p)));
  }

  /**
   * One-shot sync: connects to url, syncs doc (null: every document) until both sides hold
   * each other's changes, disconnects. Blocks; TIMEOUT after timeoutMs.
   */
  public SyncSummary syncOnce(String url, String doc, long timeoutMs) {
    byte[] u = Utf8.encode(url, "the URL");
    byte[] d = doc == null ? null : docId(doc);
    Scope.index(timeoutMs, "the timeout");
    return with(p -> NativeApi.syncOnce(p, u, d, timeoutMs));
  }
}
