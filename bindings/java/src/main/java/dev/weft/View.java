package dev.weft;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * A consistent read-only view of a document, passed to {@link Replica#read} and
 * {@link Replica#readAt} bodies, or from {@link Txn#view()} (where reads see the transaction's
 * own writes). Valid only on that thread until the body returns; after, every method throws.
 * Objects are named by {@link ObjectId}; {@link ObjectId#ROOT} is the root map.
 */
public final class View {
  private final Scope scope;
  private final long ptr;

  View(Scope scope, long ptr) {
    this.scope = scope;
    this.ptr = ptr;
  }

  private long ptr() {
    scope.check();
    return ptr;
  }

  private static ObjectId obj(ObjectId o) {
    return Scope.notNull(o, "the object ID");
  }

  /** The whole document as JSON (conflicts as {"conflict": [...]}). */
  public String toJson() {
    return Utf8.decode(NativeApi.viewToJson(ptr()));
  }

  /** The kind of an object; NOT_FOUND when it does not exist. */
  public Kind kind(ObjectId o) {
    return Kind.of(NativeApi.viewKind(ptr(), obj(o).node(), o.seq()));
  }

  /** The keys of a map, sorted. */
  public List<String> keys(ObjectId map) {
    return list(Utf8.decodeAll(NativeApi.viewMapKeys(ptr(), obj(map).node(), map.seq())));
  }

  /** Every value of a map key (siblings when written concurrently); empty when absent. */
  public Siblings get(ObjectId map, String key) {
    byte[] k = Utf8.encode(key, "the key");
    long list = NativeApi.viewMapGet(ptr(), obj(map).node(), map.seq(), k);
    return keep(list);
  }

  /** The nested object of a kind at a map key: NOT_FOUND when absent, TYPE_MISMATCH else. */
  public ObjectId lookup(ObjectId map, String key, Kind kind) {
    byte[] k = Utf8.encode(key, "the key");
    Scope.notNull(kind, "the kind");
    long[] id = NativeApi.viewMapLookup(ptr(), obj(map).node(), map.seq(), k, kind.code);
    return new ObjectId(id[0], id[1]);
  }

  /** The siblings of a multi-value register; empty when never written. */
  public Siblings register(ObjectId reg) {
    return keep(NativeApi.viewRegisterGet(ptr(), obj(reg).node(), reg.seq()));
  }

  /**
   * An LWW register: element 0 is the current value (with its time), the rest are concurrent
   * writes it overwrote. Empty when never written.
   */
  public List<Value> lww(ObjectId reg) {
    return take(NativeApi.viewLwwGet(ptr(), obj(reg).node(), reg.seq()));
  }

  public long counter(ObjectId counter) {
    return NativeApi.viewCounterGet(ptr(), obj(counter).node(), counter.seq());
  }

  /** A set's elements, in the same order on every replica. */
  public List<Value> setElements(ObjectId set) {
    return take(NativeApi.viewSetElements(ptr(), obj(set).node(), set.seq()));
  }

  public boolean setContains(ObjectId set, Value element) {
    Scope.notNull(element, "the element").requireScalar("a set element");
    return NativeApi.viewSetContains(ptr(), obj(set).node(), set.seq(), element.typeCode(),
        element.integerBits(), element.real(), element.data());
  }

  public String text(ObjectId text) {
    return Utf8.decode(NativeApi.viewTextRead(ptr(), obj(text).node(), text.seq()));
  }

  /** The length of a text (code points) or list (elements). */
  public long size(ObjectId seq) {
    return NativeApi.viewSeqSize(ptr(), obj(seq).node(), seq.seq());
  }

  /** A list's values: scalars, or nested objects with their kind and ID. */
  public List<Value> listValues(ObjectId list) {
    return take(NativeApi.viewListValues(ptr(), obj(list).node(), list.seq()));
  }

  /** A stable position at index of a text or list. */
  public Anchor anchorAt(ObjectId seq, long index, boolean stickRight) {
    long[] a = NativeApi.viewAnchorAt(ptr(), obj(seq).node(), seq.seq(),
        Scope.index(index, "the index"), stickRight ? 1 : 0);
    return new Anchor(new ObjectId(a[0], a[1]), a[2] != 0);
  }

  /** The anchor's current index; NOT_FOUND when its element is unknown here. */
  public long anchorIndex(ObjectId seq, Anchor anchor) {
    Scope.notNull(anchor, "the anchor");
    return NativeApi.viewAnchorIndex(ptr(), obj(seq).node(), seq.seq(), anchor.item().node(),
        anchor.item().seq(), anchor.stickRight() ? 1 : 0);
  }

  private Siblings keep(long list) {
    try {
      Siblings s = new Siblings(NativeApi.values(list), scope, list);
      scope.keep(list);
      return s;
    } catch (RuntimeException | Error e) {
      NativeApi.valuesFree(list);
      throw e;
    }
  }

  private static List<Value> take(long list) {
    try {
      return list(NativeApi.values(list));
    } finally {
      NativeApi.valuesFree(list);
    }
  }

  private static <T> List<T> list(T[] a) {
    return Collections.unmodifiableList(Arrays.asList(a));
  }
}
