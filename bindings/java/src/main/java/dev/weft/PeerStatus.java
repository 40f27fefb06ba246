package dev.weft;

import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/** One peer's connection state and replication lag, at the moment of {@link Sync#peers}. */
public final class PeerStatus {
  private final String url;
  private final ConnectionState state;
  private final Long peerNode;
  private final boolean peerIsRelay;
  private final String lastError;
  private final long failedAttempts;
  private final long changesSent;
  private final long changesReceived;
  private final long duplicatesReceived;
  private final List<DocumentSyncStatus> documents;

  PeerStatus(byte[] url, int state, boolean hasPeerNode, long peerNode, boolean peerIsRelay,
      byte[] lastError, long failedAttempts, long changesSent, long changesReceived,
      long duplicatesReceived, DocumentSyncStatus[] documents) {
    this.url = Utf8.decode(url);
    this.state = ConnectionState.values()[state];
    this.peerNode = hasPeerNode ? peerNode : null;
    this.peerIsRelay = peerIsRelay;
    this.lastError = Utf8.decode(lastError);
    this.failedAttempts = failedAttempts;
    this.changesSent = changesSent;
    this.changesReceived = changesReceived;
    this.duplicatesReceived = duplicatesReceived;
    this.documents = Collections.unmodifiableList(Arrays.asList(documents));
  }

  public String url() {
    return url;
  }

  public ConnectionState state() {
    return state;
  }

  /** The peer's node ID once a handshake told it; null before. */
  public Long peerNode() {
    return peerNode;
  }

  public boolean peerIsRelay() {
    return peerIsRelay;
  }

  /** Why the last connection ended or attempt failed ("" when none). */
  public String lastError() {
    return lastError;
  }

  public long failedAttempts() {
    return failedAttempts;
  }

  /** Since the peer was added. */
  public long changesSent() {
    return changesSent;
  }

  public long changesReceived() {
    return changesReceived;
  }

  public long duplicatesReceived() {
    return duplicatesReceived;
  }

  /** Per-document lag. */
  public List<DocumentSyncStatus> documents() {
    return documents;
  }
}
