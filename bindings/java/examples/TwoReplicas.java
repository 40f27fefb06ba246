// Two replicas edit offline and converge through a relay (weft-relay, started here on a free
// loopback port; $WEFT_RELAY names the binary, else weft-relay on the PATH).
//
//   java -Ddev.weft.jni=build/bindings/java/libweft_jni.so \
//        -cp build/bindings/java/weft.jar:build/bindings/java/weft-java-example.jar TwoReplicas

import dev.weft.Replica;
import dev.weft.Role;
import dev.weft.Sync;
import dev.weft.Value;
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;

public class TwoReplicas {
  static void syncBoth(Replica laptop, Replica phone, String url) {
    try (Sync s1 = laptop.sync(); Sync s2 = phone.sync()) {
      s1.addPeer(url);
      s2.addPeer(url);
      s1.waitUntilSynced(url, 20_000);
      s2.waitUntilSynced(url, 20_000);
      // Causal tokens: each waits until it holds everything the other had.
      phone.waitFor(laptop.causalToken("trip"), 20_000);
      laptop.waitFor(phone.causalToken("trip"), 20_000);
    }
  }

  public static void main(String[] args) throws Exception {
    File tmp = Files.createTempDirectory("weft-example").toFile();
    String relayBinary = System.getenv().getOrDefault("WEFT_RELAY", "weft-relay");
    Process relay = new ProcessBuilder(relayBinary, "--listen", "127.0.0.1:0",
        "--data", new File(tmp, "relay").getPath()).redirectErrorStream(true).start();
    try (Replica laptop = Replica.open(new File(tmp, "laptop.db").getPath());
         Replica phone = Replica.open(new File(tmp, "phone.db").getPath())) {
      // The relay prints "weft-relay listening on 127.0.0.1:PORT (...)" once it listens.
      String line = new BufferedReader(
          new InputStreamReader(relay.getInputStream(), StandardCharsets.UTF_8)).readLine();
      String url = "ws://127.0.0.1:" + line.split("127\\.0\\.0\\.1:")[1].split("\\D")[0];

      // The laptop creates the document (it owns it) and invites the phone as a writer.
      laptop.transact("trip", t -> {
        t.root().put("title", "Trip");
        t.root().text("notes").insert(0, "pack light");
        t.root().set("tags");
        t.root().counter("votes");
      });
      laptop.grant("trip", phone.publicKey(), Role.WRITER);
      syncBoth(laptop, phone, url);

      // Offline: each device edits on its own.
      laptop.transact("trip", t -> {
        t.root().put("title", "Lisbon");
        t.root().text("notes").append(", bring a hat");
        t.root().set("tags").add(Value.of("spring"));
        t.root().counter("votes").add(1);
      });
      phone.transact("trip", t -> {
        t.root().put("title", "Lisbon in May");
        t.root().text("notes").insert(0, "Remember: ");
        t.root().set("tags").add(Value.of("city"));
        t.root().counter("votes").add(2);
      });

      // Back online: sync, and both hold the same state. Counters add up, sets merge, text
      // edits interleave; the two concurrent titles stay as siblings until someone picks one.
      syncBoth(laptop, phone, url);
      String a = laptop.toJson("trip");
      String b = phone.toJson("trip");
      System.out.println("laptop: " + a);
      System.out.println("phone:  " + b);
      if (!a.equals(b)) throw new AssertionError("the replicas diverged");
      System.out.println("converged");
    } finally {
      relay.destroy();
      relay.waitFor();
      deleteTree(tmp);
    }
  }

  static void deleteTree(File f) {
    File[] children = f.listFiles();
    if (children != null) {
      for (File c : children) deleteTree(c);
    }
    f.delete();
  }
}
