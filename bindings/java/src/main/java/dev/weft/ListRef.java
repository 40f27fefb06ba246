package dev.weft;

import java.util.List;

/** A list in a transaction: scalars and nested objects. */
public final class ListRef extends ObjectRef {
  ListRef(Txn txn, ObjectId id) {
    super(txn, id);
  }

  /** Inserts scalars at pos; OUT_OF_RANGE past the end. */
  public ListRef insert(long pos, Value... values) {
    Scope.index(pos, "the position");
    Scope.notNull(values, "the values");
    int n = values.length;
    int[] types = new int[n];
    long[] ints = new long[n];
    double[] reals = new double[n];
    byte[][] datas = new byte[n][];
    for (int i = 0; i < n; i++) {
      Value v = scalar(values[i], "a list value");
      types[i] = v.typeCode();
      ints[i] = v.integerBits();
      reals[i] = v.real();
      datas[i] = v.data();
    }
    NativeApi.txnListInsert(t(), id.node(), id.seq(), pos, types, ints, reals, datas);
    return this;
  }

  /** Appends scalars at the end. */
  public ListRef add(Value... values) {
    return insert(size(), values);
  }

  /** Inserts a new nested object of a kind at pos. */
  public ObjectId insertObject(long pos, Kind kind) {
    Scope.index(pos, "the position");
    Scope.notNull(kind, "the kind");
    long[] o = NativeApi.txnListInsertObject(t(), id.node(), id.seq(), pos, kind.code);
    return new ObjectId(o[0], o[1]);
  }

  /** Inserts a new nested map at pos. */
  public MapRef insertMap(long pos) {
    return new MapRef(txn, insertObject(pos, Kind.MAP));
  }

  /** Deletes count elements at pos. */
  public ListRef delete(long pos, long count) {
    NativeApi.txnSeqDelete(t(), id.node(), id.seq(), Scope.index(pos, "the position"),
        Scope.index(count, "the count"));
    return this;
  }

  public long size() {
    return view().size(id);
  }

  public List<Value> values() {
    return view().listValues(id);
  }
}
