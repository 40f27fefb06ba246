package dev.weft;

/** What a value is: a scalar, or a nested CRDT object of that kind (the C API's weft_type). */
public enum Kind {
  NULL(0),
  BOOL(1),
  INT(2),
  DOUBLE(3),
  STRING(4),
  BYTES(5),
  /** A map of keys to values; concurrent writes of a key stay as siblings. */
  MAP(16),
  /** A multi-value register: concurrent writes stay as siblings. */
  REGISTER(17),
  /** A last-writer-wins register (hybrid logical clock); the losers stay inspectable. */
  LWW(18),
  COUNTER(19),
  /** An add-wins set of scalars. */
  SET(20),
  /** A list of scalars and nested maps. */
  LIST(21),
  /** Collaborative text; positions in Unicode code points. */
  TEXT(22);

  final int code;

  Kind(int code) {
    this.code = code;
  }

  /** Whether this is a nested object kind (MAP ... TEXT) rather than a scalar. */
  public boolean isObject() {
    return code >= MAP.code;
  }

  static Kind of(int code) {
    for (Kind k : values()) {
      if (k.code == code) return k;
    }
    throw new WeftException(WeftException.INTERNAL, "unknown value type " + code);
  }
}
