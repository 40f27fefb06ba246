"""The `weft` tool as a user runs it: writes, then time travel (token, get --at, history), and
clear errors for bad tokens. WEFT_BIN names the binary."""

import json
import os
import subprocess
import tempfile
import unittest

from weft_process import RELAY, WEFT, RelayProcess


class CliTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.db = os.path.join(self._tmp.name, "x.db")

    def tearDown(self):
        self._tmp.cleanup()

    def weft(self, *args, ok=True):
        p = subprocess.run([WEFT, "--db", self.db, *args], capture_output=True, text=True,
                           timeout=60)
        if ok:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def test_time_travel(self):
        self.weft("set", "doc", "a", "1")
        self.weft("incr", "doc", "n", "2")
        token = self.weft("token", "doc").stdout.strip()
        self.assertTrue(token.startswith("doc@"), token)
        self.weft("set", "doc", "a", '"later"')
        self.assertEqual(json.loads(self.weft("get", "doc", "--at", token).stdout),
                         {"a": 1, "n": 2})
        self.assertEqual(self.weft("get", "doc", "a", "--at", token).stdout.strip(), "1")
        self.assertEqual(json.loads(self.weft("get", "doc").stdout), {"a": "later", "n": 2})
        lines = [json.loads(line) for line in self.weft("history", "doc").stdout.splitlines()]
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[1]["token"], token)
        self.assertEqual(lines[-1]["token"], self.weft("token", "doc").stdout.strip())
        for e in lines:
            self.assertEqual(len(e["author"]), 16)
            self.assertGreater(e["time_ms"], 0)
        self.assertEqual(json.loads(self.weft("get", "doc", "--at", lines[0]["token"]).stdout),
                         {"a": 1})

    def test_opens_share_one_author(self):
        for _ in range(20):
            self.weft("incr", "doc", "n", "1")
        info = json.loads(self.weft("info").stdout)
        self.assertEqual(len(info["documents"]["doc"]), 1)  # one vector entry for 20 runs
        self.assertEqual(json.loads(self.weft("get", "doc").stdout), {"n": 20})

    def test_id_is_the_device_key(self):
        key = self.weft("id").stdout.strip()
        self.assertRegex(key, r"^[0-9a-f]{64}$")
        self.assertEqual(self.weft("id").stdout.strip(), key)  # the same on every run
        self.assertEqual(os.stat(self.db).st_mode & 0o777, 0o600)
        other = os.path.join(self._tmp.name, "y.db")
        p = subprocess.run([WEFT, "--db", other, "id"], capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.stdout.strip(), key)

    def test_relay_prints_its_key(self):
        data = os.path.join(self._tmp.name, "relay")
        run = lambda: subprocess.run([RELAY, "--data", data, "--print-key"], capture_output=True,
                                     text=True, timeout=60)
        first = run()
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertRegex(first.stdout.strip(), r"^[0-9a-f]{64}$")
        self.assertEqual(run().stdout, first.stdout)

    def test_bad_tokens_fail_clearly(self):
        self.weft("set", "doc", "a", "1")
        for token, message in [("doc@zz", "bad token"), ("other@", "of document \"other\""),
                               ("doc@00000000000000ff.9", "does not hold")]:
            p = self.weft("get", "doc", "--at", token, ok=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(message, p.stderr)
        p = self.weft("get", "doc", "--at", ok=False)
        self.assertIn("--at needs a causal token", p.stderr)
        p = self.weft("history", "absent", ok=False)
        self.assertNotEqual(p.returncode, 0)


    def test_relay_admits_only_devices_with_a_token(self):
        issuer = os.path.join(self._tmp.name, "issuer.db")
        issuer_key = subprocess.run([WEFT, "--db", issuer, "id"], capture_output=True,
                                    text=True, timeout=60).stdout.strip()
        relay = RelayProcess(os.path.join(self._tmp.name, "relay"), "--admission-key",
                             issuer_key)
        try:
            self.assertIn("secure mode", relay.banner[1])
            self.assertIn("admission token is required", relay.banner[1])
            self.weft("set", "doc", "a", "1")
            p = self.weft("sync", relay.url, "--timeout", "5", ok=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("admission token", p.stderr)
            device = self.weft("id").stdout.strip()
            token = subprocess.run([WEFT, "--db", issuer, "issue-token", device, "--ttl", "600"],
                                   capture_output=True, text=True, timeout=60)
            self.assertEqual(token.returncode, 0, token.stderr)
            self.assertRegex(token.stdout.strip(), r"^[0-9a-f]{144}$")
            self.weft("sync", relay.url, "--token", token.stdout.strip(), "--timeout", "20")
            # The token is bound to the device: another database cannot use it.
            other = os.path.join(self._tmp.name, "other.db")
            p = subprocess.run([WEFT, "--db", other, "sync", relay.url, "--token",
                                token.stdout.strip(), "--timeout", "5"], capture_output=True,
                               text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("admission token", p.stderr)
        finally:
            relay.stop()

    def test_a_private_document_reaches_only_its_members(self):
        relay = RelayProcess(os.path.join(self._tmp.name, "relay"))
        db = lambda name: os.path.join(self._tmp.name, name)
        run = lambda name, *a: subprocess.run([WEFT, "--db", db(name), *a], capture_output=True,
                                              text=True, timeout=60)
        try:
            self.assertIn("secure mode", relay.banner[1])
            self.assertEqual(run("alice.db", "set", "private-diary", "entry", '"my secret"')
                             .returncode, 0)
            alice = run("alice.db", "id").stdout.strip()
            self.assertEqual(json.loads(run("alice.db", "members", "private-diary").stdout),
                             {alice: "owner"})
            self.assertEqual(run("alice.db", "sync", relay.url).returncode, 0)
            # A stranger gets nothing, and its own "private-diary" cannot replace Alice's.
            self.assertEqual(run("mallory.db", "sync", relay.url).returncode, 0)
            self.assertNotEqual(run("mallory.db", "get", "private-diary").returncode, 0)
            run("mallory.db", "set", "private-diary", "entry", '"defaced"')
            p = run("mallory.db", "sync", relay.url, "--timeout", "10")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("permission denied", p.stderr)
            # A reader reads and cannot write; a writer writes.
            bob = run("bob.db", "id").stdout.strip()
            carol = run("carol.db", "id").stdout.strip()
            self.assertEqual(run("alice.db", "grant", "private-diary", bob, "reader").returncode, 0)
            self.assertEqual(run("alice.db", "grant", "private-diary", carol, "writer").returncode,
                             0)
            self.assertEqual(json.loads(run("alice.db", "members", "private-diary").stdout),
                             {alice: "owner", bob: "reader", carol: "writer"})
            self.assertEqual(run("alice.db", "sync", relay.url).returncode, 0)
            self.assertEqual(run("bob.db", "sync", relay.url).returncode, 0)
            self.assertEqual(json.loads(run("bob.db", "get", "private-diary").stdout),
                             {"entry": "my secret"})
            p = run("bob.db", "set", "private-diary", "entry", '"defaced"')
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("reader", p.stderr)
            self.assertEqual(run("carol.db", "sync", relay.url).returncode, 0)
            self.assertEqual(run("carol.db", "set", "private-diary", "note", '"from carol"')
                             .returncode, 0)
            self.assertEqual(run("carol.db", "sync", relay.url).returncode, 0)
            self.assertEqual(run("alice.db", "sync", relay.url).returncode, 0)
            self.assertEqual(json.loads(run("alice.db", "get", "private-diary").stdout),
                             {"entry": "my secret", "note": "from carol"})
            self.assertNotEqual(run("mallory.db", "get", "private-diary", "entry").stdout.strip(),
                                '"my secret"')
        finally:
            relay.stop()

    def test_an_encrypted_document_through_the_relay(self):
        relay_dir = os.path.join(self._tmp.name, "relay")
        relay = RelayProcess(relay_dir)
        db = lambda name: os.path.join(self._tmp.name, name)
        run = lambda name, *a: subprocess.run([WEFT, "--db", db(name), *a], capture_output=True,
                                              text=True, timeout=60)
        marker = "CLI-E2E-MARKER-6d0b2e"
        try:
            self.assertEqual(run("alice.db", "create", "vault", "--e2e").returncode, 0)
            p = run("alice.db", "create", "vault", "--e2e")
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("exists", p.stderr)
            self.assertEqual(run("alice.db", "set", "vault", "entry", json.dumps(marker))
                             .returncode, 0)
            bob = run("bob.db", "id").stdout.strip()
            self.assertEqual(run("alice.db", "grant", "vault", bob, "reader").returncode, 0)
            self.assertEqual(json.loads(run("alice.db", "encryption", "vault").stdout),
                             {"encrypted": True, "epoch": 1, "has_key": True,
                              "missing_epochs": []})
            self.assertEqual(run("alice.db", "sync", relay.url).returncode, 0)
            self.assertEqual(run("bob.db", "sync", relay.url).returncode, 0)
            self.assertEqual(json.loads(run("bob.db", "get", "vault").stdout), {"entry": marker})
            for root, _, files in os.walk(relay_dir):
                for f in files:
                    with open(os.path.join(root, f), "rb") as fh:
                        self.assertNotIn(marker.encode(), fh.read(), f)
        finally:
            relay.stop()

    def test_concurrent_incr_on_a_missing_key_sums(self):
        """Two devices each `incr` a key that does not exist yet, offline; synced through a relay,
        both print the sum (one counter, not a conflict of two)."""
        relay = RelayProcess(os.path.join(self._tmp.name, "relay"))
        db = lambda name: os.path.join(self._tmp.name, name)
        run = lambda name, *a: subprocess.run([WEFT, "--db", db(name), *a], capture_output=True,
                                              text=True, timeout=60)
        try:
            # a makes the document and lets b write it; both hold it before going offline.
            self.assertEqual(run("a.db", "set", "doc", "title", '"shared"').returncode, 0)
            b = run("b.db", "id").stdout.strip()
            self.assertEqual(run("a.db", "grant", "doc", b, "writer").returncode, 0)
            self.assertEqual(run("a.db", "sync", relay.url).returncode, 0)
            self.assertEqual(run("b.db", "sync", relay.url).returncode, 0)
            self.assertNotEqual(run("b.db", "get", "doc", "n").returncode, 0)  # no "n" yet
            # Concurrent creations of the counter at "n".
            self.assertEqual(run("a.db", "incr", "doc", "n", "2").returncode, 0)
            self.assertEqual(run("b.db", "incr", "doc", "n", "5").returncode, 0)
            for name in ("a.db", "b.db", "a.db"):
                p = run(name, "sync", relay.url)
                self.assertEqual(p.returncode, 0, p.stderr)
            for name in ("a.db", "b.db"):
                p = run(name, "get", "doc", "n")
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(json.loads(p.stdout), 7)
                self.assertEqual(json.loads(run(name, "get", "doc").stdout),
                                 {"title": "shared", "n": 7})
            # Both keep counting into the one counter.
            self.assertEqual(run("b.db", "incr", "doc", "n", "-1").returncode, 0)
            self.assertEqual(run("b.db", "sync", relay.url).returncode, 0)
            self.assertEqual(run("a.db", "sync", relay.url).returncode, 0)
            self.assertEqual(json.loads(run("a.db", "get", "doc", "n").stdout), 6)
        finally:
            relay.stop()

    def test_sync_with_a_quorum_of_relays(self):
        """`sync URL URL URL --quorum 2`: exits 0 with one relay down, fails clearly with two
        down; without --quorum every relay is needed."""
        relays = [RelayProcess(os.path.join(self._tmp.name, "relay%d" % i)) for i in range(3)]
        urls = [r.url for r in relays]
        try:
            self.weft("set", "doc", "a", "1")
            readers = [os.path.join(self._tmp.name, "n%d.db" % i) for i in range(2)]
            for other in readers:
                key = subprocess.run([WEFT, "--db", other, "id"], capture_output=True, text=True,
                                     timeout=60).stdout.strip()
                self.weft("grant", "doc", key, "reader")
            relays[2].stop()
            p = self.weft("sync", *urls, "--quorum", "2", "--timeout", "20")
            self.assertIn("with 2 of 3 relays", p.stdout)
            # Each of the two relays up holds the change: a new device gets it from either.
            for i, other in enumerate(readers):
                q = subprocess.run([WEFT, "--db", other, "sync", urls[i]], capture_output=True,
                                   text=True, timeout=60)
                self.assertEqual(q.returncode, 0, q.stderr)
                q = subprocess.run([WEFT, "--db", other, "get", "doc", "a"], capture_output=True,
                                   text=True, timeout=60)
                self.assertEqual(q.stdout.strip(), "1")
            p = self.weft("sync", *urls, "--timeout", "2", ok=False)  # all three by default
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("2 of 3 peers synced, 3 needed", p.stderr)
            relays[1].stop()
            p = self.weft("sync", *urls, "--quorum", "2", "--timeout", "2", ok=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("1 of 3 peers synced, 2 needed", p.stderr)
            self.assertIn(urls[1], p.stderr)
            self.assertIn(urls[2], p.stderr)
            p = self.weft("sync", *urls, "--quorum", "4", ok=False)
            self.assertIn("more than the 3 relay URL(s)", p.stderr)
            p = self.weft("sync", *urls, "--quorum", "0", ok=False)
            self.assertIn("--quorum takes a number of relays", p.stderr)
        finally:
            for r in relays:
                if not r.proc.stderr.closed:
                    r.stop()

    def test_open_relay_warns(self):
        relay = RelayProcess(os.path.join(self._tmp.name, "relay"), "--open")
        try:
            self.assertIn("WARNING", relay.banner[1])
            self.assertIn("--open", relay.banner[1])
        finally:
            relay.stop()


if __name__ == "__main__":
    unittest.main()
