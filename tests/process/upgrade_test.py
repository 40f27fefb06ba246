"""Upgrades from the previous release, with fixtures it wrote (tests/fixtures/upgrade/, whose
README.md says how they were made): this release's `weft` opens a device's store of the previous
storage schema (4), migrates it and reads every document as the previous release read it, and
the migrated device syncs with a relay of this release; a relay of this release answers the
recorded opening of a device of the previous sync protocol (2) with an unsupportedVersion error
that the old device's own schema decodes, and stores nothing from it."""

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import unittest

from weft_process import RelayProcess, weft
from ws_client import BINARY, CLOSE, WebSocket

SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIXTURES = os.path.join(SOURCE, "tests", "fixtures", "upgrade")
STORE = os.path.join(FIXTURES, "store-v4", "device.db")
EXPECTED = os.path.join(FIXTURES, "store-v4", "expected.json")
SESSION = os.path.join(FIXTURES, "protocol-v2")
SCHEMA = os.path.join(SOURCE, "sdk", "proto", "weft.capnp")
OLD_SCHEMA = os.path.join(SESSION, "weft-v2.capnp")
CAPNP = shutil.which("capnp") or "/usr/bin/capnp"


def schema_version(path):
    # Read-only and immutable: never a write, a journal or a WAL beside the file.
    db = sqlite3.connect("file:%s?mode=ro&immutable=1" % path, uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        return int(row[0])
    finally:
        db.close()


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def capnp_decode(schema, data):
    """A Cap'n Proto message as text, decoded as a weft Message by the capnp tool with `schema`
    (raises if the bytes are not one)."""
    p = subprocess.run([CAPNP, "decode", schema, "Message"], input=data, capture_output=True,
                       timeout=60)
    if p.returncode != 0:
        raise AssertionError("capnp decode failed: %s" % p.stderr.decode(errors="replace"))
    return p.stdout.decode()


class StoreUpgradeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weft-upgrade-")
        self.db = os.path.join(self.tmp, "device.db")
        shutil.copyfile(STORE, self.db)
        with open(EXPECTED) as f:
            self.expected = json.load(f)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_the_fixture_is_of_the_previous_schema(self):
        self.assertEqual(schema_version(STORE), 4)
        self.assertGreaterEqual(len(self.expected["documents"]), 4)

    def test_this_release_reads_every_document(self):
        before = digest(STORE)
        for doc, want in self.expected["documents"].items():
            p = weft(self.db, "get", doc)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout), want["get"], doc)
            p = weft(self.db, "members", doc)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(p.stdout), want["members"], doc)
            p = weft(self.db, "log", doc)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(len(p.stdout.splitlines()), want["changes"], doc)
        self.assertEqual(schema_version(self.db), 5)  # migrated on the first open
        self.assertEqual(digest(STORE), before)  # the fixture itself is untouched
        # The migrated store takes new writes and keeps the old documents beside them.
        self.assertEqual(weft(self.db, "set", "notes", "after", '"the upgrade"').returncode, 0)
        notes = json.loads(weft(self.db, "get", "notes").stdout)
        self.assertEqual(notes.pop("after"), "the upgrade")
        self.assertEqual(notes, self.expected["documents"]["notes"]["get"])

    def test_the_migrated_device_syncs_with_a_relay_of_this_release(self):
        relay = RelayProcess(os.path.join(self.tmp, "relay"))
        try:
            fresh = os.path.join(self.tmp, "fresh.db")
            key = weft(fresh, "id").stdout.strip()
            for doc in self.expected["documents"]:
                p = weft(self.db, "grant", doc, key, "reader")
                self.assertEqual(p.returncode, 0, p.stderr)
            p = weft(self.db, "sync", relay.url, "--timeout", "30")
            self.assertEqual(p.returncode, 0, p.stderr)
            p = weft(fresh, "sync", relay.url, "--timeout", "30")
            self.assertEqual(p.returncode, 0, p.stderr)
            for doc, want in self.expected["documents"].items():
                p = weft(fresh, "get", doc)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(json.loads(p.stdout), want["get"], doc)
        finally:
            relay.stop()

    def test_a_store_of_a_newer_schema_is_refused_unchanged(self):
        db = sqlite3.connect(self.db)
        db.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
        db.commit()
        db.close()
        before = digest(self.db)
        p = weft(self.db, "get", "notes")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("has schema version 99; this Weft reads up to 5", p.stderr)
        self.assertEqual(digest(self.db), before)


class ProtocolUpgradeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="weft-upgrade-")
        with open(os.path.join(SESSION, "frame-1.bin"), "rb") as f:
            self.hello = f.read()

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def test_the_recording_is_a_hello_of_protocol_2(self):
        # Read with this release's schema and with the old device's own: the same Hello.
        for schema in (SCHEMA, OLD_SCHEMA):
            text = capnp_decode(schema, self.hello)
            self.assertRegex(text, r"^\( hello = \(", text)
            self.assertIn("protocolVersion = 2,", text)
        self.assertFalse(os.path.exists(os.path.join(SESSION, "frame-2.bin")))  # it waited

    def test_the_relay_refuses_the_old_device_with_an_upgrade_error(self):
        relay = RelayProcess(os.path.join(self.tmp, "relay"), "--log-format", "json")
        try:
            ws = WebSocket("127.0.0.1", relay.port)
            try:
                ws.send(self.hello)
                opcode, answer = ws.receive()
                self.assertEqual(opcode, BINARY)
                frames = [ws.receive()]
                while frames[-1][0] not in (CLOSE, None):
                    frames.append(ws.receive())
            finally:
                ws.close()
            # Only the error: no Hello of the relay's, then the close.
            self.assertEqual(len(frames), 1)
            # What the old device reads, with the schema it was built with.
            text = capnp_decode(OLD_SCHEMA, answer)
            self.assertRegex(text, r"^\( error = \(", text)
            self.assertIn("code = unsupportedVersion", text)
            self.assertIn("protocol version 2 is not supported; this peer speaks version 4 "
                          "(upgrade the older side)", text)
            self.assertIn("fatal = true", text)
            # A device of this release is still served.
            a = os.path.join(self.tmp, "a.db")
            self.assertEqual(weft(a, "set", "notes", "title", '"now"').returncode, 0)
            p = weft(a, "sync", relay.url, "--timeout", "30")
            self.assertEqual(p.returncode, 0, p.stderr)
        finally:
            err = relay.stop()
        events = [json.loads(line) for line in err.splitlines()
                  if line.strip() and not line.startswith("weft-relay: ")]
        failed = [e for e in events if e["event"] in ("session.failed", "session.refused")]
        self.assertEqual(len(failed), 1, events)
        self.assertIn("protocol version 2 is not supported", failed[0]["error"])
        opened = [e for e in events if e["event"] == "session.open"]
        self.assertEqual(len(opened), 1)  # only the device of this release
        received = [e for e in events if e["event"] == "changes.received"]
        self.assertEqual(sum(e["counts"]["changes"] for e in received), 1)  # a's one change


if __name__ == "__main__":
    unittest.main()
