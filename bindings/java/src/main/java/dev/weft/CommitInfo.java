package dev.weft;

/** What a transaction's commit produced. Immutable. */
public final class CommitInfo {
  private final boolean changed;
  private final ObjectId change;
  private final String versionToken;

  CommitInfo(boolean changed, long node, long seq, byte[] token) {
    this.changed = changed;
    this.change = new ObjectId(node, seq);
    this.versionToken = Utf8.decode(token);
  }

  /** false when the body made no ops: nothing was written. */
  public boolean changed() {
    return changed;
  }

  /** The change's ID: (author node, first seq). */
  public ObjectId change() {
    return change;
  }

  /** The document's version after the commit, as a causal token. */
  public String versionToken() {
    return versionToken;
  }
}
