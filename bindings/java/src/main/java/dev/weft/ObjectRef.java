package dev.weft;

/** An object of a document inside a transaction: its ID and the transaction that writes it. */
public abstract class ObjectRef {
  final Txn txn;
  final ObjectId id;

  ObjectRef(Txn txn, ObjectId id) {
    this.txn = txn;
    this.id = Scope.notNull(id, "the object ID");
  }

  public ObjectId id() {
    return id;
  }

  long t() {
    return txn.ptr();
  }

  View view() {
    return txn.view();
  }

  static Value scalar(Value v, String what) {
    Scope.notNull(v, what).requireScalar(what);
    return v;
  }
}
