package dev.weft;

import java.util.Arrays;

/**
 * One value: a scalar (null, boolean, 64-bit integer, double, string, bytes), or, in results
 * only, a nested object (its kind and {@link ObjectId}). Values read from an LWW register also
 * carry the write's hybrid time. Immutable; equal when kind and content are equal.
 */
public final class Value {
  private static final Value NULL = new Value(Kind.NULL, false, 0, 0, null, null, 0, 0);

  private final Kind kind;
  private final boolean bool;
  private final long integer;
  private final double real;
  private final byte[] data; // STRING (UTF-8) and BYTES
  private final ObjectId object;
  private final long timeMs;
  private final int timeLogical;

  private Value(Kind kind, boolean bool, long integer, double real, byte[] data, ObjectId object,
      long timeMs, int timeLogical) {
    this.kind = kind;
    this.bool = bool;
    this.integer = integer;
    this.real = real;
    this.data = data;
    this.object = object;
    this.timeMs = timeMs;
    this.timeLogical = timeLogical;
  }

  /** Made by the native layer from a weft_value. */
  Value(int type, boolean bool, long integer, double real, byte[] data, long objNode,
      long objSeq, long timeMs, int timeLogical) {
    this(Kind.of(type), bool, integer, real, data,
        Kind.of(type).isObject() ? new ObjectId(objNode, objSeq) : null, timeMs, timeLogical);
  }

  public static Value ofNull() {
    return NULL;
  }

  public static Value of(boolean b) {
    return new Value(Kind.BOOL, b, 0, 0, null, null, 0, 0);
  }

  public static Value of(long v) {
    return new Value(Kind.INT, false, v, 0, null, null, 0, 0);
  }

  public static Value of(double v) {
    return new Value(Kind.DOUBLE, false, 0, v, null, null, 0, 0);
  }

  /** A string scalar; a WeftException for null or a string with a lone surrogate. */
  public static Value of(String s) {
    return new Value(Kind.STRING, false, 0, 0, Utf8.encode(s, "a string value"), null, 0, 0);
  }

  /** A bytes scalar (copied); a WeftException for null. */
  public static Value ofBytes(byte[] b) {
    if (b == null) throw WeftException.invalid("a bytes value is null");
    return new Value(Kind.BYTES, false, 0, 0, b.clone(), null, 0, 0);
  }

  public Kind kind() {
    return kind;
  }

  public boolean isNull() {
    return kind == Kind.NULL;
  }

  public boolean asBoolean() {
    expect(Kind.BOOL);
    return bool;
  }

  public long asLong() {
    expect(Kind.INT);
    return integer;
  }

  public double asDouble() {
    expect(Kind.DOUBLE);
    return real;
  }

  public String asString() {
    expect(Kind.STRING);
    return Utf8.decode(data);
  }

  /** A copy of a bytes value. */
  public byte[] asBytes() {
    expect(Kind.BYTES);
    return data.clone();
  }

  /** The nested object of an object value (MAP ... TEXT). */
  public ObjectId asObject() {
    if (object == null) {
      throw new WeftException(WeftException.TYPE_MISMATCH, "the value is a " + kind
          + ", not an object");
    }
    return object;
  }

  /** An LWW register's write time (milliseconds of its hybrid logical clock); 0 otherwise. */
  public long timeMs() {
    return timeMs;
  }

  /** The logical part of an LWW write's hybrid time; 0 otherwise. */
  public int timeLogical() {
    return timeLogical;
  }

  private void expect(Kind k) {
    if (kind != k) {
      throw new WeftException(WeftException.TYPE_MISMATCH, "the value is a " + kind
          + ", not a " + k);
    }
  }

  // The fields the native layer reads to pass a scalar in (type, integer, real, data).
  int typeCode() {
    return kind.code;
  }

  long integerBits() {
    return kind == Kind.BOOL ? (bool ? 1 : 0) : integer;
  }

  double real() {
    return real;
  }

  byte[] data() {
    return data;
  }

  void requireScalar(String what) {
    if (kind.isObject()) {
      throw WeftException.invalid(what + " must be a scalar, not a " + kind);
    }
  }

  @Override
  public boolean equals(Object o) {
    if (!(o instanceof Value)) return false;
    Value v = (Value) o;
    return kind == v.kind && bool == v.bool && integer == v.integer
        && Double.compare(real, v.real) == 0 && Arrays.equals(data, v.data)
        && (object == null ? v.object == null : object.equals(v.object));
  }

  @Override
  public int hashCode() {
    return kind.hashCode() * 31 + Arrays.hashCode(data) + Long.hashCode(integer)
        + Double.hashCode(real) + (object == null ? 0 : object.hashCode()) + (bool ? 1 : 0);
  }

  @Override
  public String toString() {
    switch (kind) {
      case NULL: return "null";
      case BOOL: return Boolean.toString(bool);
      case INT: return Long.toString(integer);
      case DOUBLE: return Double.toString(real);
      case STRING: return '"' + asString() + '"';
      case BYTES: return "bytes[" + data.length + "]";
      default: return kind + "@" + object;
    }
  }
}
