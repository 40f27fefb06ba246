"""The `weft` tool as a user runs it: writes, then time travel (token, get --at, history), and
clear errors for bad tokens. WEFT_BIN names the binary."""

import json
import os
import subprocess
import tempfile
import unittest

WEFT = os.environ.get("WEFT_BIN", "weft")
RELAY = os.environ.get("WEFT_RELAY_BIN", "weft-relay")


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


if __name__ == "__main__":
    unittest.main()
