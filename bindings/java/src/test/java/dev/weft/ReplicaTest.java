package dev.weft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Replica API without a network: lifecycle, errors, documents, feed, siblings, access. */
class ReplicaTest {
  @TempDir Path dir;

  String path(String name) {
    return dir.resolve(name).toString();
  }

  static int code(Runnable r) {
    return assertThrows(WeftException.class, r::run).code();
  }

  /** What this thread's uncaught-exception handler receives while r runs. */
  static List<Throwable> reportedWhile(Runnable r) {
    List<Throwable> reported = new ArrayList<>();
    Thread.UncaughtExceptionHandler old = Thread.currentThread().getUncaughtExceptionHandler();
    Thread.currentThread().setUncaughtExceptionHandler((th, x) -> reported.add(x));
    try {
      r.run();
    } finally {
      Thread.currentThread().setUncaughtExceptionHandler(old);
    }
    return reported;
  }

  @Test
  void identityAndDocuments() {
    long node;
    byte[] key;
    try (Replica r = Replica.open(path("a.db"))) {
      assertFalse(Replica.libraryVersion().isEmpty());
      node = r.nodeId();
      key = r.publicKey();
      assertEquals(32, key.length);
      assertEquals(Keys.toHex(key), r.publicKeyHex());
      assertArrayEquals(key, Keys.fromHex(r.publicKeyHex()));
      assertNotEquals(0, r.actorId());
      assertEquals(path("a.db"), r.path());
      r.createDocument("b");
      r.createDocument("a");
      r.createDocument("a");
      assertEquals(List.of("a", "b"), r.documents());
      assertTrue(r.hasDocument("a"));
      r.deleteDocument("a");
      assertFalse(r.hasDocument("a"));
      assertEquals(WeftException.NOT_FOUND, code(() -> r.deleteDocument("a")));
      r.transact("b", t -> t.root().put("k", 1));
      r.snapshot("b");
    }
    // The node ID and key are stable across opens.
    try (Replica r = Replica.open(path("a.db"), new ReplicaOptions().durabilityFull(true)
        .snapshotEvery(10, 100).driftCheck(60_000))) {
      assertEquals(node, r.nodeId());
      assertArrayEquals(key, r.publicKey());
      assertEquals(1, (long) r.read("b", v -> v.get(ObjectId.ROOT, "k").value().asLong()));
    }
  }

  @Test
  void openErrors() throws Exception {
    // A missing file without create: IO_ERROR, and no file is made.
    String missing = path("missing.db");
    WeftException e = assertThrows(WeftException.class,
        () -> Replica.open(missing, new ReplicaOptions().createIfMissing(false)));
    assertEquals(WeftException.IO_ERROR, e.code());
    assertFalse(new File(missing).exists());
    // A corrupt database file: CORRUPTION, and the file is left as it was.
    byte[] junk = new byte[8192];
    for (int i = 0; i < junk.length; i++) junk[i] = (byte) (i * 31 + 7);
    Path corrupt = dir.resolve("corrupt.db");
    Files.write(corrupt, junk);
    e = assertThrows(WeftException.class, () -> Replica.open(corrupt.toString()));
    assertEquals(WeftException.CORRUPTION, e.code());
    assertEquals("Corruption", e.codeName());
    assertFalse(e.getMessage().isEmpty());
    assertArrayEquals(junk, Files.readAllBytes(corrupt));
    // Bad arguments.
    assertEquals(WeftException.INVALID_ARGUMENT, code(() -> Replica.open(null)));
    assertEquals(WeftException.INVALID_ARGUMENT, code(() -> Replica.open("bad\uDC00.db")));
    assertEquals(WeftException.INVALID_ARGUMENT,
        code(() -> new ReplicaOptions().snapshotEvery(-1, 0)));
    assertEquals(WeftException.INVALID_ARGUMENT, code(() -> new ReplicaOptions().driftCheck(-5)));
    assertEquals("NotFound", WeftException.codeName(WeftException.NOT_FOUND));
    assertEquals("Unknown", WeftException.codeName(999));
  }

  @Test
  void badArgumentsChangeNothing() {
    try (Replica r = Replica.open(path("a.db"))) {
      r.transact("d", t -> t.root().put("k", "v"));
      String before = r.toJson("d");
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> r.createDocument("")));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> r.createDocument(null)));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> r.hasDocument("x\uD800")));
      assertEquals(WeftException.INVALID_ARGUMENT,
          code(() -> r.createDocument("x".repeat(1025))));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> r.transact("d", null)));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> r.grant("d", new byte[5],
          Role.READER)));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> r.satisfies("not a token")));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> r.waitFor("d@1.1", -1)));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> Keys.fromHex("zz")));
      assertEquals(WeftException.NOT_FOUND, code(() -> r.read("absent", View::toJson)));
      assertEquals(WeftException.NOT_FOUND, code(() -> r.causalToken("absent")));
      assertEquals(List.of("d"), r.documents());
      assertEquals(before, r.toJson("d"));
    }
  }

  @Test
  void closedHandlesThrowAndCloseIsIdempotent() {
    Replica r = Replica.open(path("a.db"));
    r.transact("d", t -> t.root().put("k", 1));
    Subscription sub = r.subscribe(null, e -> { });
    // Open dependents keep the replica open.
    assertEquals(WeftException.BUSY, code(r::close));
    assertFalse(r.isClosed());
    sub.close();
    sub.close();
    assertTrue(sub.isClosed());
    r.close();
    r.close();
    assertTrue(r.isClosed());
    WeftException e = assertThrows(WeftException.class, r::nodeId);
    assertEquals(WeftException.INVALID_ARGUMENT, e.code());
    assertTrue(e.getMessage().contains("closed"), e.getMessage());
    assertEquals(WeftException.INVALID_ARGUMENT, code(() -> r.transact("d", t -> { })));
    assertEquals(WeftException.INVALID_ARGUMENT, code(() -> r.subscribe(null, ev -> { })));
    assertEquals(WeftException.INVALID_ARGUMENT, code(r::sync));
    assertEquals(WeftException.INVALID_ARGUMENT, code(r::documents));
  }

  @Test
  void transactionsAndViewsEndWithTheirBody() throws Exception {
    try (Replica r = Replica.open(path("a.db"))) {
      AtomicReference<Txn> kept = new AtomicReference<>();
      AtomicReference<View> keptView = new AtomicReference<>();
      r.transact("d", t -> {
        kept.set(t);
        t.root().put("k", 1);
        // Not on another thread.
        AtomicReference<Throwable> other = new AtomicReference<>();
        Thread th = new Thread(() -> {
          try {
            t.root().put("k", 2);
          } catch (Throwable x) {
            other.set(x);
          }
        });
        th.start();
        try {
          th.join();
        } catch (InterruptedException x) {
          throw new RuntimeException(x);
        }
        assertEquals(WeftException.INVALID_ARGUMENT, ((WeftException) other.get()).code());
        // No nested transaction, read or close on the same replica.
        assertEquals(WeftException.BUSY, code(() -> r.transact("d", u -> { })));
        assertEquals(WeftException.BUSY, code(() -> r.read("d", View::toJson)));
        assertEquals(WeftException.BUSY, code(r::close));
      });
      r.read("d", v -> {
        keptView.set(v);
        return null;
      });
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> kept.get().root().put("k", 3)));
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> keptView.get().toJson()));
      assertEquals(1, (long) r.read("d", v -> v.get(ObjectId.ROOT, "k").value().asLong()));
    }
  }

  @Test
  void aThrowingBodyRollsBackAndRethrows() {
    try (Replica r = Replica.open(path("a.db"))) {
      r.transact("d", t -> t.root().put("k", 1));
      String token = r.causalToken("d");
      IllegalStateException boom = new IllegalStateException("boom");
      IllegalStateException got = assertThrows(IllegalStateException.class,
          () -> r.transact("d", t -> {
            t.root().put("k", 2);
            t.root().counter("c").add(1);
            throw boom;
          }));
      assertSame(boom, got);
      // A WeftException from the body comes out as is, too.
      WeftException w = assertThrows(WeftException.class,
          () -> r.transact("d", t -> t.root().text("k")));
      assertEquals(WeftException.TYPE_MISMATCH, w.code());
      assertEquals(token, r.causalToken("d"));
      assertEquals("{\"k\":1}", r.toJson("d"));
      // A read body's exception comes out too.
      assertSame(boom, assertThrows(IllegalStateException.class, () -> r.read("d", v -> {
        throw boom;
      })));
      // A transaction without ops writes nothing.
      assertFalse(r.transact("d", t -> { }).changed());
    }
  }

  @Test
  void tokensHistoryAndTimeTravel() {
    try (Replica r = Replica.open(path("a.db"))) {
      CommitInfo first = r.transact("d", t -> t.root().put("title", "one"));
      assertTrue(first.changed());
      assertEquals(first.versionToken(), r.causalToken("d"));
      CommitInfo second = r.transact("d", t -> t.root().put("title", "two"));
      assertTrue(r.satisfies(first.versionToken()));
      r.waitFor(second.versionToken(), 1000);
      assertEquals("one", r.readAt("d", first.versionToken(),
          v -> v.get(ObjectId.ROOT, "title").value().asString()));
      assertEquals("{}", r.readAt("d", "", View::toJson));
      List<Patch> diff = r.diff("d", first.versionToken(), second.versionToken());
      assertEquals(1, diff.size());
      assertEquals(Patch.Type.MAP_KEY, diff.get(0).type());
      assertEquals("title", diff.get(0).key());
      List<HistoryEntry> h = r.history("d");
      assertEquals(2, h.size());
      assertEquals(second.versionToken(), h.get(1).token());
      assertEquals(second.change(), h.get(1).change());
      assertTrue(h.get(1).lamport() > h.get(0).lamport());
      assertTrue(h.get(0).ops() > 0 && h.get(1).ops() > 0);
      assertTrue(h.get(0).timeMs() > 0);
      assertEquals(h.get(0).ops(), h.get(0).endSeq() - h.get(0).change().seq() + 1);
      assertEquals(WeftException.INVALID_ARGUMENT,
          code(() -> r.diff("d", second.versionToken(), first.versionToken())));
    }
  }

  @Test
  void rawChangesApplyAllOrNothing() {
    try (Replica a = Replica.open(path("a.db"), new ReplicaOptions().publicDocuments(true));
         Replica b = Replica.open(path("b.db"))) {
      a.transact("d", t -> t.root().put("x", 1));
      String mid = a.causalToken("d");
      a.transact("d", t -> t.root().counter("c").add(4));
      List<byte[]> all = a.changesSince("d", null);
      assertEquals(2, all.size());
      assertEquals(1, a.changesSince("d", mid).size());
      // The second change alone lacks its dependency.
      assertEquals(WeftException.MISSING_DEPENDENCY,
          code(() -> b.applyChanges("d", a.changesSince("d", mid))));
      byte[] bad = Arrays.copyOf(all.get(0), all.get(0).length / 2);
      assertEquals(WeftException.CORRUPTION,
          code(() -> b.applyChanges("d", List.of(all.get(1), bad))));
      assertEquals(WeftException.CORRUPTION,
          code(() -> b.applyChanges("d", List.of(new byte[] {1, 2, 3}))));
      assertFalse(b.hasDocument("d"));
      assertEquals(2, b.applyChanges("d", all));
      assertEquals(0, b.applyChanges("d", all));  // applying twice is a no-op
      assertEquals(a.toJson("d"), b.toJson("d"));
    }
  }

  /** a and b edit concurrently, then exchange their changes: siblings on both. */
  static void concurrentTitles(Replica a, Replica b) {
    a.transact("d", t -> {
      t.root().put("title", "base");
      t.root().register("reg").set(Value.of(0));
    });
    b.applyChanges("d", a.changesSince("d", null));
    a.transact("d", t -> {
      t.root().put("title", "A");
      t.root().register("reg").set(Value.of("a"));
    });
    b.transact("d", t -> {
      t.root().put("title", "B");
      t.root().register("reg").set(Value.of("b"));
    });
  }

  static void exchange(Replica a, Replica b) {
    a.applyChanges("d", b.changesSince("d", null));
    b.applyChanges("d", a.changesSince("d", null));
  }

  @Test
  void siblingsAndResolvingThemOnRead() {
    ReplicaOptions pub = new ReplicaOptions().publicDocuments(true);
    try (Replica a = Replica.open(path("a.db"), pub); Replica b = Replica.open(path("b.db"))) {
      concurrentTitles(a, b);
      exchange(a, b);
      Siblings titles = a.read("d", v -> v.get(ObjectId.ROOT, "title"));
      assertTrue(titles.isConflict());
      assertEquals(List.of("A", "B"), List.of(titles.values().get(0).asString(),
          titles.values().get(1).asString()).stream().sorted().toList());
      assertEquals(WeftException.TYPE_MISMATCH, code(titles::value));
      assertEquals(titles.values(), b.read("d", v -> v.get(ObjectId.ROOT, "title")).values());
      assertTrue(a.toJson("d").contains("\"conflict\""));
      // Siblings read elsewhere are no context for a write.
      assertEquals(WeftException.INVALID_ARGUMENT, code(() -> a.transact("d",
          t -> t.root().putAfterRead("title", Value.of("x"), titles))));
      a.transact("d", t -> {
        Siblings read = t.root().get("title");
        assertEquals(2, read.size());
        t.root().putAfterRead("title", Value.of("A+B"), read);
        RegisterRef reg = t.root().register("reg");
        Siblings regs = reg.siblings();
        assertEquals(2, regs.size());
        reg.resolve(Value.of("ab"), regs);
      });
      exchange(a, b);
      for (Replica r : List.of(a, b)) {
        assertEquals("A+B", r.read("d", v -> v.get(ObjectId.ROOT, "title")).value().asString());
        assertEquals("ab", r.read("d", v -> v.register(
            v.lookup(ObjectId.ROOT, "reg", Kind.REGISTER))).value().asString());
      }
    }
  }

  @Test
  void resolversRunOnTheApplyingThread() {
    ReplicaOptions pub = new ReplicaOptions().publicDocuments(true);
    try (Replica a = Replica.open(path("a.db"), pub); Replica b = Replica.open(path("b.db"))) {
      concurrentTitles(a, b);
      List<Conflict> seen = new CopyOnWriteArrayList<>();
      List<Thread> threads = new CopyOnWriteArrayList<>();
      a.setConflictResolver("d", c -> {
        seen.add(c);
        threads.add(Thread.currentThread());
        // Pick the greatest string.
        return c.siblings().stream().max((x, y) -> x.asString().compareTo(y.asString())).get();
      });
      a.applyChanges("d", b.changesSince("d", null));
      assertEquals(1, seen.size());
      assertEquals("title", seen.get(0).key());
      assertEquals("d", seen.get(0).doc());
      assertEquals(ObjectId.ROOT, seen.get(0).map());
      assertEquals(2, seen.get(0).siblings().size());
      assertSame(Thread.currentThread(), threads.get(0));
      assertEquals("B", a.read("d", v -> v.get(ObjectId.ROOT, "title")).value().asString());

      // A resolver that throws leaves the siblings, and its exception reaches the handler.
      a.setConflictResolver("d", c -> {
        throw new IllegalStateException("resolver failed");
      });
      b.applyChanges("d", a.changesSince("d", null));
      a.transact("d", t -> t.root().put("title", "A2"));
      b.transact("d", t -> t.root().put("title", "B2"));
      List<Throwable> reported =
          reportedWhile(() -> a.applyChanges("d", b.changesSince("d", null)));
      assertEquals(1, reported.size());
      assertEquals("resolver failed", reported.get(0).getMessage());
      assertTrue(a.read("d", v -> v.get(ObjectId.ROOT, "title")).isConflict());
      // Removed: the next conflict stays too, and the throwing resolver is not called.
      a.setConflictResolver("d", null);
      b.transact("d", t -> t.root().put("title", "B3"));
      a.transact("d", t -> t.root().put("title", "A3"));
      assertTrue(reportedWhile(() -> a.applyChanges("d", b.changesSince("d", null))).isEmpty());
      assertTrue(a.read("d", v -> v.get(ObjectId.ROOT, "title")).isConflict());
    }
  }

  @Test
  void changeFeedReportsLocalCommitsAndCommitsFromOtherThreads() throws Exception {
    try (Replica r = Replica.open(path("a.db"))) {
      List<ChangeEvent> events = new CopyOnWriteArrayList<>();
      List<Thread> threads = new CopyOnWriteArrayList<>();
      Subscription all = r.subscribe(null, e -> {
        events.add(e);
        threads.add(Thread.currentThread());
      });
      List<ChangeEvent> onlyOther = new CopyOnWriteArrayList<>();
      Subscription other = r.subscribe("other", onlyOther::add);
      CommitInfo c = r.transact("d", t -> {
        t.root().put("title", "x");
        t.root().counter("n").add(3);
        t.root().text("t").insert(0, "hi");
        t.root().set("s").add(Value.of("e"));
      });
      assertEquals(1, events.size());
      ChangeEvent e = events.get(0);
      assertTrue(e.local());
      assertEquals("d", e.doc());
      assertEquals(c.change(), e.change());
      assertSame(Thread.currentThread(), threads.get(0));
      List<Patch.Type> types = new ArrayList<>();
      for (Patch p : e.patches()) types.add(p.type());
      assertTrue(types.containsAll(List.of(Patch.Type.MAP_KEY, Patch.Type.COUNTER,
          Patch.Type.INSERT, Patch.Type.SET_ADD)), types.toString());
      for (Patch p : e.patches()) {
        if (p.type() == Patch.Type.COUNTER) assertEquals(3, p.delta());
        if (p.type() == Patch.Type.INSERT) assertEquals("hi", p.text());
        if (p.type() == Patch.Type.SET_ADD) assertEquals("e", p.element().asString());
      }
      // A commit on another Java thread is reported on that thread.
      Thread writer = new Thread(() -> r.transact("other", t -> t.root().put("k", 1)));
      writer.start();
      writer.join();
      assertEquals(2, events.size());
      assertSame(writer, threads.get(1));
      assertEquals(1, onlyOther.size());
      // A listener that throws does not stop the feed nor fail the commit.
      Subscription bad = r.subscribe("d", ev -> {
        throw new IllegalStateException("listener failed");
      });
      List<Throwable> reported =
          reportedWhile(() -> r.transact("d", t -> t.root().put("title", "y")));
      assertEquals(1, reported.size());
      assertEquals("listener failed", reported.get(0).getMessage());
      assertEquals(3, events.size());
      bad.close();
      all.close();
      other.close();
      r.transact("d", t -> t.root().put("title", "z"));
      assertEquals(3, events.size());
    }
  }

  @Test
  void accessLists() {
    try (Replica alice = Replica.open(path("alice.db"));
         Replica bob = Replica.open(path("bob.db"));
         Replica pub = Replica.open(path("pub.db"), new ReplicaOptions().publicDocuments(true))) {
      alice.transact("diary", t -> t.root().put("entry", "secret"));
      assertTrue(alice.isOwned("diary"));
      assertEquals(Role.OWNER, alice.role("diary", alice.publicKey()));
      assertEquals(Role.NONE, alice.role("diary", bob.publicKey()));
      alice.grant("diary", bob.publicKey(), Role.READER);
      Map<String, Role> members = alice.members("diary");
      assertEquals(Map.of(alice.publicKeyHex(), Role.OWNER, bob.publicKeyHex(), Role.READER),
          members);
      // Bob holds the document and the list, and may not write it.
      bob.applyChanges("diary", alice.changesSince("diary", null));
      assertEquals(Role.READER, bob.role("diary", bob.publicKey()));
      String before = bob.toJson("diary");
      assertEquals(WeftException.PERMISSION_DENIED,
          code(() -> bob.transact("diary", t -> t.root().put("entry", "mine"))));
      assertEquals(WeftException.PERMISSION_DENIED,
          code(() -> bob.grant("diary", bob.publicKey(), Role.ADMIN)));
      assertEquals(before, bob.toJson("diary"));
      alice.revoke("diary", bob.publicKey());
      assertEquals(Role.NONE, alice.role("diary", bob.publicKey()));
      assertEquals(Map.of(alice.publicKeyHex(), Role.OWNER), alice.members("diary"));
      pub.transact("open", t -> t.root().put("k", 1));
      assertFalse(pub.isOwned("open"));
      assertEquals(Collections.emptyMap(), pub.members("open"));
      String token = alice.issueToken(bob.publicKey(), 3600);
      assertNotNull(token);
      assertTrue(token.matches("[0-9a-f]+"), token);
      assertEquals(WeftException.NOT_FOUND, code(() -> alice.members("absent")));
    }
  }

  /** The open file descriptors of this process (SQLite keeps a few per open replica). */
  static int openFds() {
    String[] fds = new File("/proc/self/fd").list();
    return fds == null ? -1 : fds.length;
  }

  @Test
  void theCleanerClosesForgottenReplicasAndTheirSubscriptions() throws Exception {
    int before = openFds();
    for (int i = 0; i < 20; i++) {
      Replica r = Replica.open(path("forgotten" + i + ".db"));
      r.transact("d", t -> t.root().put("k", 1));
      r.subscribe(null, e -> { });  // forgotten too: the replica closes after it
    }
    assertTrue(openFds() >= before + 20, "each open replica holds files");
    long deadline = System.currentTimeMillis() + 30_000;
    while (openFds() > before + 2 && System.currentTimeMillis() < deadline) {
      System.gc();
      Thread.sleep(50);
    }
    assertTrue(openFds() <= before + 2, "fds before " + before + ", now " + openFds());
    // Each file was closed cleanly and opens again.
    try (Replica r = Replica.open(path("forgotten0.db"))) {
      assertEquals("{\"k\":1}", r.toJson("d"));
    }
  }
}
