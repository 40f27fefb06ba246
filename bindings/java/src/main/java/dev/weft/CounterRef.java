package dev.weft;

/** A counter in a transaction: concurrent additions add up. */
public final class CounterRef extends ObjectRef {
  CounterRef(Txn txn, ObjectId id) {
    super(txn, id);
  }

  public CounterRef add(long delta) {
    NativeApi.txnCounterAdd(t(), id.node(), id.seq(), delta);
    return this;
  }

  public long value() {
    return view().counter(id);
  }
}
