package dev.weft;

/** What a completed sync exchanged. Immutable. */
public final class SyncSummary {
  private final long changesSent;
  private final long changesReceived;
  private final long documents;

  SyncSummary(long changesSent, long changesReceived, long documents) {
    this.changesSent = changesSent;
    this.changesReceived = changesReceived;
    this.documents = documents;
  }

  public long changesSent() {
    return changesSent;
  }

  public long changesReceived() {
    return changesReceived;
  }

  public long documents() {
    return documents;
  }
}
