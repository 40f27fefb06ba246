"""`weft-relay backup` while the relay serves and writes go on, then `weft-relay restore` and a
relay on the restored store: it serves every document the backup held, the devices that synced
after the backup send it what it lacks, and in the end every acknowledged write is on every
device. Also the refusals of restore, which change nothing. WEFT_BIN and WEFT_RELAY_BIN name the
binaries."""

import hashlib
import json
import os
import subprocess
import tempfile
import threading
import unittest

from weft_process import RELAY, RelayProcess, weft

DOCS = ["notes", "tasks"]


def relay_cmd(*args):
    return subprocess.run([RELAY, *args], capture_output=True, text=True, timeout=120)


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


class BackupTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="weft-backup-")
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, name):
        return os.path.join(self.tmp, name)

    def ok(self, p):
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p

    def test_backup_under_writes_restore_and_catch_up(self):
        a, b, c, d = (self.path(n + ".db") for n in "abcd")
        data1 = self.path("relay1")
        relay = RelayProcess(data1)
        port = relay.port
        acked = {doc: {} for doc in DOCS}  # doc -> key -> value, acknowledged by the relay
        lock = threading.Lock()
        try:
            # a owns and writes "notes", b "tasks"; c and d read both (d syncs only after the
            # restore). A device sends a relay only changes of its own (docs/operations.md).
            for owner, doc in ((a, "notes"), (b, "tasks")):
                self.ok(weft(owner, "set", doc, "origin", '"%s"' % doc))
                for db in (c, d):
                    self.ok(weft(owner, "grant", doc, self.ok(weft(db, "id")).stdout.strip(),
                                 "reader"))
                acked[doc]["origin"] = doc
                self.ok(weft(owner, "sync", relay.url, "--timeout", "30"))

            # Writers: a and b each set keys of their document and sync, in a loop, while c
            # syncs too; a write counts as acknowledged once a sync after it returned 0.
            stop = threading.Event()
            errors = []

            def writer(db, doc):
                n, after = 0, 0
                while after < 3:  # three more rounds once the backup is made
                    after += stop.is_set()
                    pending = []
                    for key in ("k%d" % n, "j%d" % n):
                        p = weft(db, "set", doc, key, str(n))
                        if p.returncode != 0:
                            errors.append(p.stderr)
                            return
                        pending.append((doc, key, n))
                    p = weft(db, "sync", "ws://127.0.0.1:%d" % port, "--timeout", "30")
                    if p.returncode != 0:
                        errors.append(p.stderr)
                        return
                    with lock:
                        for doc, key, value in pending:
                            acked[doc][key] = value
                    n += 1

            def reader(db):
                while not stop.is_set():
                    p = weft(db, "sync", "ws://127.0.0.1:%d" % port, "--timeout", "30")
                    if p.returncode != 0:
                        errors.append(p.stderr)
                        return

            threads = [threading.Thread(target=writer, args=(db, doc))
                       for db, doc in ((a, "notes"), (b, "tasks"))]
            threads.append(threading.Thread(target=reader, args=(c,)))
            for t in threads:
                t.start()
            # Back up while both write (after a few rounds each).
            while True:
                with lock:
                    if all(len(acked[doc]) >= 5 for doc in DOCS):
                        break
                stop.wait(0.05)
            with lock:
                before = {doc: dict(keys) for doc, keys in acked.items()}
            backup = self.path("relay.backup")
            out = self.ok(relay_cmd("backup", "--data", data1, "--to", backup))
            self.assertIn("backed up", out.stdout)
            self.assertEqual(os.stat(backup).st_mode & 0o777, 0o600)  # it holds the relay's key
            stop.set()  # each writer makes three more rounds
            for t in threads:
                t.join(timeout=300)
            self.assertEqual(errors, [])
        finally:
            relay.stop()
        for doc in DOCS:
            self.assertGreaterEqual(len(acked[doc]), len(before[doc]) + 6)

        # Refusals first, each changing nothing.
        store1 = os.path.join(data1, "weft-relay.db")
        sum1 = digest(store1)
        p = relay_cmd("restore", "--from", backup, "--data", data1)
        self.assertEqual(p.returncode, 1)
        self.assertIn("is not empty", p.stderr)
        self.assertIn("--force", p.stderr)
        self.assertEqual(digest(store1), sum1)
        not_backup = relay_cmd("restore", "--from", a, "--data", self.path("x"))
        self.assertEqual(not_backup.returncode, 1)
        self.assertIn("not a weft-relay backup", not_backup.stderr)
        garbage = self.path("garbage")
        with open(garbage, "wb") as f:
            f.write(b"SQLite format 3\0" + os.urandom(4096))
        p = relay_cmd("restore", "--from", garbage, "--data", self.path("x"))
        self.assertEqual(p.returncode, 1)
        self.assertIn("garbage", p.stderr)
        p = relay_cmd("restore", "--from", self.path("absent"), "--data", self.path("x"))
        self.assertEqual(p.returncode, 1)
        self.assertFalse(os.path.exists(self.path("x")))
        conf = self.path("no-data.conf")
        with open(conf, "w") as f:
            f.write("threads = 1\n")
        p = relay_cmd("backup", "--config", conf, "--to", self.path("other"))
        self.assertEqual(p.returncode, 2)
        self.assertIn("no data directory", p.stderr)
        self.assertFalse(os.path.exists(self.path("other")))
        p = relay_cmd("backup", "--data", data1, "--to", backup)  # never over a file
        self.assertEqual(p.returncode, 1)
        self.assertIn("exists already", p.stderr)

        # Restore into a new directory; a relay there, on the same address as the first.
        data2 = self.path("relay2")
        out = self.ok(relay_cmd("restore", "--from", backup, "--data", data2))
        self.assertIn("restored", out.stdout)
        key1 = self.ok(relay_cmd("--data", data1, "--print-key")).stdout
        self.assertEqual(self.ok(relay_cmd("--data", data2, "--print-key")).stdout, key1)
        relay = RelayProcess(data2, port=port)
        try:
            # d never synced: it gets every document from the restored store alone, with
            # everything acknowledged before the backup began, and only acknowledged writes.
            self.ok(weft(d, "sync", relay.url, "--timeout", "30"))
            for doc in DOCS:
                state = json.loads(self.ok(weft(d, "get", doc)).stdout)
                for key, value in before[doc].items():
                    self.assertEqual(state.get(key), value, (doc, key))
                for key, value in state.items():
                    self.assertEqual(acked[doc].get(key), value, (doc, key))
                self.assertLess(len(state), len(acked[doc]))  # the later writes are missing
            # The writers sync again: they re-send what the restored relay lacks; then the
            # readers get it.
            for db in (a, b, c, d):
                self.ok(weft(db, "sync", relay.url, "--timeout", "30"))
            for db, docs in ((a, ["notes"]), (b, ["tasks"]), (c, DOCS), (d, DOCS)):
                for doc in docs:
                    self.assertEqual(json.loads(self.ok(weft(db, "get", doc)).stdout),
                                     acked[doc], (db, doc))
        finally:
            relay.stop()

        # --force replaces the old directory's store (the relay there stopped), and a relay on
        # it serves the backup too.
        self.ok(relay_cmd("restore", "--from", backup, "--data", data1, "--force"))
        self.assertNotEqual(digest(store1), sum1)
        for suffix in ("-wal", "-shm", "-lease"):
            self.assertFalse(os.path.exists(store1 + suffix), suffix)
        relay = RelayProcess(data1)
        try:
            e = self.path("e.db")
            self.ok(weft(e, "sync", relay.url, "--timeout", "30"))
            self.assertNotEqual(weft(e, "get", "notes").returncode, 0)  # e may read nothing
        finally:
            relay.stop()

    def test_restore_refuses_a_directory_in_use(self):
        data = self.path("relay")
        relay = RelayProcess(data)
        try:
            # The data directory from the relay's config file (relative to the file).
            conf = self.path("relay.conf")
            with open(conf, "w") as f:
                f.write("data = relay\nlog-format = json\n")
            backup = self.path("b")
            self.ok(relay_cmd("backup", "--config", conf, "--to", backup))
            self.assertEqual(os.stat(backup).st_mode & 0o777, 0o600)
            p = relay_cmd("restore", "--from", backup, "--data", data, "--force")
            self.assertEqual(p.returncode, 1)
            self.assertIn("in use by another weft-relay", p.stderr)
        finally:
            relay.stop()


if __name__ == "__main__":
    unittest.main()
