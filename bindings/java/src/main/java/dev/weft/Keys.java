package dev.weft;

import java.util.LinkedHashMap;
import java.util.Map;

/** Public keys as hex, and the flat {"key": "role"} JSON of an access list. */
public final class Keys {
  private static final char[] HEX = "0123456789abcdef".toCharArray();

  private Keys() {}

  /** Lowercase hex of bytes. */
  public static String toHex(byte[] b) {
    Scope.notNull(b, "the bytes");
    char[] out = new char[b.length * 2];
    for (int i = 0; i < b.length; i++) {
      out[2 * i] = HEX[(b[i] >> 4) & 15];
      out[2 * i + 1] = HEX[b[i] & 15];
    }
    return new String(out);
  }

  /** A public key (64 hex characters) as its 32 bytes; INVALID_ARGUMENT otherwise. */
  public static byte[] fromHex(String hex) {
    Scope.notNull(hex, "the key");
    if (hex.length() != 64) throw WeftException.invalid("a public key is 64 hex characters");
    byte[] out = new byte[32];
    for (int i = 0; i < 32; i++) {
      int hi = Character.digit(hex.charAt(2 * i), 16);
      int lo = Character.digit(hex.charAt(2 * i + 1), 16);
      if (hi < 0 || lo < 0) throw WeftException.invalid("a public key is 64 hex characters");
      out[i] = (byte) (hi << 4 | lo);
    }
    return out;
  }

  /** Parses {"a":"b",...} whose strings need no escapes (hex keys, role names). */
  static Map<String, String> parseFlatJson(String json) {
    Map<String, String> out = new LinkedHashMap<>();
    String s = json.trim();
    if (!s.startsWith("{") || !s.endsWith("}") || s.indexOf('\\') >= 0) {
      throw new WeftException(WeftException.INTERNAL, "unexpected access list: " + json);
    }
    String body = s.substring(1, s.length() - 1).trim();
    if (body.isEmpty()) return out;
    for (String pair : body.split(",")) {
      String[] kv = pair.split(":");
      if (kv.length != 2) {
        throw new WeftException(WeftException.INTERNAL, "unexpected access list: " + json);
      }
      out.put(unquote(kv[0], json), unquote(kv[1], json));
    }
    return out;
  }

  private static String unquote(String s, String json) {
    String t = s.trim();
    if (t.length() < 2 || t.charAt(0) != '"' || t.charAt(t.length() - 1) != '"') {
      throw new WeftException(WeftException.INTERNAL, "unexpected access list: " + json);
    }
    return t.substring(1, t.length() - 1);
  }
}
