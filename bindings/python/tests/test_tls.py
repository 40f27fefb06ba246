"""The weft Python package over TLS (wss://): a weft-relay process with a certificate made at test
time ($WEFT_TEST_CERT, the weft-test-cert tool); `ca=` trusts it, no `ca` does not."""

import os
import subprocess
import tempfile
import unittest

import weft
from weft.relay import RelayProcess

TEST_CERT = os.environ.get("WEFT_TEST_CERT", "weft-test-cert")


class TlsTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = self._tmp.name
        certs = os.path.join(self.dir, "cert")
        os.makedirs(certs)
        subprocess.run([TEST_CERT, certs], check=True, capture_output=True, timeout=60)
        self.cert = os.path.join(certs, "cert.pem")
        key = os.path.join(certs, "key.pem")
        self.relay = RelayProcess(os.path.join(self.dir, "relay"), tls=(self.cert, key)).start()

    def tearDown(self):
        self.relay.stop()
        self._tmp.cleanup()

    def open(self, name, public=True):
        r = weft.Replica.open(os.path.join(self.dir, name), public_documents=public)
        self.addCleanup(r.close)
        return r

    def test_TLS_sync_with_the_ca_and_refusal_without(self):
        self.assertTrue(self.relay.url.startswith("wss://"))
        a, b = self.open("a.db"), self.open("b.db")
        with a.transaction("notes") as t:
            t["title"] = "over TLS"
        for r in (a, b):
            s = r.sync(backoff_ms=(50, 500), ca=self.cert)
            s.add_peer(self.relay.url)
            s.wait_until_synced(self.relay.url, timeout=20)
            s.close()
        self.assertEqual(b.get("notes", "title"), "over TLS")

        c = self.open("c.db")
        s = c.sync(backoff_ms=(50, 500))  # the system's CAs: a self-signed relay is not trusted
        s.add_peer(self.relay.url)
        with self.assertRaises(weft.PermissionDenied) as e:
            s.wait_until_synced(self.relay.url, timeout=20)
        self.assertIn("certificate was not trusted", str(e.exception))
        self.assertIn("certificate was not trusted", s.peers()[0].last_error)
        s.close()

        with self.assertRaises(weft.InvalidArgument):
            c.sync(ca=os.path.join(self.dir, "absent.pem"))


if __name__ == "__main__":
    unittest.main()
