package dev.weft;

/** A multi-value register in a transaction: concurrent writes stay as siblings. */
public final class RegisterRef extends ObjectRef {
  RegisterRef(Txn txn, ObjectId id) {
    super(txn, id);
  }

  /** register := a scalar (replacing every sibling this replica has seen). */
  public RegisterRef set(Value value) {
    Value v = scalar(value, "the value");
    NativeApi.txnRegisterSet(t(), id.node(), id.seq(), v.typeCode(), v.integerBits(), v.real(),
        v.data(), 0);
    return this;
  }

  /** The siblings as this transaction sees them, with the read's context. */
  public Siblings siblings() {
    return view().register(id);
  }

  /**
   * How an app resolves siblings: register := value, replacing exactly the siblings of
   * {@code read} (from {@link #siblings()} in this transaction).
   */
  public RegisterRef resolve(Value value, Siblings read) {
    Value v = scalar(value, "the value");
    long ctx = Scope.notNull(read, "the read").contextIn(txn.scope());
    NativeApi.txnRegisterSet(t(), id.node(), id.seq(), v.typeCode(), v.integerBits(), v.real(),
        v.data(), ctx);
    return this;
  }
}
