package dev.weft;

/** Collaborative text in a transaction; positions in Unicode code points. */
public final class TextRef extends ObjectRef {
  TextRef(Txn txn, ObjectId id) {
    super(txn, id);
  }

  /** Inserts non-empty text at code point pos; OUT_OF_RANGE past the end. */
  public TextRef insert(long pos, String text) {
    Scope.index(pos, "the position");
    NativeApi.txnTextInsert(t(), id.node(), id.seq(), pos, Utf8.encode(text, "the text"));
    return this;
  }

  public TextRef append(String text) {
    return insert(size(), text);
  }

  /** Deletes count code points at pos. */
  public TextRef delete(long pos, long count) {
    NativeApi.txnSeqDelete(t(), id.node(), id.seq(), Scope.index(pos, "the position"),
        Scope.index(count, "the count"));
    return this;
  }

  /** Length in code points. */
  public long size() {
    return view().size(id);
  }

  @Override
  public String toString() {
    return view().text(id);
  }
}
