"""The weft Python package on one machine: values, transactions, errors, conflicts, the change
feed and causal tokens (no network; changes move between replicas through changes_since)."""

import os
import tempfile
import threading
import unittest

import weft


class ReplicaTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def open(self, name="r.db", **kw):
        kw.setdefault("public_documents", True)
        r = weft.Replica.open(os.path.join(self.dir, name), **kw)
        self.addCleanup(r.close)
        return r


def exchange(src, dst, doc):
    """Copies the changes of `doc` that dst lacks from src; returns how many were applied."""
    token = dst.causal_token(doc) if dst.has_document(doc) else None
    return dst.apply_changes(doc, src.changes_since(doc, token))


class ValuesTest(ReplicaTestCase):
    def test_every_type_round_trips(self):
        r = self.open()
        with r.transaction("doc") as t:
            t["s"] = "héllo"
            t["i"] = -(1 << 62)
            t["f"] = 0.25
            t["b"] = True
            t["n"] = None
            t["bytes"] = b"\x00\xff"
            t.map("meta")["author"] = "ada"
            t.map("meta").map("deep")["x"] = 1
            t.counter("likes").add(5)
            t.counter("likes").add(-2)
            t.set("tags").add("a")
            t.set("tags").add(2)
            t.set("tags").remove("a")
            t.list("items").extend([1, "two", 3.0])
            t.list("items").insert(0, "zero")
            t.list("items").delete(1)
            t.text("body").insert(0, "hello world")
            t.text("body").delete(5, 6)
            t.text("body").append("!")
            t.lww("status").set("draft")
            t.register("color").set("red")
        self.assertEqual(t.result.changed, True)
        self.assertTrue(t.result.token.startswith("doc@"))
        self.assertEqual(t.result.change[0], r.actor_id)
        self.assertEqual(r.get("doc"), {
            "s": "héllo", "i": -(1 << 62), "f": 0.25, "b": True, "n": None, "bytes": b"\x00\xff",
            "meta": {"author": "ada", "deep": {"x": 1}}, "likes": 3, "tags": {2},
            "items": ["zero", "two", 3.0], "body": "hello!", "status": "draft", "color": "red",
        })
        self.assertEqual(r.get("doc", "meta", "deep", "x"), 1)
        self.assertEqual(r.get("doc", "items", 1), "two")
        self.assertEqual(r.get("doc", "body"), "hello!")
        self.assertEqual(r.read("doc", lambda v: v.keys("meta")), ["author", "deep"])
        self.assertIn('"s"', r.to_json("doc"))

    def test_lists_of_maps(self):
        r = self.open()
        with r.transaction("d") as t:
            t.list("rows").append("first")
            row = t.list("rows").insert_map(-1)
            row["name"] = "second"
        self.assertEqual(r.get("d", "rows"), ["first", {"name": "second"}])

    def test_live_transaction_reads_its_own_writes(self):
        r = self.open()

        def body(t):
            t["a"] = 1
            t.counter("c").add(2)
            return t.view.get()

        seen = []
        info = r.transact("d", lambda t: seen.append(body(t)))
        self.assertEqual(seen, [{"a": 1, "c": 2}])
        self.assertTrue(info.changed)
        info = r.transact("d", lambda t: None)
        self.assertFalse(info.changed)

    def test_documents(self):
        r = self.open()
        self.assertEqual(r.documents(), [])
        r.create_document("b")
        r.create_document("a")
        self.assertEqual(r.documents(), ["a", "b"])
        self.assertTrue(r.has_document("a"))
        self.assertIn("b", r)
        r.snapshot("a")
        r.delete_document("b")
        self.assertFalse(r.has_document("b"))
        with self.assertRaises(weft.NotFound) as cm:
            r.delete_document("b")
        self.assertEqual(cm.exception.code, 1)
        self.assertEqual(cm.exception.name, "NotFound")

    def test_reopen_keeps_state_and_node(self):
        path = os.path.join(self.dir, "keep.db")
        with weft.Replica.open(path, durability="full") as r:
            with r.transaction("d") as t:
                t["k"] = "v"
            node = r.node_id
        with weft.Replica.open(path, create=False) as r:
            self.assertEqual(r.get("d"), {"k": "v"})
            self.assertEqual(r.node_id, node)


class AtomicityTest(ReplicaTestCase):
    def test_an_exception_in_the_block_applies_nothing(self):
        r = self.open()
        with r.transaction("d") as t:
            t["keep"] = 1
        before = (r.get("d"), r.causal_token("d"))
        with self.assertRaises(RuntimeError):
            with r.transaction("d") as t:
                t["keep"] = 2
                t["new"] = 3
                raise RuntimeError("changed my mind")
        self.assertEqual((r.get("d"), r.causal_token("d")), before)

    def test_a_failed_write_aborts_the_whole_transaction(self):
        r = self.open()
        with r.transaction("d") as t:
            t.text("body").insert(0, "abc")
        before = (r.get("d"), r.causal_token("d"))
        with self.assertRaises(weft.TypeMismatch) as cm:
            with r.transaction("d") as t:
                t["other"] = 1
                t.text("body").insert(3, "def")
                t.counter("body").add(1)  # "body" is a text
        self.assertEqual(cm.exception.code, 9)
        self.assertIn("body", cm.exception.message)
        self.assertEqual((r.get("d"), r.causal_token("d")), before)
        with self.assertRaises(weft.OutOfRange):
            with r.transaction("d") as t:
                t.text("body").insert(99, "x")
        self.assertEqual((r.get("d"), r.causal_token("d")), before)

    def test_an_exception_in_a_live_transaction_propagates_and_applies_nothing(self):
        r = self.open()

        def body(t):
            t["x"] = 1
            raise KeyError("boom")

        with self.assertRaises(KeyError):
            r.transact("d", body)
        self.assertFalse(r.has_document("d"))


class ErrorsTest(ReplicaTestCase):
    def test_not_a_weft_file(self):
        path = os.path.join(self.dir, "garbage.db")
        with open(path, "wb") as f:
            f.write(b"G" * 4096)
        with self.assertRaises(weft.Corruption) as cm:
            weft.Replica.open(path)
        self.assertEqual(cm.exception.code, 3)
        self.assertTrue(cm.exception.message)

    def test_missing_file_without_create(self):
        with self.assertRaises(weft.WeftError):
            weft.Replica.open(os.path.join(self.dir, "missing.db"), create=False)
        self.assertFalse(os.path.exists(os.path.join(self.dir, "missing.db")))

    def test_bad_utf8_and_bad_values(self):
        r = self.open()
        with self.assertRaises(weft.InvalidArgument) as cm:
            r.create_document(b"bad\xff")
        self.assertEqual(cm.exception.code, 2)
        self.assertIn("UTF-8", cm.exception.message)
        with self.assertRaises(weft.InvalidArgument):
            r.create_document("lone \ud800 surrogate")
        with self.assertRaises(weft.InvalidArgument):
            with r.transaction("d") as t:
                t["k"] = "bad \udfff"
        with self.assertRaises(TypeError):
            with r.transaction("d") as t:
                t["k"] = object()
        with self.assertRaises(OverflowError):
            with r.transaction("d") as t:
                t["k"] = 1 << 64
        self.assertFalse(r.has_document("d"))

    def test_reads_of_missing_things(self):
        r = self.open()
        with self.assertRaises(weft.NotFound):
            r.get("absent")
        with r.transaction("d") as t:
            t["s"] = "x"
        with self.assertRaises(weft.NotFound):
            r.get("d", "nope")
        with self.assertRaises(weft.TypeMismatch):
            r.get("d", "s", "deeper")

    def test_closed_replica(self):
        r = weft.Replica.open(os.path.join(self.dir, "c.db"))
        r.close()
        r.close()  # twice is fine
        with self.assertRaises(weft.WeftError):
            r.documents()

    def test_error_codes_are_fixed(self):
        codes = {weft.NotFound: 1, weft.InvalidArgument: 2, weft.Corruption: 3,
                 weft.IOError_: 4, weft.Disconnected: 5, weft.PermissionDenied: 6,
                 weft.MissingDependency: 7, weft.OutOfRange: 8, weft.TypeMismatch: 9,
                 weft.UnsupportedVersion: 10, weft.ClockDrift: 11, weft.HistoryTruncated: 12,
                 weft.Timeout: 13, weft.Busy: 14, weft.Aborted: 15, weft.Internal: 16}
        for cls, code in codes.items():
            self.assertEqual(cls.code, code)
            self.assertTrue(issubclass(cls, weft.WeftError))


class ConflictsTest(ReplicaTestCase):
    def test_register_siblings_and_resolution(self):
        a, b = self.open("a.db"), self.open("b.db")
        with a.transaction("d") as t:
            t.register("color").set("white")
            t.lww("status").set("draft")
        exchange(a, b, "d")
        with a.transaction("d") as t:
            t.register("color").set("red")
            t.lww("status").set("review")
            t["title"] = "A"
        with b.transaction("d") as t:
            t.register("color").set("blue")
            t.lww("status").set("final")
            t["title"] = "B"
        self.assertEqual(exchange(a, b, "d"), 1)
        self.assertEqual(exchange(b, a, "d"), 1)
        self.assertEqual(exchange(b, a, "d"), 0)
        for r in (a, b):
            color = r.get("d", "color")
            self.assertIsInstance(color, weft.Conflict)
            self.assertEqual(sorted(color), ["blue", "red"])
            self.assertEqual(sorted(r.read("d", lambda v: v.siblings("title"))), ["A", "B"])
        # LWW: one winner, the same on both, and the overwritten value is kept for inspection.
        wa, wb = a.read("d", lambda v: v.lww("status")), b.read("d", lambda v: v.lww("status"))
        self.assertEqual(wa, wb)
        self.assertEqual(sorted([wa[0]] + wa[1]), ["final", "review"])
        self.assertEqual(a.get("d", "status"), wa[0])

        a.transact("d", lambda t: t.register("color").resolve("purple"))
        exchange(a, b, "d")
        self.assertEqual(a.get("d", "color"), "purple")
        self.assertEqual(b.get("d", "color"), "purple")
        self.assertEqual(a.get("d"), b.get("d"))

    def test_resolve_on_write(self):
        x, y = self.open("x.db"), self.open("y.db")
        calls = []

        def longest(doc, key, siblings):
            calls.append((doc, key, sorted(siblings)))
            return max(siblings, key=len)

        y.set_conflict_resolver(longest, doc="d")
        with x.transaction("d") as t:
            t["k"] = "apple"
        with y.transaction("d") as t:
            t["k"] = "fig"
        exchange(x, y, "d")
        self.assertEqual(calls, [("d", "k", ["apple", "fig"])])
        self.assertEqual(y.get("d", "k"), "apple")
        exchange(y, x, "d")
        self.assertEqual(x.get("d"), y.get("d"))
        y.set_conflict_resolver(None, doc="d")
        with x.transaction("d") as t:
            t["k"] = "kiwi"
        with y.transaction("d") as t:
            t["k"] = "lime"
        exchange(x, y, "d")
        self.assertEqual(len(calls), 1)
        self.assertIsInstance(y.get("d", "k"), weft.Conflict)

    def test_bad_remote_changes_change_nothing(self):
        a, b = self.open("a.db"), self.open("b.db")
        with a.transaction("d") as t:
            t["x"] = 1
        with a.transaction("d") as t:
            t["x"] = 2
        with self.assertRaises(weft.Corruption):
            b.apply_changes("d", [b"\x01\x02\x03"])
        second = a.changes_since("d")[1]
        with self.assertRaises(weft.MissingDependency):
            b.apply_changes("d", [second])
        self.assertFalse(b.has_document("d"))
        self.assertEqual(b.apply_changes("d", a.changes_since("d")), 2)
        self.assertEqual(b.get("d"), {"x": 2})


class IdentityTest(ReplicaTestCase):
    def test_public_key_is_stable_and_owner_only(self):
        r = self.open("a.db")
        key = r.public_key
        self.assertRegex(key, r"^[0-9a-f]{64}$")
        r.close()
        self.assertEqual(self.open("a.db").public_key, key)
        self.assertNotEqual(self.open("b.db").public_key, key)
        self.assertEqual(os.stat(os.path.join(self.dir, "a.db")).st_mode & 0o777, 0o600)


class EncryptedDocumentTest(ReplicaTestCase):
    def test_members_read_a_replica_without_the_key_is_told_why(self):
        owner = self.open("owner.db", public_documents=False)
        reader = self.open("reader.db", public_documents=False)
        other = self.open("other.db", public_documents=False)
        owner.create_encrypted_document("vault")
        with self.assertRaises(weft.InvalidArgument):
            owner.create_encrypted_document("vault")
        with owner.transaction("vault") as t:
            t["secret"] = "PY-E2E-MARKER-1f4c"
        owner.grant("vault", reader.public_key, "reader")
        self.assertEqual(owner.encryption("vault"),
                         {"encrypted": True, "epoch": 1, "has_key": True, "missing_epochs": []})
        changes = owner.changes_since("vault")
        self.assertFalse(any(b"PY-E2E-MARKER" in c for c in changes))
        reader.apply_changes("vault", changes)
        self.assertEqual(reader.get("vault", "secret"), "PY-E2E-MARKER-1f4c")
        other.apply_changes("vault", changes)
        self.assertEqual(other.encryption("vault")["missing_epochs"], [0])
        with self.assertRaises(weft.PermissionDenied):
            other.get("vault")


class TimeTravelTest(ReplicaTestCase):
    def test_read_diff_and_history(self):
        r = self.open()
        with r.transaction("d") as t:
            t["k"] = "one"
        first = r.causal_token("d")
        with r.transaction("d") as t:
            t.counter("n").add(2)
        with r.transaction("d") as t:
            t["k"] = "three"
        self.assertEqual(r.get_at("d", first), {"k": "one"})
        self.assertEqual(r.get_at("d", first, "k"), "one")
        self.assertEqual(r.get_at("d", None), {})
        self.assertEqual(r.get("d"), {"k": "three", "n": 2})  # the live document is untouched
        history = r.history("d")
        self.assertEqual(len(history), 3)
        self.assertEqual(history[0].token, first)
        self.assertEqual(history[-1].token, r.causal_token("d"))
        self.assertTrue(all(e.time_ms > 0 and e.ops >= 1 for e in history))
        self.assertEqual(r.get_at("d", history[1].token), {"k": "one", "n": 2})
        patches = r.diff("d", first, history[-1].token)
        self.assertIn(2, [p.delta for p in patches if p.type == "counter"])
        self.assertIn("k", [p.key for p in patches if p.type == "map_key"])
        self.assertEqual(r.diff("d", first, first), [])
        with self.assertRaises(weft.InvalidArgument):
            r.diff("d", history[-1].token, first)  # patches only go forward
        with self.assertRaises(weft.InvalidArgument):
            r.get_at("d", "other@")
        with self.assertRaises(weft.NotFound):
            r.get_at("d", "d@00000000000000ff.3")
        with self.assertRaises(weft.NotFound):
            r.history("absent")


class FeedAndTokensTest(ReplicaTestCase):
    def test_change_feed(self):
        a, b = self.open("a.db"), self.open("b.db")
        events, only_d = [], []
        with b.subscribe(events.append) as sub, b.subscribe(only_d.append, doc="other"):
            with b.transaction("d") as t:
                t.counter("n").add(3)
                t["k"] = "v"
            self.assertEqual(len(events), 1)
            e = events[0]
            self.assertEqual((e.doc, e.local), ("d", True))
            self.assertEqual(e.change[0], b.actor_id)
            self.assertIn(3, [p.delta for p in e.patches if p.type == "counter"])
            self.assertIn("k", [p.key for p in e.patches if p.type == "map_key"])
            with self.assertRaises(ValueError):
                with b.transaction("d") as t:
                    t["k"] = "no"
                    raise ValueError()
            self.assertEqual(len(events), 1)  # aborted: nothing reported
            with a.transaction("d") as t:
                t.text("body").insert(0, "hi")
            exchange(a, b, "d")
            self.assertEqual(len(events), 2)
            self.assertFalse(events[1].local)
            self.assertEqual([p.text for p in events[1].patches if p.type == "insert"], ["hi"])
            self.assertEqual(only_d, [])
        self.assertIsNone(sub._ptr)
        with b.transaction("d") as t:
            t["k"] = "after"
        self.assertEqual(len(events), 2)

    def test_a_callback_runs_on_the_committing_thread_and_may_read(self):
        r = self.open()
        seen = []
        r.subscribe(lambda e: seen.append((threading.get_ident(), r.get(e.doc, "k"))))
        result = []
        th = threading.Thread(target=lambda: result.append(r.transact(
            "d", lambda t: t.put("k", 1))))
        th.start()
        th.join()
        self.assertEqual(seen, [(th.ident, 1)])

    def test_causal_tokens(self):
        a, b = self.open("a.db"), self.open("b.db")
        with a.transaction("d") as t:
            t["x"] = 1
        token = a.causal_token("d")
        self.assertTrue(a.satisfies(token))
        self.assertFalse(b.satisfies(token))
        with self.assertRaises(weft.Timeout) as cm:
            b.wait_for(token, timeout=0.02)
        self.assertEqual(cm.exception.code, 13)
        exchange(a, b, "d")
        self.assertTrue(b.satisfies(token))
        b.wait_for(token, timeout=1)
        with self.assertRaises(weft.InvalidArgument):
            b.satisfies("not a token")


if __name__ == "__main__":
    unittest.main()
