package dev.weft;

import java.util.List;

/** A last-writer-wins register in a transaction (hybrid logical time, then node ID). */
public final class LwwRef extends ObjectRef {
  LwwRef(Txn txn, ObjectId id) {
    super(txn, id);
  }

  public LwwRef set(Value value) {
    Value v = scalar(value, "the value");
    NativeApi.txnRegisterSet(t(), id.node(), id.seq(), v.typeCode(), v.integerBits(), v.real(),
        v.data(), 0);
    return this;
  }

  /** Element 0: the current value (with its time); the rest: concurrent writes it overwrote. */
  public List<Value> get() {
    return view().lww(id);
  }
}
