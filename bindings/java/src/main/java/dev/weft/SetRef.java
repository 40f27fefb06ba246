package dev.weft;

import java.util.List;

/** An add-wins set of scalars in a transaction. */
public final class SetRef extends ObjectRef {
  SetRef(Txn txn, ObjectId id) {
    super(txn, id);
  }

  public SetRef add(Value element) {
    return change(element, false);
  }

  public SetRef remove(Value element) {
    return change(element, true);
  }

  private SetRef change(Value element, boolean remove) {
    Value v = scalar(element, "a set element");
    NativeApi.txnSetAdd(t(), id.node(), id.seq(), v.typeCode(), v.integerBits(), v.real(),
        v.data(), remove);
    return this;
  }

  public boolean contains(Value element) {
    return view().setContains(id, element);
  }

  public List<Value> elements() {
    return view().setElements(id);
  }
}
