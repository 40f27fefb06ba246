package dev.weft;

/** A device's role in an owned document's access list (the C API's weft_role). */
public enum Role {
  NONE,
  READER,
  WRITER,
  ADMIN,
  OWNER;

  static Role of(int code) {
    if (code < 0 || code >= values().length) {
      throw new WeftException(WeftException.INTERNAL, "unknown role " + code);
    }
    return values()[code];
  }

  static Role named(String name) {
    for (Role r : values()) {
      if (r.name().equalsIgnoreCase(name)) return r;
    }
    throw new WeftException(WeftException.INTERNAL, "unknown role " + name);
  }
}
