package dev.weft;

import java.util.List;

/** A map in a transaction: scalar keys, nested objects, and reads that see the transaction. */
public final class MapRef extends ObjectRef {
  MapRef(Txn txn, ObjectId id) {
    super(txn, id);
  }

  /** key := a scalar, replacing every value the key shows now (siblings included). */
  public MapRef put(String key, Value value) {
    byte[] k = Utf8.encode(key, "the key");
    Value v = scalar(value, "the value");
    NativeApi.txnMapPut(t(), id.node(), id.seq(), k, v.typeCode(), v.integerBits(), v.real(),
        v.data(), 0);
    return this;
  }

  public MapRef put(String key, String value) {
    return put(key, Value.of(value));
  }

  public MapRef put(String key, long value) {
    return put(key, Value.of(value));
  }

  public MapRef put(String key, double value) {
    return put(key, Value.of(value));
  }

  public MapRef put(String key, boolean value) {
    return put(key, Value.of(value));
  }

  public MapRef put(String key, byte[] value) {
    return put(key, Value.ofBytes(value));
  }

  /**
   * key := value, replacing only the values of {@code read} (from {@link #get} of this key in
   * this transaction); values written concurrently since stay as siblings.
   */
  public MapRef putAfterRead(String key, Value value, Siblings read) {
    byte[] k = Utf8.encode(key, "the key");
    Value v = scalar(value, "the value");
    long ctx = Scope.notNull(read, "the read").contextIn(txn.scope());
    NativeApi.txnMapPut(t(), id.node(), id.seq(), k, v.typeCode(), v.integerBits(), v.real(),
        v.data(), ctx);
    return this;
  }

  /** Removes the key's values. */
  public MapRef delete(String key) {
    NativeApi.txnMapDelete(t(), id.node(), id.seq(), Utf8.encode(key, "the key"));
    return this;
  }

  /** The key's values as this transaction sees them, with the read's context. */
  public Siblings get(String key) {
    return view().get(id, key);
  }

  public List<String> keys() {
    return view().keys(id);
  }

  /** The nested object of a kind at key, created when absent; TYPE_MISMATCH when another. */
  public ObjectId object(String key, Kind kind) {
    byte[] k = Utf8.encode(key, "the key");
    Scope.notNull(kind, "the kind");
    long[] o = NativeApi.txnMapObject(t(), id.node(), id.seq(), k, kind.code);
    return new ObjectId(o[0], o[1]);
  }

  public MapRef map(String key) {
    return new MapRef(txn, object(key, Kind.MAP));
  }

  public ListRef list(String key) {
    return new ListRef(txn, object(key, Kind.LIST));
  }

  public TextRef text(String key) {
    return new TextRef(txn, object(key, Kind.TEXT));
  }

  public CounterRef counter(String key) {
    return new CounterRef(txn, object(key, Kind.COUNTER));
  }

  public SetRef set(String key) {
    return new SetRef(txn, object(key, Kind.SET));
  }

  public RegisterRef register(String key) {
    return new RegisterRef(txn, object(key, Kind.REGISTER));
  }

  public LwwRef lww(String key) {
    return new LwwRef(txn, object(key, Kind.LWW));
  }
}
