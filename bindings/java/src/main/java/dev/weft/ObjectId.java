package dev.weft;

/**
 * An object of a document, named by the dot that created it; valid as long as the object exists,
 * on every replica. An immutable value; {@link #ROOT} is the root map.
 */
public final class ObjectId {
  /** The root map of every document. */
  public static final ObjectId ROOT = new ObjectId(0, 0);

  private final long node;
  private final long seq;

  public ObjectId(long node, long seq) {
    this.node = node;
    this.seq = seq;
  }

  /** The author node of the creating dot (an unsigned 64-bit number). */
  public long node() {
    return node;
  }

  /** The counter of the creating dot (unsigned). */
  public long seq() {
    return seq;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ObjectId && ((ObjectId) o).node == node && ((ObjectId) o).seq == seq;
  }

  @Override
  public int hashCode() {
    return Long.hashCode(node) * 31 + Long.hashCode(seq);
  }

  @Override
  public String toString() {
    return Long.toUnsignedString(node) + "." + Long.toUnsignedString(seq);
  }
}
