package dev.weft;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/** A map key that a remote change left with concurrent siblings. Immutable. */
public final class Conflict {
  private final String doc;
  private final ObjectId map;
  private final String key;
  private final List<Value> siblings;

  Conflict(String doc, ObjectId map, String key, Value[] siblings) {
    this.doc = doc;
    this.map = map;
    this.key = key;
    this.siblings = Collections.unmodifiableList(Arrays.asList(siblings));
  }

  public String doc() {
    return doc;
  }

  public ObjectId map() {
    return map;
  }

  public String key() {
    return key;
  }

  /** The concurrent values (scalars or objects), in the same order on every replica. */
  public List<Value> siblings() {
    return siblings;
  }
}
