package dev.weft;

/** One change of a document's history (see {@link Replica#history}). Immutable. */
public final class HistoryEntry {
  private final ObjectId change;
  private final long endSeq;
  private final long lamport;
  private final long timeMs;
  private final long ops;
  private final String token;

  HistoryEntry(long node, long seq, long endSeq, long lamport, long timeMs, long ops,
      byte[] token) {
    this.change = new ObjectId(node, seq);
    this.endSeq = endSeq;
    this.lamport = lamport;
    this.timeMs = timeMs;
    this.ops = ops;
    this.token = Utf8.decode(token);
  }

  /** (author, first seq). */
  public ObjectId change() {
    return change;
  }

  /** Its last seq. */
  public long endSeq() {
    return endSeq;
  }

  public long lamport() {
    return lamport;
  }

  /** The author's clock at commit (hybrid logical time, milliseconds). */
  public long timeMs() {
    return timeMs;
  }

  public long ops() {
    return ops;
  }

  /** The version the change led to, as a causal token (for {@link Replica#readAt}). */
  public String token() {
    return token;
  }
}
