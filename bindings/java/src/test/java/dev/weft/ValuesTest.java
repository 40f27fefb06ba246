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

  @Test
  void refsByIdListAndSetReadsAndValueIdentity() {
    ObjectId[] ids = new ObjectId[6];
    r.transact("d", t -> {
      assertEquals("d", t.doc());
      ids[0] = t.root().list("l").id();
      ids[1] = t.root().set("s").id();
      ids[2] = t.root().counter("c").id();
      ids[3] = t.root().register("r").id();
      ids[4] = t.root().lww("w").id();
      ids[5] = t.root().map("m").id();
    });
    r.transact("d", t -> {
      ListRef l = t.list(ids[0]).add(Value.of("a"), Value.of("b"), Value.of("c")).delete(1, 1);
      assertEquals(List.of(Value.of("a"), Value.of("c")), l.values());
      assertEquals(2, l.size());
      SetRef set = t.set(ids[1]).add(Value.of(1)).add(Value.of(1));
      assertEquals(List.of(Value.of(1)), set.elements());
      assertEquals(5, t.counter(ids[2]).add(5).value());
      t.register(ids[3]).set(Value.of(true));
      t.lww(ids[4]).set(Value.of("w"));
      t.map(ids[5]).put("k", "v");
      assertEquals(4, t.root().text("t").insert(0, "a\uD83D\uDE00bc").size());
      // A ref of the wrong kind fails and changes nothing.
      assertEquals(WeftException.TYPE_MISMATCH,
          assertThrows(WeftException.class, () -> t.counter(ids[1]).add(1)).code());
    });
    r.read("d", v -> {
      assertTrue(v.register(ids[3]).value().asBoolean());
      Value w = v.lww(ids[4]).get(0);
      assertTrue(w.timeMs() > 0 && w.timeLogical() >= 0);
      assertEquals("v", v.get(ids[5], "k").value().asString());
      assertEquals(List.of(Value.of(1)), v.setElements(ids[1]));
      return null;
    });
    // Values, IDs and anchors are plain values.
    assertEquals(Value.of("x"), Value.of("x"));
    assertEquals(Value.of("x").hashCode(), Value.of("x").hashCode());
    assertFalse(Value.of(1).equals(Value.of(1.0)));
    assertFalse(Value.of("1").equals(Value.ofBytes(new byte[] {'1'})));
    assertEquals("\"x\"", Value.of("x").toString());
    assertEquals("null", Value.ofNull().toString());
    assertEquals(new ObjectId(-1, 2), new ObjectId(-1, 2));
    assertEquals("18446744073709551615.2", new ObjectId(-1, 2).toString());
    assertEquals(new Anchor(ObjectId.ROOT, true), new Anchor(ObjectId.ROOT, true));
    assertFalse(new Anchor(ObjectId.ROOT, true).equals(new Anchor(ObjectId.ROOT, false)));
    assertTrue(Kind.TEXT.isObject());
    assertFalse(Kind.BYTES.isObject());
    assertEquals(WeftException.INVALID_ARGUMENT,
        assertThrows(WeftException.class, () -> Value.ofBytes(null)).code());
    assertEquals(WeftException.INVALID_ARGUMENT,
        assertThrows(WeftException.class, () -> new Anchor(null, false)).code());
  }
}
