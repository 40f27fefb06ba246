package dev.weft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Replicas syncing through a weft-relay process that each test starts on a free loopback port
 * and stops by its PID: convergence, listeners and resolvers on the sync thread, status and lag,
 * acks, presence, access lists on a secure relay, and the errors.
 */
class SyncTest {
  static final long T = 20_000;
  @TempDir Path dir;
  RelayProcess relay;
  String url;

  @BeforeEach
  void startRelay() throws Exception {
    relay = new RelayProcess(dir.resolve("relay").toFile());
    url = relay.url();
  }

  @AfterEach
  void stopRelay() {
    long pid = relay.pid();
    relay.close();
    assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));
  }

  Replica open(String name, boolean publicDocs) {
    return Replica.open(new File(dir.toFile(), name).getPath(),
        new ReplicaOptions().publicDocuments(publicDocs));
  }

  static int code(Runnable r) {
    return assertThrows(WeftException.class, r::run).code();
  }

  @Test
  void offlineEditsConvergeAndListenersRunOnTheSyncThread() throws Exception {
    try (Replica a = open("a.db", true); Replica b = open("b.db", true)) {
      a.transact("notes", t -> {
        t.root().put("title", "from a");
        t.root().text("body").insert(0, "hello");
      });
      b.transact("notes", t -> t.root().counter("views").add(2));

      List<ChangeEvent> remote = new CopyOnWriteArrayList<>();
      List<Thread> threads = new CopyOnWriteArrayList<>();
      List<String> seenInListener = new CopyOnWriteArrayList<>();
      CountDownLatch gotTitle = new CountDownLatch(1);
      Subscription sub = b.subscribe("notes", e -> {
        if (e.local()) return;
        remote.add(e);
        threads.add(Thread.currentThread());
        // The listener may read the replica from the sync thread.
        String json = b.toJson("notes");
        seenInListener.add(json);
        if (json.contains("from a")) gotTitle.countDown();
      });
      List<Thread> resolverThreads = new CopyOnWriteArrayList<>();
      b.setConflictResolver("notes", c -> {
        resolverThreads.add(Thread.currentThread());
        return Value.of("resolved");
      });
      try (Sync sa = a.sync(new SyncOptions().backoff(50, 500).seed(1).document("notes"));
           Sync sb = b.sync()) {
        sa.addPeer(url);
        sa.addPeer(url);  // already added: fine
        sb.addPeer(url);
        SyncSummary sum = sa.waitUntilSynced(url, T);
        assertTrue(sum.changesSent() >= 1);
        sb.waitUntilSynced(url, T);
        a.waitFor(b.causalToken("notes"), T);
        b.waitFor(a.causalToken("notes"), T);
        assertTrue(gotTitle.await(T, TimeUnit.MILLISECONDS));
        assertEquals(a.toJson("notes"), b.toJson("notes"));
        assertTrue(a.toJson("notes").contains("\"views\":2"));

        // Remote changes reach the listener on the sync client's network thread, attached to
        // the JVM as a daemon thread.
        assertFalse(remote.isEmpty());
        Thread syncThread = threads.get(0);
        assertNotSame(Thread.currentThread(), syncThread);
        assertEquals("weft-native", syncThread.getName());
        assertTrue(syncThread.isDaemon());
        assertTrue(seenInListener.get(seenInListener.size() - 1).contains("from a"));

        // Live: a concurrent write on both sides meets b's resolver on the sync thread.
        sb.removePeer(url);
        a.transact("notes", t -> t.root().put("title", "A"));
        b.transact("notes", t -> t.root().put("title", "B"));
        sb.addPeer(url);
        sa.waitUntilSynced(url, T);
        sb.waitUntilSynced(url, T);
        b.waitFor(a.causalToken("notes"), T);
        long deadline = System.currentTimeMillis() + T;
        while (!a.toJson("notes").contains("resolved") && System.currentTimeMillis() < deadline) {
          Thread.sleep(20);
        }
        assertEquals("resolved",
            a.read("notes", v -> v.get(ObjectId.ROOT, "title")).value().asString());
        assertFalse(resolverThreads.isEmpty());
        assertNotSame(Thread.currentThread(), resolverThreads.get(0));

        // Status and lag.
        CommitInfo c = a.transact("notes", t -> t.root().counter("views").add(1));
        sa.waitForAck("notes", c.versionToken(), T, url);
        sa.waitForAck("notes", c.versionToken(), T, null);
        List<PeerStatus> peers = sa.peers();
        assertEquals(1, peers.size());
        PeerStatus p = peers.get(0);
        assertEquals(url, p.url());
        assertEquals(ConnectionState.CONNECTED, p.state());
        assertTrue(p.peerIsRelay());
        assertTrue(p.peerNode() != null);
        assertEquals("", p.lastError());
        assertTrue(p.changesSent() >= 3);
        DocumentSyncStatus d = p.documents().get(0);
        assertEquals("notes", d.doc());
        assertTrue(d.live());
        assertEquals(0, d.unacknowledgedChanges());
        assertEquals(-1, d.oldestUnacknowledgedAgeMs());
        assertTrue(d.acknowledgedOperations() > 0);

        // A sync client cannot be closed from inside a callback.
        AtomicReference<Integer> closeCode = new AtomicReference<>();
        CountDownLatch tried = new CountDownLatch(1);
        Subscription closer = b.subscribe("notes", e -> {
          if (e.local()) return;
          try {
            sb.close();
          } catch (WeftException x) {
            closeCode.set(x.code());
          }
          tried.countDown();
        });
        a.transact("notes", t -> t.root().put("late", true));
        assertTrue(tried.await(T, TimeUnit.MILLISECONDS));
        assertEquals(WeftException.BUSY, closeCode.get());
        closer.close();
        // The replica cannot be closed while a sync client of it is open.
        assertEquals(WeftException.BUSY, code(b::close));
      }
      sub.close();
      b.setConflictResolver("notes", null);
    }
  }

  @Test
  void presenceReachesTheOtherReplica() throws Exception {
    try (Replica a = open("a.db", true); Replica b = open("b.db", true)) {
      a.transact("doc", t -> t.root().put("k", 1));
      try (Sync sa = a.sync(); Sync sb = b.sync()) {
        AtomicReference<byte[]> got = new AtomicReference<>();
        AtomicReference<Long> from = new AtomicReference<>();
        List<Thread> threads = new CopyOnWriteArrayList<>();
        sb.setPresenceListener((doc, node, payload) -> {
          if (!doc.equals("doc")) return;
          from.set(node);
          threads.add(Thread.currentThread());
          got.set(payload);
        });
        // Not connected yet.
        assertEquals(WeftException.DISCONNECTED,
            code(() -> sa.publishPresence("doc", new byte[] {1})));
        sa.addPeer(url);
        sb.addPeer(url);
        sa.waitUntilSynced(url, T);
        sb.waitUntilSynced(url, T);
        byte[] cursor = "cursor 3".getBytes(StandardCharsets.UTF_8);
        long deadline = System.currentTimeMillis() + T;
        while (got.get() == null && System.currentTimeMillis() < deadline) {
          sa.publishPresence("doc", cursor);
          Thread.sleep(100);
        }
        assertArrayEquals(cursor, got.get());
        assertEquals(a.nodeId(), (long) from.get());
        assertNotSame(Thread.currentThread(), threads.get(0));
        sb.setPresenceListener(null);
        assertEquals(WeftException.INVALID_ARGUMENT,
            code(() -> sa.publishPresence("doc", new byte[64 * 1024 + 1])));
      }
    }
  }

  @Test
  void aSecureRelayServesAnOwnedDocumentOnlyToInvitedDevices() throws Exception {
    try (Replica alice = open("alice.db", false); Replica bob = open("bob.db", false)) {
      alice.transact("diary", t -> t.root().put("entry", "secret"));
      String token = alice.causalToken("diary");
      alice.syncOnce(url, "diary", T);
      try (Sync sb = bob.sync(new SyncOptions().document("diary"))) {
        sb.addPeer(url);
        // Not invited: nothing arrives.
        assertEquals(WeftException.TIMEOUT, code(() -> bob.waitFor(token, 1500)));
        assertFalse(bob.hasDocument("diary") && bob.toJson("diary").contains("secret"));
        alice.grant("diary", bob.publicKey(), Role.WRITER);
        SyncSummary s = alice.syncOnce(url, "diary", T);
        assertTrue(s.changesSent() >= 1);
        bob.waitFor(alice.causalToken("diary"), T);
        assertTrue(bob.toJson("diary").contains("secret"));
        assertEquals(Role.WRITER, bob.role("diary", bob.publicKey()));
      }
    }
  }

  @Test
  void syncErrors() {
    try (Replica a = open("a.db", true)) {
      Sync s = a.sync();
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> s.addPeer("http://127.0.0.1:1")));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> s.addPeer(null)));
      assertEquals(WeftException.NOT_FOUND, code(() -> s.removePeer(url)));
      assertEquals(WeftException.NOT_FOUND, code(() -> s.waitUntilSynced(url, 100)));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> s.waitUntilSynced(url, -1)));
      assertEquals(WeftException.INVALID_ARGUMENT,
          code(() -> new SyncOptions().backoff(0, 0)));
      assertEquals(WeftException.INVALID_ARGUMENT,
          code(() -> new SyncOptions().relayKey(new byte[3])));
      assertEquals(WeftException.INVALID_ARGUMENT,
          code(() -> a.sync(new SyncOptions().caFile(dir.resolve("none.pem").toString()))));
      assertEquals(WeftException.INVALID_ARGUMENT,
          code(() -> a.syncOnce("nope://x", null, 1000)));
      assertEquals(WeftException.BUSY, code(a::close));
      s.close();
      s.close();
      assertTrue(s.isClosed());
      assertEquals(WeftException.INVALID_ARGUMENT, code(s::peers));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> s.addPeer(url)));
    }
  }

  @Test
  void aRelayWithAnAdmissionKeyAdmitsOnlyDevicesWithItsTokens() throws Exception {
    try (Replica app = open("app.db", true); Replica dev = open("dev.db", true);
         Replica stranger = open("stranger.db", true);
         RelayProcess gated = new RelayProcess(dir.resolve("gated").toFile(), "--admission-key",
             app.publicKeyHex())) {
      dev.transact("d", t -> t.root().put("k", 1));
      String token = app.issueToken(dev.publicKey(), 600);
      SyncSummary s;
      try (Sync sync = dev.sync(new SyncOptions().admissionToken(token))) {
        sync.addPeer(gated.url());
        s = sync.waitUntilSynced(gated.url(), T);
      }
      assertTrue(s.changesSent() >= 1);
      assertEquals(1, s.documents());
      assertEquals(0, s.changesReceived());
      // Without a token: refused. The one-shot sync fails with the refusal (ABORTED) or, when
      // its attempts are refused until the deadline, TIMEOUT; the relay holds nothing of it.
      stranger.transact("d", t -> t.root().put("k", 2));
      int refused = code(() -> stranger.syncOnce(gated.url(), "d", 3000));
      assertTrue(refused == WeftException.ABORTED || refused == WeftException.TIMEOUT,
          "code " + refused);
      try (Sync sync = dev.sync(new SyncOptions().admissionToken(token))) {
        sync.addPeer(gated.url());
        sync.waitUntilSynced(gated.url(), T);
      }
      assertEquals(1, dev.read("d", v -> v.get(ObjectId.ROOT, "k")).value().asLong());
    }
  }
}
