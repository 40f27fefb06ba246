package dev.weft;

/**
 * Options for {@link Replica#open(String, ReplicaOptions)}: defaults as the C API's. A mutable
 * builder; not thread-safe. open() copies what it needs.
 */
public final class ReplicaOptions {
  boolean durabilityFull;
  int snapshotChanges = -1;
  int snapshotOps = -1;
  boolean publicDocuments;
  boolean createIfMissing = true;
  boolean driftCheck;
  long maxDriftMs;

  /** true: synchronous=FULL (survives power loss); false: NORMAL (an app crash; default). */
  public ReplicaOptions durabilityFull(boolean full) {
    this.durabilityFull = full;
    return this;
  }

  /** Write a document's snapshot after this many changes / ops since the last (0: never). */
  public ReplicaOptions snapshotEvery(int changes, int ops) {
    if (changes < 0 || ops < 0) throw WeftException.invalid("snapshot thresholds are negative");
    this.snapshotChanges = changes;
    this.snapshotOps = ops;
    return this;
  }

  /** Documents this replica creates are public (no owner), instead of owned by its key. */
  public ReplicaOptions publicDocuments(boolean isPublic) {
    this.publicDocuments = isPublic;
    return this;
  }

  /** Create the database when the file does not exist (default true). */
  public ReplicaOptions createIfMissing(boolean create) {
    this.createIfMissing = create;
    return this;
  }

  /** Refuse remote changes whose time is more than maxDriftMs ahead of the local clock. */
  public ReplicaOptions driftCheck(long maxDriftMs) {
    Scope.index(maxDriftMs, "the drift bound");
    this.driftCheck = true;
    this.maxDriftMs = maxDriftMs;
    return this;
  }
}
