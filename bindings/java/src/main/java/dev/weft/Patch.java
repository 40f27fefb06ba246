package dev.weft;

/** What one op of a commit changed (the C API's weft_patch). Immutable. */
public final class Patch {
  /** The kinds of patch. */
  public enum Type {
    /** {@link #key()} of map {@link #object()} now has {@link #siblings()} values (0: gone). */
    MAP_KEY,
    /** Register {@link #object()} now has {@link #siblings()} values. */
    REGISTER,
    /** Counter {@link #object()} changed by {@link #delta()}. */
    COUNTER,
    /** {@link #element()} joined set {@link #object()}. */
    SET_ADD,
    /** {@link #element()} left set {@link #object()}. */
    SET_REMOVE,
    /** {@link #length()} elements ({@link #text()} for a text) inserted at {@link #index()}. */
    INSERT,
    /** {@link #length()} elements deleted at {@link #index()}. */
    DELETE
  }

  private final Type type;
  private final ObjectId object;
  private final String key;
  private final long siblings;
  private final long delta;
  private final Value element;
  private final long index;
  private final long length;
  private final String text;

  Patch(int type, long node, long seq, byte[] key, long siblings, long delta, Value element,
      long index, long length, byte[] text) {
    if (type < 1 || type > Type.values().length) {
      throw new WeftException(WeftException.INTERNAL, "unknown patch type " + type);
    }
    this.type = Type.values()[type - 1];
    this.object = new ObjectId(node, seq);
    this.key = Utf8.decode(key);
    this.siblings = siblings;
    this.delta = delta;
    this.element = element;
    this.index = index;
    this.length = length;
    this.text = Utf8.decode(text);
  }

  public Type type() {
    return type;
  }

  public ObjectId object() {
    return object;
  }

  /** The map key of a MAP_KEY patch; null otherwise. */
  public String key() {
    return key;
  }

  public long siblings() {
    return siblings;
  }

  public long delta() {
    return delta;
  }

  /** The element of a SET_ADD or SET_REMOVE patch; a null Value otherwise. */
  public Value element() {
    return element;
  }

  public long index() {
    return index;
  }

  public long length() {
    return length;
  }

  /** The inserted text of an INSERT into a text; null otherwise. */
  public String text() {
    return text;
  }

  @Override
  public String toString() {
    return type + "(" + object + (key != null ? " " + key : "") + ")";
  }
}
