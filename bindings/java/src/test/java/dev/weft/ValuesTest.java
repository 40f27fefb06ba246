package dev.weft;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Values of every kind written in transactions and read back through views. */
class ValuesTest {
  @TempDir Path dir;
  Replica r;

  @BeforeEach
  void open() {
    r = Replica.open(dir.resolve("v.db").toString());
  }

  @AfterEach
  void close() {
    r.close();
  }

  @Test
  void scalarsRoundTripThroughAMap() {
    byte[] blob = {0, 1, (byte) 0xff, 0};
    String unicode = "héllo \uD83D\uDE00 nul\u0000end";
    r.transact("d", t -> {
      MapRef m = t.root();
      m.put("null", Value.ofNull()).put("t", true).put("f", false).put("i", Long.MIN_VALUE)
          .put("x", 2.5).put("s", unicode).put("b", blob);
      // Reads inside the transaction see its writes.
      assertEquals(Long.MIN_VALUE, m.get("i").value().asLong());
      assertEquals(List.of("b", "f", "i", "null", "s", "t", "x"), m.keys());
    });
    r.read("d", v -> {
      assertTrue(v.get(ObjectId.ROOT, "null").value().isNull());
      assertTrue(v.get(ObjectId.ROOT, "t").value().asBoolean());
      assertFalse(v.get(ObjectId.ROOT, "f").value().asBoolean());
      assertEquals(Long.MIN_VALUE, v.get(ObjectId.ROOT, "i").value().asLong());
      assertEquals(2.5, v.get(ObjectId.ROOT, "x").value().asDouble());
      assertEquals(unicode, v.get(ObjectId.ROOT, "s").value().asString());
      assertArrayEquals(blob, v.get(ObjectId.ROOT, "b").value().asBytes());
      assertEquals(Kind.BYTES, v.get(ObjectId.ROOT, "b").value().kind());
      assertTrue(v.get(ObjectId.ROOT, "absent").isEmpty());
      WeftException e = assertThrows(WeftException.class,
          () -> v.get(ObjectId.ROOT, "s").value().asLong());
      assertEquals(WeftException.TYPE_MISMATCH, e.code());
      return null;
    });
    r.transact("d", t -> t.root().delete("s"));
    assertTrue(r.<Boolean>read("d", v -> v.get(ObjectId.ROOT, "s").isEmpty()));
  }

  @Test
  void everyObjectKind() {
    ObjectId[] ids = new ObjectId[7];
    r.transact("d", t -> {
      MapRef root = t.root();
      MapRef inner = root.map("inner").put("k", "v");
      ids[0] = inner.id();
      ListRef list = root.list("list").add(Value.of(1), Value.of("two")).insert(0, Value.of(0L));
      MapRef item = list.insertMap(3).put("done", false);
      ids[1] = list.id();
      TextRef text = root.text("text").insert(0, "hello world").delete(5, 6).append("!");
      assertEquals("hello!", text.toString());
      ids[2] = text.id();
      CounterRef c = root.counter("count").add(5).add(-2);
      assertEquals(3, c.value());
      ids[3] = c.id();
      SetRef set = root.set("tags").add(Value.of("a")).add(Value.of("b")).add(Value.of(7))
          .remove(Value.of("b"));
      assertTrue(set.contains(Value.of("a")));
      assertFalse(set.contains(Value.of("b")));
      ids[4] = set.id();
      RegisterRef reg = root.register("reg").set(Value.of("one"));
      ids[5] = reg.id();
      LwwRef lww = root.lww("lww").set(Value.of(1.5)).set(Value.of(2.5));
      ids[6] = lww.id();
      assertEquals(2.5, lww.get().get(0).asDouble());
      assertEquals(Kind.MAP, t.view().kind(item.id()));
    });
    r.read("d", v -> {
      ObjectId root = ObjectId.ROOT;
      assertEquals(Kind.MAP, v.kind(ids[0]));
      assertEquals(ids[0], v.lookup(root, "inner", Kind.MAP));
      assertEquals("v", v.get(ids[0], "k").value().asString());
      List<Value> items = v.listValues(ids[1]);
      assertEquals(4, items.size());
      assertEquals(0, items.get(0).asLong());
      assertEquals("two", items.get(2).asString());
      assertEquals(Kind.MAP, items.get(3).kind());
      assertFalse(v.get(items.get(3).asObject(), "done").value().asBoolean());
      assertEquals(4, v.size(ids[1]));
      assertEquals("hello!", v.text(ids[2]));
      assertEquals(6, v.size(ids[2]));
      assertEquals(3, v.counter(ids[3]));
      assertEquals(2, v.setElements(ids[4]).size());
      assertTrue(v.setContains(ids[4], Value.of(7)));
      assertEquals("one", v.register(ids[5]).value().asString());
      List<Value> lww = v.lww(ids[6]);
      assertEquals(2.5, lww.get(0).asDouble());
      assertTrue(lww.get(0).timeMs() > 0);
      assertEquals(Kind.LWW, v.kind(ids[6]));
      WeftException e = assertThrows(WeftException.class,
          () -> v.lookup(root, "text", Kind.COUNTER));
      assertEquals(WeftException.TYPE_MISMATCH, e.code());
      assertEquals(WeftException.NOT_FOUND,
          assertThrows(WeftException.class, () -> v.lookup(root, "nope", Kind.MAP)).code());
      String json = v.toJson();
      assertTrue(json.contains("\"text\":\"hello!\""), json);
      assertTrue(json.contains("\"count\":3"), json);
      return null;
    });
  }

  @Test
  void anchorsMoveWithEdits() {
    ObjectId[] text = new ObjectId[1];
    Anchor[] a = new Anchor[1];
    r.transact("d", t -> text[0] = t.root().text("t").insert(0, "world").id());
    r.read("d", v -> a[0] = v.anchorAt(text[0], 2, false));
    r.transact("d", t -> t.text(text[0]).insert(0, "hello "));
    assertEquals(8, (long) r.read("d", v -> v.anchorIndex(text[0], a[0])));
  }

  @Test
  void failedWritesChangeNothingAndTheTransactionGoesOn() {
    r.transact("d", t -> t.root().text("t").insert(0, "abc"));
    String before = r.toJson("d");
    CommitInfo info = r.transact("d", t -> {
      TextRef text = t.root().text("t");
      assertEquals(WeftException.OUT_OF_RANGE,
          assertThrows(WeftException.class, () -> text.insert(99, "x")).code());
      assertEquals(WeftException.TYPE_MISMATCH,
          assertThrows(WeftException.class, () -> t.root().counter("t")).code());
      assertEquals(WeftException.INVALID_ARGUMENT,
          assertThrows(WeftException.class, () -> text.insert(-1, "x")).code());
      assertEquals(WeftException.INVALID_ARGUMENT,
          assertThrows(WeftException.class, () -> t.root().put("k", "\uD800")).code());
      assertEquals(WeftException.INVALID_ARGUMENT,
          assertThrows(WeftException.class, () -> t.root().put(null, 1)).code());
      t.root().list("l").insertMap(0).put("x", 1);
    });
    assertTrue(info.changed());  // the list "l" and its map were written
    String after = r.toJson("d");
    assertTrue(after.contains("\"t\":\"abc\""), after);
    assertTrue(after.contains("\"l\":[{\"x\":1}]"), after);
    assertFalse(before.contains("\"l\""));
  }

  @Test
  void objectValuesAreRefusedAsScalars() {
    r.transact("d", t -> t.root().map("m"));
    Value m = r.read("d", v -> v.get(ObjectId.ROOT, "m").value());
    assertEquals(Kind.MAP, m.kind());
    String before = r.toJson("d");
    WeftException e = assertThrows(WeftException.class,
        () -> r.transact("d", t -> t.root().put("copy", m)));
    assertEquals(WeftException.INVALID_ARGUMENT, e.code());
    assertEquals(before, r.toJson("d"));
  }
}
