package dev.weft;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/** One commit, local or remote, as the change feed reports it. Immutable. */
public final class ChangeEvent {
  private final String doc;
  private final boolean local;
  private final ObjectId change;
  private final List<Patch> patches;

  ChangeEvent(byte[] doc, boolean local, long node, long seq, Patch[] patches) {
    this.doc = Utf8.decode(doc);
    this.local = local;
    this.change = new ObjectId(node, seq);
    this.patches = Collections.unmodifiableList(Arrays.asList(patches));
  }

  public String doc() {
    return doc;
  }

  /** true: committed by this replica; false: a remote change (arrived through sync). */
  public boolean local() {
    return local;
  }

  /** The change's ID: (author node, first seq). */
  public ObjectId change() {
    return change;
  }

  public List<Patch> patches() {
    return patches;
  }
}
