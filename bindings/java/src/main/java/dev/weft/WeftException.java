package dev.weft;

/**
 * The one exception of this package: a failed call, with the C API's error code (the values of
 * {@code weft_status}, fixed forever) and its message. Unchecked, so that Kotlin and Java lambdas
 * stay short.
 */
public class WeftException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public static final int NOT_FOUND = 1;
  public static final int INVALID_ARGUMENT = 2;
  public static final int CORRUPTION = 3;
  public static final int IO_ERROR = 4;
  public static final int DISCONNECTED = 5;
  public static final int PERMISSION_DENIED = 6;
  public static final int MISSING_DEPENDENCY = 7;
  public static final int OUT_OF_RANGE = 8;
  public static final int TYPE_MISMATCH = 9;
  public static final int UNSUPPORTED_VERSION = 10;
  public static final int CLOCK_DRIFT = 11;
  public static final int HISTORY_TRUNCATED = 12;
  public static final int TIMEOUT = 13;
  public static final int BUSY = 14;
  public static final int ABORTED = 15;
  public static final int INTERNAL = 16;

  private final int code;

  /** Called by the native layer (and by this package for checks made before a native call). */
  public WeftException(int code, String message) {
    super(codeName(code) + ": " + message);
    this.code = code;
  }

  /** The native layer's constructor: the C API's message as UTF-8. */
  WeftException(int code, byte[] utf8Message) {
    this(code, Utf8.decode(utf8Message));
  }

  WeftException(int code, String message, Throwable cause) {
    this(code, message);
    initCause(cause);
  }

  /** The C API's error code, e.g. {@link #NOT_FOUND}. */
  public int code() {
    return code;
  }

  /** The code's short constant name ("NotFound", ...), "Unknown" for other values. */
  public String codeName() {
    return codeName(code);
  }

  /** The short constant name of any code, as the C API's weft_status_name. */
  public static String codeName(int code) {
    return NativeApi.statusName(code);
  }

  static WeftException invalid(String message) {
    return new WeftException(INVALID_ARGUMENT, message);
  }

  static WeftException closed(String what) {
    return new WeftException(INVALID_ARGUMENT, "the " + what + " is closed");
  }
}
