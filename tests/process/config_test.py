"""`weft-relay --config FILE` and `--version` as an operator uses them: settings from the file,
flags overriding it, and refusals that name the wrong line (the relay does not start, and its
data directory is not created). WEFT_BIN and WEFT_RELAY_BIN name the binaries."""

import os
import re
import subprocess
import tempfile
import unittest
import urllib.request

from weft_process import RELAY, WEFT, RelayProcess, free_port, weft

KEY = "ab" * 32


class ConfigTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def refused(self, text, *flags):
        """Starts the relay on a config of `text`: it must exit 2 before serving, without
        creating its data directory; returns its stderr."""
        data = os.path.join(self.tmp, "never-created")
        conf = self.write("bad.conf", "data = %s\n" % data + text)
        p = subprocess.run([RELAY, "--config", conf, *flags], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertNotIn("listening", p.stdout)
        self.assertFalse(os.path.exists(data))
        return p.stderr

    def test_version(self):
        for binary in (RELAY, WEFT):
            p = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 0, p.stderr)
            name = os.path.basename(binary)
            self.assertRegex(p.stdout.strip(),
                             r"^%s \d+\.\d+\.\d+ \(sync protocol \d+\)$" % re.escape(name))
        relay = subprocess.run([RELAY, "--version"], capture_output=True, text=True).stdout
        tool = subprocess.run([WEFT, "--version"], capture_output=True, text=True).stdout
        self.assertEqual(relay.split()[1:], tool.split()[1:])  # one release, one protocol

    def test_relay_serves_from_the_file(self):
        port = free_port()
        conf = self.write("relay.conf", """# a relay for the test
listen = 127.0.0.1:%d   # loopback only
data = relay-data
threads = 1
durability = normal
max-batch = 64
open = false
""" % port)
        # Started from elsewhere: a relative data path is taken from the file's directory.
        p = subprocess.Popen([RELAY, "--config", conf], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd="/")
        try:
            banner = [p.stdout.readline(), p.stdout.readline()]
            self.assertIn("listening on 127.0.0.1:%d" % port, banner[0])
            self.assertIn(os.path.join(self.tmp, "relay-data"), banner[0])
            self.assertIn("secure mode", banner[1])
            self.assertTrue(os.path.exists(os.path.join(self.tmp, "relay-data/weft-relay.db")))
            health = urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=10)
            self.assertEqual(health.read(), b"ok\n")
            # A device syncs with it.
            db = os.path.join(self.tmp, "a.db")
            self.assertEqual(weft(db, "set", "doc", "k", "1").returncode, 0)
            r = weft(db, "sync", "ws://127.0.0.1:%d" % port, "--timeout", "20")
            self.assertEqual(r.returncode, 0, r.stderr)
        finally:
            os.kill(p.pid, 15)
            p.wait(timeout=20)
            p.stdout.close()
            p.stderr.close()

    def test_flags_override_the_file(self):
        conf = self.write("relay.conf", "listen = 127.0.0.1:1\nopen = true\nadmission-key = %s\n"
                          % KEY)
        relay = RelayProcess(os.path.join(self.tmp, "data"), "--config", conf)
        try:
            # RelayProcess's --listen wins over the file's (whatever the order of the flags).
            self.assertIn("listening on 127.0.0.1:%d" % relay.port, relay.banner[0])
            self.assertIn("WARNING", relay.banner[1])  # open = true from the file
        finally:
            relay.stop()
        # A flag switch and the file's value: --open on the command line, open = false in it.
        conf = self.write("closed.conf", "open = false\n")
        relay = RelayProcess(os.path.join(self.tmp, "data"), "--config", conf, "--open")
        try:
            self.assertIn("WARNING", relay.banner[1])
        finally:
            relay.stop()
        # A secure file stays secure: the file's admission key is in force.
        conf = self.write("secure.conf", "admission-key = %s\n" % KEY)
        relay = RelayProcess(os.path.join(self.tmp, "data"), "--config", conf)
        try:
            self.assertIn("admission token is required", relay.banner[1])
        finally:
            relay.stop()

    def test_bad_files_are_refused_naming_the_line(self):
        cases = [
            ("# ok\nthreds = 4\n", "bad.conf:3: unknown setting \"threds\""),
            ("threads = many\n", "bad.conf:2: threads takes a number from 1 to 64, not \"many\""),
            ("threads = 0\n", "bad.conf:2: threads takes a number from 1 to 64"),
            ("\nlisten = localhost\n", "bad.conf:3: listen takes HOST:PORT"),
            ("listen = 127.0.0.1:70000\n", "bad.conf:2: listen takes HOST:PORT"),
            ("durability = sometimes\n", "bad.conf:2: durability takes full or normal"),
            ("open = yes\n", "bad.conf:2: open takes true or false, not \"yes\""),
            ("admission-key = 1234\n", "bad.conf:2: admission-key takes a public key"),
            ("trust-relay = %s\ntrust-relay = zz\n" % KEY, "bad.conf:3: trust-relay takes"),
            ("peer = http://x:1\n", "bad.conf:2: peer takes a ws:// or wss:// URL"),
            ("threads 4\n", "bad.conf:2: expected `name = value`"),
            ("threads =\n", "bad.conf:2: threads needs a value"),
            ("threads = 2\nthreads = 3\n", "bad.conf:3: threads is set twice (first on line 2)"),
            ("data = elsewhere\n", "bad.conf:2: data is set twice (first on line 1)"),
            ("max-frame = -5\n", "bad.conf:2: max-frame takes a number"),
            ("log-format = xml\n", "bad.conf:2: log-format takes none, text or json"),
        ]
        for text, message in cases:
            with self.subTest(text=text):
                self.assertIn(message, self.refused(text))

    def test_bad_flags_and_missing_files_are_refused(self):
        missing = os.path.join(self.tmp, "missing.conf")
        p = subprocess.run([RELAY, "--config", missing], capture_output=True, text=True,
                           timeout=30)
        self.assertEqual(p.returncode, 2)
        self.assertIn("cannot read the configuration file " + missing, p.stderr)
        # A good file with a bad flag: the flag is named.
        self.assertIn("--threads: threads takes a number", self.refused("", "--threads", "x"))
        self.assertIn("unknown argument --no-such-flag", self.refused("", "--no-such-flag"))

    def test_every_flag_has_a_key(self):
        """Every option --help lists (but the actions) is accepted as a key of the file."""
        usage = subprocess.run([RELAY, "--help"], capture_output=True, text=True).stdout
        flags = set(re.findall(r"(?:^ +|, )--([a-z][a-z-]+)", usage, re.M))
        actions = {"config", "help", "version", "print-key"}
        values = {"listen": "127.0.0.1:0", "data": "d", "peer": "ws://127.0.0.1:1",
                  "trust-relay": KEY, "admission-key": KEY, "open": "false",
                  "tls-cert": "c.pem", "tls-key": "k.pem", "ca": "ca.pem",
                  "durability": "full", "max-frame": "1048576", "max-queue": "1048576",
                  "max-snapshot": "1048576", "threads": "4", "log-format": "json",
                  "store": "sqlite", "store-name": "relay-1"}
        self.assertGreater(len(flags - actions), 15)
        for flag in sorted(flags - actions):
            with self.subTest(flag=flag):
                conf = self.write("one.conf", "%s = %s\n" % (flag, values.get(flag, "100")))
                # --print-key: reads the settings, then prints the key without serving.
                p = subprocess.run([RELAY, "--config", conf, "--data",
                                    os.path.join(self.tmp, "k"), "--print-key"],
                                   capture_output=True, text=True, timeout=30)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertRegex(p.stdout.strip(), r"^[0-9a-f]{64}$")


if __name__ == "__main__":
    unittest.main()
