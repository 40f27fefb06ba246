"""`weft-relay --tls-cert --tls-key` and `weft sync wss://... --ca` as a user runs them, with a
certificate made at test time by weft-test-cert (no openssl tool needed). WEFT_BIN,
WEFT_RELAY_BIN and WEFT_TEST_CERT_BIN name the binaries."""

import json
import os
import signal
import subprocess
import tempfile
import unittest

WEFT = os.environ.get("WEFT_BIN", "weft")
RELAY = os.environ.get("WEFT_RELAY_BIN", "weft-relay")
TEST_CERT = os.environ.get("WEFT_TEST_CERT_BIN", "weft-test-cert")


def make_cert(directory):
    os.makedirs(directory, exist_ok=True)
    subprocess.run([TEST_CERT, directory], check=True, capture_output=True, timeout=60)
    return os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")


class TlsProcessTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.tmp = self._tmp.name
        self.cert, self.key = make_cert(os.path.join(self.tmp, "cert"))
        self.relay = None

    def tearDown(self):
        if self.relay and self.relay.poll() is None:
            os.kill(self.relay.pid, signal.SIGTERM)
            self.relay.wait(timeout=30)
        self._tmp.cleanup()

    def start_relay(self):
        """A TLS relay on a free loopback port (port 0: it prints the one it bound)."""
        self.relay = subprocess.Popen(
            [RELAY, "--listen", "127.0.0.1:0", "--data", os.path.join(self.tmp, "relay"),
             "--tls-cert", self.cert, "--tls-key", self.key],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.relay.stdout.readline()  # weft-relay listening on 127.0.0.1:PORT (...)
        self.assertIn("listening on", line, self.relay.stderr.read() if not line else line)
        return int(line.split("listening on ")[1].split(" ")[0].rsplit(":", 1)[1])

    def weft(self, db, *args):
        return subprocess.run([WEFT, "--db", os.path.join(self.tmp, db), *args],
                              capture_output=True, text=True, timeout=60)

    def test_sync_over_tls_with_and_without_the_ca(self):
        port = self.start_relay()
        url = "wss://127.0.0.1:%d" % port
        self.assertEqual(self.weft("a.db", "set", "doc", "k", '"over TLS"').returncode, 0)
        # a.db owns "doc": b.db reads it once a.db grants it a role.
        b_key = self.weft("b.db", "id").stdout.strip()
        self.assertEqual(self.weft("a.db", "grant", "doc", b_key, "reader").returncode, 0)
        p = self.weft("a.db", "sync", url, "--ca", self.cert, "--timeout", "20")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("2 change(s) sent", p.stdout)  # the write and the grant
        p = self.weft("b.db", "sync", url, "--ca", self.cert)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(self.weft("b.db", "get", "doc").stdout), {"k": "over TLS"})
        # Without --ca: the system's CAs do not trust a self-signed certificate. It fails at once
        # (well before the timeout), saying why.
        p = self.weft("c.db", "sync", url, "--timeout", "30")
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("certificate was not trusted", p.stderr)
        # Plain ws:// to the TLS port fails too, and the relay keeps serving.
        p = self.weft("c.db", "sync", "ws://127.0.0.1:%d" % port, "--timeout", "1")
        self.assertNotEqual(p.returncode, 0)
        p = self.weft("c.db", "sync", url, "--ca", self.cert)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIsNone(self.relay.poll())

    def test_relay_refuses_bad_tls_files_at_start(self):
        data = os.path.join(self.tmp, "relay")
        for args, message in [
                (["--tls-cert", self.cert], "both a certificate and a key"),
                (["--tls-cert", self.cert, "--tls-key", os.path.join(self.tmp, "nope.pem")],
                 "nope.pem"),
                (["--tls-cert", self.key, "--tls-key", self.key], "TLS certificate")]:
            p = subprocess.run([RELAY, "--listen", "127.0.0.1:0", "--data", data, *args],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(message, p.stderr, args)


if __name__ == "__main__":
    unittest.main()
