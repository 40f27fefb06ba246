package dev.weft;

/** A peer connection's state (the C API's weft_connection_state). */
public enum ConnectionState {
  CONNECTING,
  CONNECTED,
  /** The last attempt failed or the link dropped; waiting to retry. */
  BACKOFF,
  STOPPED
}
