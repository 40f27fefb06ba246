package dev.weft;

import java.util.ArrayList;
import java.util.List;

/** Options for {@link Replica#sync(SyncOptions)}. A mutable builder; not thread-safe. */
public final class SyncOptions {
  private final List<byte[]> documents = new ArrayList<>();
  private long backoffInitialMs;
  private long backoffMaxMs;
  private long seed;
  private byte[] token;
  private byte[] relayKey;
  private byte[] caFile;

  /** Syncs this document (none added: every document either side has). */
  public SyncOptions document(String doc) {
    documents.add(Utf8.encode(doc, "the document ID"));
    return this;
  }

  /** Reconnection backoff: the n-th failure waits min(max, initial * 2^n), jittered. */
  public SyncOptions backoff(long initialMs, long maxMs) {
    if (initialMs <= 0 || maxMs < initialMs) {
      throw WeftException.invalid("backoff: need 0 < initial <= max");
    }
    this.backoffInitialMs = initialMs;
    this.backoffMaxMs = maxMs;
    return this;
  }

  /** Seed of the backoff jitter (0: random). */
  public SyncOptions seed(long seed) {
    this.seed = seed;
    return this;
  }

  /** The admission token (hex, from {@link Replica#issueToken}) for relays that need one. */
  public SyncOptions admissionToken(String hex) {
    this.token = Utf8.encode(hex, "the admission token");
    return this;
  }

  /** Refuse a relay that does not prove this public key (32 bytes). */
  public SyncOptions relayKey(byte[] key) {
    if (key == null || key.length != 32) throw WeftException.invalid("a public key is 32 bytes");
    this.relayKey = key.clone();
    return this;
  }

  /** wss:// peers: the PEM file of CA certificates a server's certificate must chain to. */
  public SyncOptions caFile(String path) {
    this.caFile = Utf8.encode(path, "the CA file path");
    return this;
  }

  long create(long replica) {
    return NativeApi.syncCreate(replica, documents.toArray(new byte[0][]), backoffInitialMs,
        backoffMaxMs, seed, token, relayKey, caFile);
  }
}
