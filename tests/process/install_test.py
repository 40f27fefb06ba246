"""`cmake --install` as a packager and an operator use it: the build tree installed into a
temporary prefix (and staged under DESTDIR), then the installed weft-relay and weft run against
each other. WEFT_BUILD_DIR names the build tree."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

from weft_process import RelayProcess, weft

BUILD = os.environ["WEFT_BUILD_DIR"]


def install(prefix, destdir=None):
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir:
        env["DESTDIR"] = destdir
    p = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix], capture_output=True,
                       text=True, env=env, timeout=300)
    if p.returncode != 0:
        raise AssertionError("cmake --install failed: %s%s" % (p.stdout, p.stderr))


def unit_settings(path):
    """The unit file's settings: name -> list of values (in order)."""
    out = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", "[")):
                continue
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="weft-install-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        install(cls.prefix)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def test_files_in_place(self):
        for rel in ["bin/weft", "bin/weft-relay", "include/weft.h", "include/weft/replica.h",
                    "lib/libweft.so.0", "lib/libweft_sdk.a", "lib/cmake/Weft/WeftConfig.cmake",
                    "lib/pkgconfig/weft.pc", "lib/systemd/system/weft-relay.service",
                    "lib/sysusers.d/weft.conf", "share/doc/weft/README.md",
                    "etc/weft/weft-relay.conf", "share/doc/weft/weft-relay.conf.example"]:
            self.assertTrue(os.path.exists(os.path.join(self.prefix, rel)), rel)
        for rel in ["bin/weft", "bin/weft-relay"]:
            self.assertTrue(os.access(os.path.join(self.prefix, rel), os.X_OK), rel)
        with open(os.path.join(self.prefix, "lib/sysusers.d/weft.conf")) as f:
            self.assertIn("u weft ", f.read())

    def test_service_unit(self):
        s = unit_settings(os.path.join(self.prefix, "lib/systemd/system/weft-relay.service"))
        exec_start = s["ExecStart"][0].split()
        # The installed relay, by its absolute path under this prefix, and it exists.
        self.assertEqual(exec_start[0], os.path.join(self.prefix, "bin/weft-relay"))
        self.assertTrue(os.access(exec_start[0], os.X_OK))
        self.assertEqual(exec_start[1:], ["--config",
                                          os.path.join(self.prefix, "etc/weft/weft-relay.conf")])
        self.assertEqual(s["User"], ["weft"])
        self.assertEqual(s["StateDirectory"], ["weft"])
        self.assertEqual(s["Restart"], ["on-failure"])
        for key, value in [("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"),
                           ("PrivateTmp", "yes"), ("ProtectHome", "yes")]:
            self.assertEqual(s[key], [value], key)
        # The configuration it names: secure (no open), data under /var/lib/weft.
        with open(exec_start[2]) as f:
            settings = [line.split("#")[0].strip() for line in f]
        self.assertIn("data = /var/lib/weft", settings)
        self.assertFalse([line for line in settings if line.startswith("open")])

    def test_systemd_accepts_the_unit_and_the_user(self):
        if not shutil.which("systemd-analyze") or not shutil.which("systemd-sysusers"):
            self.skipTest("systemd-analyze and systemd-sysusers are not installed")
        unit = os.path.join(self.prefix, "lib/systemd/system/weft-relay.service")
        p = subprocess.run(["systemd-analyze", "verify", unit], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn("weft-relay.service:", p.stderr)  # no warnings about the unit
        root = tempfile.mkdtemp(dir=self.tmp)
        p = subprocess.run(["systemd-sysusers", "--dry-run", "--root", root,
                            os.path.join(self.prefix, "lib/sysusers.d/weft.conf")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("weft", p.stdout + p.stderr)

    def test_installed_config_is_valid_and_kept(self):
        relay_bin = os.path.join(self.prefix, "bin/weft-relay")
        conf = os.path.join(self.prefix, "etc/weft/weft-relay.conf")
        data = os.path.join(self.tmp, "conf-data")
        # The shipped file as it is (with a data directory of the test's and a free port).
        relay = RelayProcess(data, "--config", conf, binary=relay_bin)
        try:
            self.assertIn("secure mode", relay.banner[1])
        finally:
            relay.stop()
        # An operator's edit survives a reinstall.
        with open(conf, "a") as f:
            f.write("threads = 3  # edited\n")
        install(self.prefix)
        with open(conf) as f:
            self.assertIn("threads = 3  # edited", f.read())

    def test_destdir_staging_names_the_final_paths(self):
        stage = os.path.join(self.tmp, "stage")
        install("/usr", destdir=stage)
        unit = os.path.join(stage, "usr/lib/systemd/system/weft-relay.service")
        self.assertEqual(unit_settings(unit)["ExecStart"][0].split(),
                         ["/usr/bin/weft-relay", "--config", "/etc/weft/weft-relay.conf"])
        self.assertTrue(os.path.exists(os.path.join(stage, "etc/weft/weft-relay.conf")))
        self.assertTrue(os.path.exists(os.path.join(stage, "usr/bin/weft-relay")))

    def test_installed_relay_and_tool_sync(self):
        relay_bin = os.path.join(self.prefix, "bin/weft-relay")
        weft_bin = os.path.join(self.prefix, "bin/weft")
        work = tempfile.mkdtemp(dir=self.tmp)
        a, b = os.path.join(work, "a.db"), os.path.join(work, "b.db")
        relay = RelayProcess(os.path.join(work, "relay"), binary=relay_bin)
        try:
            self.assertIn("secure mode", relay.banner[1])
            run = lambda db, *args: weft(db, *args, binary=weft_bin)
            self.assertEqual(run(a, "set", "notes", "title", '"from the installed tool"')
                             .returncode, 0)
            b_key = run(b, "id").stdout.strip()
            self.assertEqual(run(a, "grant", "notes", b_key, "reader").returncode, 0)
            p = run(a, "sync", relay.url, "--timeout", "30")
            self.assertEqual(p.returncode, 0, p.stderr)
            p = run(b, "sync", relay.url, "--timeout", "30")
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(json.loads(run(b, "get", "notes").stdout),
                             {"title": "from the installed tool"})
        finally:
            err = relay.stop()
        self.assertIn("stopped", err)


if __name__ == "__main__":
    unittest.main()
