package dev.weft;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CharsetEncoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/** Strings cross to the C API as UTF-8 bytes (never JNI's modified UTF-8). */
final class Utf8 {
  private Utf8() {}

  /** The UTF-8 bytes of s; a WeftException for null or a lone surrogate (not Unicode text). */
  static byte[] encode(String s, String what) {
    if (s == null) throw WeftException.invalid(what + " is null");
    CharsetEncoder enc = StandardCharsets.UTF_8.newEncoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT);
    try {
      ByteBuffer b = enc.encode(CharBuffer.wrap(s));
      byte[] out = new byte[b.remaining()];
      b.get(out);
      return out;
    } catch (CharacterCodingException e) {
      throw new WeftException(WeftException.INVALID_ARGUMENT,
          what + " is not valid Unicode (a lone surrogate)", e);
    }
  }

  /** encode(s), or null for a null s (the C API's "none"). */
  static byte[] encodeOrNull(String s, String what) {
    return s == null ? null : encode(s, what);
  }

  static String decode(byte[] b) {
    return b == null ? null : new String(b, StandardCharsets.UTF_8);
  }

  static String[] decodeAll(byte[][] list) {
    String[] out = new String[list.length];
    for (int i = 0; i < list.length; i++) out[i] = decode(list[i]);
    return out;
  }
}
