package dev.weft;

/**
 * The JNI layer: one static native method per C API call (or a few calls that belong together),
 * taking handles as longs and strings as UTF-8 byte arrays. Failures throw WeftException with
 * the C API's code and message. Nothing here checks handles for being closed: the public classes
 * do (Handle) before they call in.
 */
final class NativeApi {
  static {
    // -Ddev.weft.jni=/path/to/libweft_jni.so (tests, examples from a build tree); else the
    // library path (java.library.path here, the APK's lib/<abi>/ on Android).
    String path = System.getProperty("dev.weft.jni");
    if (path != null && !path.isEmpty()) {
      System.load(path);
    } else {
      System.loadLibrary("weft_jni");
    }
  }

  private NativeApi() {}

  /** A transaction or read body: run(txn or view pointer) returns a weft_status. */
  interface Body {
    int run(long handle);
  }

  interface EventSink {
    void onEvent(ChangeEvent event);
  }

  interface ResolverSink {
    Value resolve(byte[] doc, long mapNode, long mapSeq, byte[] key, Value[] siblings);
  }

  interface PresenceSink {
    void onPresence(byte[] doc, long node, byte[] payload);
  }

  // How deep the current thread is inside callbacks from native code (Sync.close checks it).
  private static final ThreadLocal<int[]> CALLBACK_DEPTH = new ThreadLocal<int[]>() {
    @Override
    protected int[] initialValue() {
      return new int[1];
    }
  };

  static void enterCallback() {
    CALLBACK_DEPTH.get()[0]++;
  }

  static void leaveCallback() {
    CALLBACK_DEPTH.get()[0]--;
  }

  static boolean inCallback() {
    return CALLBACK_DEPTH.get()[0] > 0;
  }

  /** Hands an exception thrown by app code in a callback to the thread's handler. */
  static void report(Throwable t) {
    Thread th = Thread.currentThread();
    Thread.UncaughtExceptionHandler h = th.getUncaughtExceptionHandler();
    if (h != null) h.uncaughtException(th, t);
  }

  static native String version();

  static native String statusName(int code);

  static native void deleteRef(long globalRef);

  // Replica.
  static native long open(byte[] path, boolean withOptions, boolean full, int snapshotChanges,
      int snapshotOps, boolean publicDocuments, boolean createIfMissing, boolean driftCheck,
      long maxDriftMs);

  static native void close(long r);

  static native long nodeId(long r);

  static native long actorId(long r);

  static native byte[] publicKey(long r);

  static native void docCreate(long r, byte[] doc);

  static native boolean docExists(long r, byte[] doc);

  static native void docDelete(long r, byte[] doc);

  static native byte[][] docList(long r);

  static native void docSnapshot(long r, byte[] doc);

  // Transactions and reads.
  static native CommitInfo transact(long r, byte[] doc, Body body);

  static native void read(long r, byte[] doc, Body body);

  static native void readAt(long r, byte[] doc, byte[] token, Body body);

  static native long txnView(long txn);

  static native byte[] viewToJson(long v);

  static native int viewKind(long v, long node, long seq);

  static native byte[][] viewMapKeys(long v, long node, long seq);

  /** A weft_values handle (free with valuesFree). */
  static native long viewMapGet(long v, long node, long seq, byte[] key);

  static native long[] viewMapLookup(long v, long node, long seq, byte[] key, int kind);

  static native long viewRegisterGet(long v, long node, long seq);

  static native long viewLwwGet(long v, long node, long seq);

  static native long viewCounterGet(long v, long node, long seq);

  static native long viewSetElements(long v, long node, long seq);

  static native boolean viewSetContains(long v, long node, long seq, int type, long i, double d,
      byte[] data);

  static native byte[] viewTextRead(long v, long node, long seq);

  static native long viewSeqSize(long v, long node, long seq);

  static native long viewListValues(long v, long node, long seq);

  /** {item node, item seq, bias}. */
  static native long[] viewAnchorAt(long v, long node, long seq, long index, int bias);

  static native long viewAnchorIndex(long v, long node, long seq, long itemNode, long itemSeq,
      int bias);

  static native Value[] values(long list);

  static native void valuesFree(long list);

  // Writes.
  static native void txnMapPut(long t, long node, long seq, byte[] key, int type, long i,
      double d, byte[] data, long read);

  static native void txnMapDelete(long t, long node, long seq, byte[] key);

  static native long[] txnMapObject(long t, long node, long seq, byte[] key, int kind);

  static native void txnRegisterSet(long t, long node, long seq, int type, long i, double d,
      byte[] data, long read);

  static native void txnCounterAdd(long t, long node, long seq, long delta);

  static native void txnSetAdd(long t, long node, long seq, int type, long i, double d,
      byte[] data, boolean remove);

  static native void txnTextInsert(long t, long node, long seq, long pos, byte[] utf8);

  static native void txnSeqDelete(long t, long node, long seq, long pos, long count);

  static native void txnListInsert(long t, long node, long seq, long pos, int[] types,
      long[] ints, double[] reals, byte[][] datas);

  static native long[] txnListInsertObject(long t, long node, long seq, long pos, int kind);

  // Change feed and resolvers.
  /** {subscription, global ref of sink}. */
  static native long[] subscribe(long r, byte[] doc, EventSink sink);

  static native void unsubscribe(long sub, long sinkRef);

  /** The new resolver's global ref (0 for none); the caller deletes the replaced one's. */
  static native long setResolver(long r, byte[] doc, ResolverSink sink);

  // Access lists.
  static native void docGrant(long r, byte[] doc, byte[] key, int role);

  static native void docRevoke(long r, byte[] doc, byte[] key);

  static native byte[] docMembers(long r, byte[] doc);

  /** {role, owned}. */
  static native int[] docRole(long r, byte[] doc, byte[] key);

  // Causal tokens, time travel, raw changes.
  static native byte[] causalToken(long r, byte[] doc);

  static native boolean tokenSatisfied(long r, byte[] token);

  static native void waitForToken(long r, byte[] token, long timeoutMs);

  static native Patch[] diff(long r, byte[] doc, byte[] from, byte[] to);

  static native HistoryEntry[] history(long r, byte[] doc);

  static native byte[][] changesSince(long r, byte[] doc, byte[] token);

  static native long applyChanges(long r, byte[] doc, byte[][] blobs);

  // Sync.
  static native long syncCreate(long r, byte[][] docs, long backoffInitialMs, long backoffMaxMs,
      long seed, byte[] token, byte[] relayKey, byte[] caFile);

  static native void syncFree(long s);

  static native void syncAddPeer(long s, byte[] url);

  static native void syncRemovePeer(long s, byte[] url);

  static native SyncSummary syncWaitUntilSynced(long s, byte[] url, long timeoutMs);

  static native void syncWaitForAck(long s, byte[] doc, byte[] token, long timeoutMs,
      byte[] url);

  static native PeerStatus[] syncPeers(long s);

  static native void syncPublishPresence(long s, byte[] doc, byte[] payload);

  /** The new listener's global ref (0 for none); the caller deletes the replaced one's. */
  static native long syncSetPresence(long s, PresenceSink sink);

  static native byte[] issueToken(long r, byte[] device, long ttlSeconds);

  static native SyncSummary syncOnce(long r, byte[] url, byte[] doc, long timeoutMs);
}
