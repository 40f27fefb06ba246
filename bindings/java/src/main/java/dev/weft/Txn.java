package dev.weft;

/**
 * A transaction on one document, passed to a {@link Replica#transact} body. Its writes commit as
 * one change when the body returns normally; when the body throws, nothing is left behind. Valid
 * only on the body's thread until it returns; after, every method throws. A failed write changes
 * nothing and the transaction stays usable (catch the WeftException to go on).
 */
public final class Txn {
  private final Scope scope;
  private final long ptr;
  private final String doc;
  private View view;

  Txn(Scope scope, long ptr, String doc) {
    this.scope = scope;
    this.ptr = ptr;
    this.doc = doc;
  }

  long ptr() {
    scope.check();
    return ptr;
  }

  Scope scope() {
    return scope;
  }

  /** The document's ID. */
  public String doc() {
    return doc;
  }

  /** The document's root map. */
  public MapRef root() {
    return map(ObjectId.ROOT);
  }

  /** A read view that sees this transaction's writes. */
  public View view() {
    long p = ptr();
    if (view == null) view = new View(scope, NativeApi.txnView(p));
    return view;
  }

  /** The map with this ID (writes fail with NOT_FOUND or TYPE_MISMATCH if it is not one). */
  public MapRef map(ObjectId id) {
    return new MapRef(this, id);
  }

  public ListRef list(ObjectId id) {
    return new ListRef(this, id);
  }

  public TextRef text(ObjectId id) {
    return new TextRef(this, id);
  }

  public CounterRef counter(ObjectId id) {
    return new CounterRef(this, id);
  }

  public SetRef set(ObjectId id) {
    return new SetRef(this, id);
  }

  public RegisterRef register(ObjectId id) {
    return new RegisterRef(this, id);
  }

  public LwwRef lww(ObjectId id) {
    return new LwwRef(this, id);
  }
}
