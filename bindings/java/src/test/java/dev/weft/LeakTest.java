package dev.weft;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Opens and closes 10,000 replicas, each with a transaction, a read and a subscription, and checks
 * that the process's resident set (VmRSS) stays flat: a native handle leaked per iteration
 * (a replica with its SQLite connection and caches, a transaction's values, a global
 * reference) would add at least tens of kilobytes each, hundreds of megabytes in all.
 */
class LeakTest {
  static final int WARM_UP = 1_000;
  static final int ROUNDS = 10_000;
  // Generous: the JVM's own heap and JIT may still grow a little after the warm-up.
  static final long BOUND_KB = 24 * 1024;

  @TempDir Path dir;

  static long rssKb() throws IOException {
    for (String line : Files.readAllLines(Paths.get("/proc/self/status"))) {
      if (line.startsWith("VmRSS:")) return Long.parseLong(line.replaceAll("\\D", ""));
    }
    throw new IOException("no VmRSS in /proc/self/status");
  }

  void rounds(String path, int n) {
    for (int i = 0; i < n; i++) {
      try (Replica r = Replica.open(path)) {
        try (Subscription s = r.subscribe("d", e -> { })) {
          r.transact("d", t -> t.root().counter("n").add(1));
        }
        r.read("d", v -> v.get(ObjectId.ROOT, "n"));
      }
    }
  }

  @Test
  void tenThousandReplicasAndTransactionsKeepRssFlat() throws Exception {
    // On tmpfs when there is one: each open and close syncs files, which on a disk makes the
    // rounds take minutes without changing what is measured.
    Path shm = Paths.get("/dev/shm");
    Path base = Files.isDirectory(shm) && Files.isWritable(shm)
        ? Files.createTempDirectory(shm, "weft-java-leak") : dir;
    try {
      measure(base.resolve("leak.db").toString());
    } finally {
      if (base != dir) {
        try (java.util.stream.Stream<Path> files = Files.list(base)) {
          for (Path f : (Iterable<Path>) files::iterator) Files.delete(f);
        }
        Files.delete(base);
      }
    }
  }

  void measure(String path) throws Exception {
    rounds(path, WARM_UP);
    System.gc();
    long before = rssKb();
    long start = System.nanoTime();
    rounds(path, ROUNDS);
    System.gc();
    long after = rssKb();
    long ms = (System.nanoTime() - start) / 1_000_000;
    System.out.printf("java leak check: VmRSS %d kB after %d warm-up rounds, %d kB after %d more"
        + " (%+d kB, %.2f kB per round), %d ms%n", before, WARM_UP, after, ROUNDS,
        after - before, (after - before) / (double) ROUNDS, ms);
    try (Replica r = Replica.open(path)) {
      long n = r.read("d", v -> v.counter(v.lookup(ObjectId.ROOT, "n", Kind.COUNTER)));
      assertEquals(WARM_UP + ROUNDS, n);
    }
    assertTrue(after - before < BOUND_KB,
        "VmRSS grew by " + (after - before) + " kB over " + ROUNDS + " rounds");
  }
}
