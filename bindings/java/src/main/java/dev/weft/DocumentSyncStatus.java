package dev.weft;

/** Replication lag of one document with one peer. Immutable. */
public final class DocumentSyncStatus {
  private final String doc;
  private final boolean live;
  private final long acknowledgedOperations;
  private final long unacknowledgedChanges;
  private final long oldestUnacknowledgedAgeMs;
  private final long behindOperations;
  private final long incomingRemaining;
  private final long changesSent;
  private final long changesReceived;

  DocumentSyncStatus(byte[] doc, boolean live, long acknowledgedOperations,
      long unacknowledgedChanges, long oldestUnacknowledgedAgeMs, long behindOperations,
      long incomingRemaining, long changesSent, long changesReceived) {
    this.doc = Utf8.decode(doc);
    this.live = live;
    this.acknowledgedOperations = acknowledgedOperations;
    this.unacknowledgedChanges = unacknowledgedChanges;
    this.oldestUnacknowledgedAgeMs = oldestUnacknowledgedAgeMs;
    this.behindOperations = behindOperations;
    this.incomingRemaining = incomingRemaining;
    this.changesSent = changesSent;
    this.changesReceived = changesReceived;
  }

  public String doc() {
    return doc;
  }

  /** Both sides announced it on the current connection. */
  public boolean live() {
    return live;
  }

  /** Ops the peer acknowledged storing durably. */
  public long acknowledgedOperations() {
    return acknowledgedOperations;
  }

  /** Local changes the peer has not acknowledged yet. */
  public long unacknowledgedChanges() {
    return unacknowledgedChanges;
  }

  /** Age of the oldest unacknowledged change; -1 when none. */
  public long oldestUnacknowledgedAgeMs() {
    return oldestUnacknowledgedAgeMs;
  }

  /** Ops the peer holds that this replica lacks. */
  public long behindOperations() {
    return behindOperations;
  }

  /** Catch-up progress. */
  public long incomingRemaining() {
    return incomingRemaining;
  }

  /** On the current connection. */
  public long changesSent() {
    return changesSent;
  }

  public long changesReceived() {
    return changesReceived;
  }
}
