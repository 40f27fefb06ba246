package dev.weft;

/**
 * A stable position in a text or list (a cursor or selection end), tied to an element, so that
 * it moves with concurrent edits. An immutable value from {@link View#anchorAt}.
 */
public final class Anchor {
  private final ObjectId item;
  private final boolean stickRight;

  public Anchor(ObjectId item, boolean stickRight) {
    if (item == null) throw WeftException.invalid("the anchor's item is null");
    this.item = item;
    this.stickRight = stickRight;
  }

  /** The element it is tied to. */
  public ObjectId item() {
    return item;
  }

  /** true: it sticks to the element on its right; false: on its left. */
  public boolean stickRight() {
    return stickRight;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Anchor && ((Anchor) o).item.equals(item)
        && ((Anchor) o).stickRight == stickRight;
  }

  @Override
  public int hashCode() {
    return item.hashCode() * 2 + (stickRight ? 1 : 0);
  }
}
