package dev.weft;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The values of a map key or register as read: one value, several (concurrent writes: siblings),
 * or none. It also remembers the read's causal context: a write in the same transaction after
 * this read ({@link MapRef#putAfterRead}, {@link RegisterRef#resolve}) replaces exactly these
 * values, and values written concurrently since stay as siblings. Immutable.
 */
public final class Siblings {
  private final List<Value> values;
  private final Scope scope;
  private final long context; // the weft_values list, valid while scope is live

  Siblings(Value[] values, Scope scope, long context) {
    this.values = Collections.unmodifiableList(Arrays.asList(values));
    this.scope = scope;
    this.context = context;
  }

  public List<Value> values() {
    return values;
  }

  public int size() {
    return values.size();
  }

  public boolean isEmpty() {
    return values.isEmpty();
  }

  /** More than one value: concurrent writes that nobody has resolved yet. */
  public boolean isConflict() {
    return values.size() > 1;
  }

  /** The only value; a WeftException when there is none or there are siblings. */
  public Value value() {
    if (values.size() != 1) {
      throw new WeftException(values.isEmpty() ? WeftException.NOT_FOUND
          : WeftException.TYPE_MISMATCH, values.isEmpty() ? "no value"
          : "the value has " + values.size() + " siblings");
    }
    return values.get(0);
  }

  /** The context handle, checked to come from a live read in this transaction. */
  long contextIn(Scope txn) {
    if (scope != txn || !scope.isLive()) {
      throw WeftException.invalid("the siblings were not read in this transaction");
    }
    return context;
  }

  @Override
  public String toString() {
    return values.toString();
  }
}
