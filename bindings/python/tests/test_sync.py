"""The weft Python package syncing through a weft-relay process that each test starts on a free
loopback port (port 0) and stops: offline edits converge, status and lag, acks, presence, and
the README's example script."""

import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import weft
from weft.relay import RelayProcess

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "examples", "two_replicas.py")


class SyncTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name
        self.relay = RelayProcess(os.path.join(self.dir, "relay")).start()

    def tearDown(self):
        self.relay.stop()
        self._tmp.cleanup()

    def open(self, name, public=True):
        r = weft.Replica.open(os.path.join(self.dir, name), public_documents=public)
        self.addCleanup(r.close)
        return r

    def test_offline_edits_converge_through_the_relay(self):
        a, b = self.open("a.db"), self.open("b.db")
        url = self.relay.url
        # Offline, on both sides.
        with a.transaction("notes") as t:
            t["title"] = "from a"
            t.text("body").insert(0, "hello")
        with b.transaction("notes") as t:
            t.counter("views").add(2)
        with b.transaction("other") as t:
            t["only"] = "b"

        events = []
        a.subscribe(lambda e: events.append((e.doc, e.local, threading.get_ident())))
        with a.sync(backoff_ms=(50, 500), seed=1) as sa, b.sync() as sb:
            sa.add_peer(url)
            sb.add_peer(url)
            summary = sa.wait_until_synced(url, timeout=20)
            self.assertGreaterEqual(summary["changes_sent"], 1)
            sb.wait_until_synced(url, timeout=20)
            a.wait_for(b.causal_token("notes"), timeout=20)
            b.wait_for(a.causal_token("notes"), timeout=20)
            a.wait_for(b.causal_token("other"), timeout=20)
            self.assertEqual(a.get("notes"), b.get("notes"))
            self.assertEqual(a.get("notes"), {"title": "from a", "body": "hello", "views": 2})
            self.assertEqual(a.get("other"), {"only": "b"})

            # Remote changes reached a's change feed on the sync client's network thread.
            remote = [e for e in events if not e[1]]
            self.assertTrue(remote)
            self.assertNotEqual(remote[0][2], threading.get_ident())

            # A live edit on b reaches a; the relay acknowledges it durably.
            with b.transaction("notes") as t:
                t.text("body").append(" world")
            sb.wait_for_ack("notes", t.result.token, timeout=20, url=url)
            sb.wait_for_ack("notes", t.result.token, timeout=20)
            sb.wait_for_ack("notes", t.result.token, timeout=20, quorum=1)
            with self.assertRaises(weft.WeftError) as e:
                sb.wait_for_ack("notes", t.result.token, timeout=1, quorum=2)
            self.assertIn("a quorum of 2 of 1 peers", str(e.exception))
            with self.assertRaises(ValueError):
                sb.wait_for_ack("notes", t.result.token, url=url, quorum=1)
            a.wait_for(t.result.token, timeout=20)
            self.assertEqual(a.get("notes", "body"), "hello world")

            # Status and lag.
            sb.wait_until_synced(url, timeout=20)
            peers = sb.peers()
            self.assertEqual(len(peers), 1)
            p = peers[0]
            self.assertEqual((p.url, p.state, p.peer_is_relay), (url, "connected", True))
            self.assertIsNotNone(p.peer_node)
            self.assertGreaterEqual(p.changes_sent, 2)
            docs = {d.doc: d for d in p.documents}
            self.assertEqual(set(docs), {"notes", "other"})
            self.assertTrue(docs["notes"].live)
            self.assertGreaterEqual(docs["notes"].acknowledged_operations, 1)
            self.assertEqual(docs["other"].behind_operations, 0)

            with self.assertRaises(weft.InvalidArgument):
                sa.add_peer("http://example.com")
            with self.assertRaises(weft.NotFound):
                sa.wait_until_synced("ws://127.0.0.1:1", timeout=0.1)
            sa.remove_peer(url)
            with self.assertRaises(weft.NotFound):
                sa.remove_peer(url)

    def test_presence(self):
        a, b = self.open("a.db"), self.open("b.db")
        with a.transaction("d") as t:
            t["x"] = 1
        heard = []
        got = threading.Event()

        def on_presence(doc, node, payload):
            heard.append((doc, node, payload))
            got.set()

        with a.sync(["d"]) as sa, b.sync(["d"]) as sb:
            sb.on_presence(on_presence)
            sa.add_peer(self.relay.url)
            sb.add_peer(self.relay.url)
            sa.wait_until_synced(self.relay.url, timeout=20)
            sb.wait_until_synced(self.relay.url, timeout=20)
            deadline = time.monotonic() + 20
            while not got.is_set() and time.monotonic() < deadline:
                sa.publish_presence("d", b'{"cursor": 4}')
                got.wait(0.05)
            self.assertTrue(heard)
            self.assertEqual(heard[0], ("d", a.node_id, b'{"cursor": 4}'))
            sb.on_presence(None)

    def test_sync_once_and_timeout(self):
        a, c = self.open("a.db"), self.open("c.db")
        with a.transaction("d") as t:
            t["x"] = "y"
        weft.sync_once(a, self.relay.url, "d", timeout=20)
        summary = weft.sync_once(c, self.relay.url, timeout=20)
        self.assertGreaterEqual(summary["changes_received"], 1)
        self.assertEqual(c.get("d"), {"x": "y"})
        url = self.relay.url
        self.relay.stop()
        with self.assertRaises(weft.Timeout) as cm:
            weft.sync_once(c, url, "d", timeout=0.3)
        self.assertEqual(cm.exception.code, 13)

    def test_access_lists_through_the_relay(self):
        owner = self.open("owner.db", public=False)
        reader = self.open("reader.db", public=False)
        stranger = self.open("stranger.db", public=False)
        url = self.relay.url
        with owner.transaction("diary") as t:
            t["entry"] = "my secret"
        owner.grant("diary", reader.public_key, "reader")
        self.assertEqual(owner.members("diary"),
                         {owner.public_key: "owner", reader.public_key: "reader"})
        weft.sync_once(owner, url, timeout=20)
        # A device with no role gets nothing of it.
        weft.sync_once(stranger, url, timeout=20)
        self.assertFalse(stranger.has_document("diary"))
        # A reader reads it, and cannot write it.
        weft.sync_once(reader, url, timeout=20)
        self.assertEqual(reader.get("diary"), {"entry": "my secret"})
        with self.assertRaises(weft.PermissionDenied):
            with reader.transaction("diary") as t:
                t["entry"] = "defaced"
        # Revoked: the relay no longer serves it the document's new changes.
        owner.revoke("diary", reader.public_key)
        with owner.transaction("diary") as t:
            t["entry"] = "after the revoke"
        weft.sync_once(owner, url, timeout=20)
        with self.assertRaises(weft.PermissionDenied):
            weft.sync_once(reader, url, "diary", timeout=20)
        self.assertEqual(reader.get("diary"), {"entry": "my secret"})

    def test_the_readme_example(self):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.path.join(HERE, "..") + os.pathsep + env.get("PYTHONPATH", "")
        out = subprocess.run([sys.executable, EXAMPLE], env=env, capture_output=True, text=True,
                             timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("converged", out.stdout)


if __name__ == "__main__":
    unittest.main()
