"""`weft-relay --log-format json|text`: a line per event on stderr, each line one JSON object with
time, level, event and the session's identifiers and counts, and never a document's content,
an admission token or a key's secret. WEFT_BIN and WEFT_RELAY_BIN name the binaries."""

import json
import os
import re
import sqlite3
import subprocess
import tempfile
import unittest

from weft_process import RELAY, RelayProcess, weft

SECRET = "correct-horse-battery-staple-7f3a"  # a value written into a document


class LogTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def session(self, *flags):
        """A relay with `flags`; a owns a document holding SECRET, grants b, both sync, and a
        stranger is refused for lack of an admission token. Returns the relay's stderr lines and
        the things that must not appear in them."""
        issuer = os.path.join(self.tmp, "issuer.db")
        issuer_key = weft(issuer, "id").stdout.strip()
        a, b = os.path.join(self.tmp, "a.db"), os.path.join(self.tmp, "b.db")
        relay = RelayProcess(os.path.join(self.tmp, "relay"), "--admission-key", issuer_key,
                             *flags)
        try:
            tokens = {}
            for db in (a, b):
                key = weft(db, "id").stdout.strip()
                tokens[db] = weft(issuer, "issue-token", key, "--ttl", "600").stdout.strip()
            self.assertEqual(weft(a, "set", "diary", "entry", json.dumps(SECRET)).returncode, 0)
            self.assertEqual(weft(a, "text-insert", "diary", "body", "0", SECRET).returncode, 0)
            self.assertEqual(weft(a, "grant", "diary", weft(b, "id").stdout.strip(), "reader")
                             .returncode, 0)
            for db in (a, b):
                p = weft(db, "sync", relay.url, "--token", tokens[db], "--timeout", "30")
                self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn(SECRET, weft(b, "get", "diary").stdout)
            stranger = weft(os.path.join(self.tmp, "c.db"), "sync", relay.url, "--timeout", "3")
            self.assertNotEqual(stranger.returncode, 0)
        finally:
            err = relay.stop()
        # The relay's data: its secret key must not be logged either.
        with sqlite3.connect(os.path.join(self.tmp, "relay/weft-relay.db")) as db:
            row = db.execute("SELECT hex(value) FROM meta WHERE key = 'device_secret_key'")
            secret_key = (row.fetchone() or [""])[0].lower()
        forbidden = [SECRET, tokens[a], tokens[b]] + ([secret_key] if secret_key else [])
        return [line for line in err.splitlines() if line.strip()], forbidden

    def test_json_lines(self):
        lines, forbidden = self.session("--log-format", "json")
        events = []
        for line in lines:
            if line.startswith("weft-relay: "):  # the shutdown notes, not events
                continue
            e = json.loads(line)  # every event line is one JSON object
            for field in ("time", "level", "event", "counts"):
                self.assertIn(field, e, line)
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(e["level"], ("info", "warn", "error"))
            self.assertIsInstance(e["counts"], dict)
            events.append(e)
        for bad in forbidden:
            self.assertNotIn(bad, "\n".join(lines))
        names = [e["event"] for e in events]
        self.assertEqual(names[0], "relay.start")
        self.assertEqual(names[-1], "relay.stop")
        opened = [e for e in events if e["event"] == "session.open"]
        self.assertEqual(len(opened), 2)  # a and b; the stranger was refused
        for e in opened:
            self.assertEqual(e["peer"], "device")
            self.assertRegex(e["node"], r"^[0-9a-f]{16}$")
            self.assertGreater(e["session"], 0)
        refused = [e for e in events if e["event"] == "session.refused"]
        self.assertGreaterEqual(len(refused), 1)  # the stranger retries until its timeout
        for e in refused:
            self.assertEqual(e["level"], "warn")
            self.assertIn("admission token", e["error"])
        received = [e for e in events if e["event"] == "changes.received"]
        self.assertTrue(received)
        self.assertEqual({e["document"] for e in received}, {"diary"})
        self.assertEqual(sum(e["counts"]["changes"] for e in received), 3)  # set, insert, grant
        closed = [e for e in events if e["event"] == "session.close"]
        self.assertEqual(len(closed), 2 + len(refused))
        # Every session's close carries its number and its counts.
        by_session = {e["session"]: e for e in closed}
        a_session = opened[0]["session"]
        self.assertEqual(by_session[a_session]["counts"]["changes_received"], 3)
        b_session = opened[1]["session"]
        self.assertEqual(by_session[b_session]["counts"]["changes_sent"], 3)

    def test_text_lines(self):
        lines, forbidden = self.session("--log-format", "text")
        events = [l for l in lines if not l.startswith("weft-relay: ")]
        for line in events:
            self.assertRegex(line, r"^\d{4}-\d\d-\d\dT\S+Z (info|warn|error) [a-z]+\.[a-z]+")
        self.assertTrue(any(" session.open session=" in l for l in events))
        self.assertTrue(any(re.search(r" changes\.received .*document=diary changes=\d", l)
                            for l in events))
        for bad in forbidden:
            self.assertNotIn(bad, "\n".join(lines))

    def test_no_events_by_default(self):
        lines, _ = self.session()
        self.assertEqual([l for l in lines if not l.startswith("weft-relay: ")], [])

    def test_bad_format_is_refused(self):
        p = subprocess.run([RELAY, "--log-format", "xml"], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("log-format takes none, text or json", p.stderr)


if __name__ == "__main__":
    unittest.main()
