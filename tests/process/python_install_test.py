"""The Python package as a user installs it: the build tree installed with `cmake --install` into
a temporary prefix (not on any library path), a venv, `pip install PREFIX/share/weft/python`
offline (Debian's pip and setuptools, no index), then the binding's own unittest modules run
against the installed package, with no WEFT_LIBRARY, WEFT_RELAY, PYTHONPATH or LD_LIBRARY_PATH:
the package must find the prefix's libweft and weft-relay from what the install recorded.
Also: a package installed from the source tree, and WEFT_LIBRARY overriding the record.
WEFT_BUILD_DIR names the build tree; WEFT_TEST_CERT the test certificate tool (test_tls)."""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ["WEFT_BUILD_DIR"]
TEST_CERT = os.environ["WEFT_TEST_CERT"]
SOURCE = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PYTHON_SOURCE = os.path.join(SOURCE, "bindings", "python")
# Nothing that would point Python or the loader at the build or source tree.
SCRUBBED = ["WEFT_LIBRARY", "WEFT_RELAY", "PYTHONPATH", "LD_LIBRARY_PATH", "PYTHONHOME",
            "PIP_INDEX_URL", "PIP_FIND_LINKS", "VIRTUAL_ENV"]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INPUT"] = "1"
    env.update(extra)
    return env


def run(args, timeout=300, **kw):
    kw.setdefault("env", clean_env())
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    if p.returncode != 0:
        raise AssertionError("%s failed (%d):\n%s%s" % (" ".join(args), p.returncode, p.stdout,
                                                         p.stderr))
    return p


def make_venv(path):
    # /usr/bin/python3, the Debian interpreter with python3-venv (and its bundled pip and
    # setuptools wheels); system site packages for python3-wheel, which setuptools 66 wants to
    # build a wheel without build isolation.
    run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", path])
    return os.path.join(path, "bin", "python")


def pip_install(python, source):
    return run([python, "-m", "pip", "install", "--no-build-isolation", "--no-index",
                "--no-cache-dir", source])


class PythonInstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="weft-pyinstall-")
        cls.prefix = os.path.join(cls.tmp, "prefix")
        run(["cmake", "--install", BUILD, "--prefix", cls.prefix])
        cls.python = make_venv(os.path.join(cls.tmp, "venv"))
        cls.pip_out = pip_install(cls.python, os.path.join(cls.prefix, "share/weft/python"))
        # The binding's tests and example, copied away from the source tree (whose weft/ would
        # otherwise be importable from the tests' parent directory).
        cls.suite = os.path.join(cls.tmp, "suite")
        shutil.copytree(os.path.join(PYTHON_SOURCE, "tests"), os.path.join(cls.suite, "tests"))
        shutil.copytree(os.path.join(PYTHON_SOURCE, "examples"),
                        os.path.join(cls.suite, "examples"))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def probe(self, python, env=None):
        """What the interpreter's `import weft` found: the package file, the library, the relay
        and the versions, one a line."""
        code = ("import importlib.metadata, weft, weft._capi as c, weft.relay as r;"
                "print(weft.__file__); print(c.LIBRARY_PATH); print(r.RelayProcess('x').binary);"
                "print(weft.version()); print(importlib.metadata.version('weft'))")
        return run([python, "-c", code], env=env or clean_env(), cwd=self.tmp).stdout.split("\n")

    def test_installed_package_finds_the_prefix_library_and_relay(self):
        package, library, relay, version, dist_version = self.probe(self.python)[:5]
        venv = os.path.join(self.tmp, "venv")
        self.assertTrue(package.startswith(venv + os.sep), package)  # the installed copy
        self.assertEqual(library, os.path.join(self.prefix, "lib", "libweft.so.0"))
        self.assertEqual(relay, os.path.join(self.prefix, "bin", "weft-relay"))
        self.assertEqual(version, dist_version)  # pyproject.toml's version is the library's

    def test_binding_tests_pass_against_the_installed_package(self):
        # Every unittest module of the binding; test_tls needs the test certificate tool, which
        # is not installed (a test helper, not part of the package).
        tests = sorted(f[:-3] for f in os.listdir(os.path.join(self.suite, "tests"))
                       if f.startswith("test_") and f.endswith(".py"))
        self.assertIn("test_sync", tests)
        p = subprocess.run([self.python, "-m", "unittest", "-v", *tests], capture_output=True,
                           text=True, timeout=600, cwd=os.path.join(self.suite, "tests"),
                           env=clean_env(WEFT_TEST_CERT=TEST_CERT))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        # Every test method of those modules ran, none skipped.
        methods = 0
        for name in tests:
            with open(os.path.join(self.suite, "tests", name + ".py")) as f:
                methods += sum(1 for line in f if line.lstrip().startswith("def test_"))
        self.assertIn("Ran %d tests" % methods, p.stderr)
        self.assertNotIn("skipped", p.stderr)

    def test_weft_library_overrides_the_recorded_path(self):
        missing = os.path.join(self.tmp, "no-such-libweft.so")
        p = subprocess.run([self.python, "-c", "import weft"], capture_output=True, text=True,
                           timeout=60, cwd=self.tmp, env=clean_env(WEFT_LIBRARY=missing))
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("cannot load libweft (%s, from WEFT_LIBRARY)" % missing, p.stderr)

    def test_package_from_the_source_tree(self):
        # `pip install ./bindings/python` (from a copy: setuptools builds in the source directory)
        # records nothing: it takes the library from WEFT_LIBRARY or the system's library path.
        source = os.path.join(self.tmp, "python-source")
        shutil.copytree(PYTHON_SOURCE, source,
                        ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
        python = make_venv(os.path.join(self.tmp, "venv-source"))
        pip_install(python, source)
        library = os.path.join(self.prefix, "lib", "libweft.so.0")
        relay = os.path.join(self.prefix, "bin", "weft-relay")
        out = self.probe(python, clean_env(WEFT_LIBRARY=library, WEFT_RELAY=relay))
        self.assertTrue(out[0].startswith(os.path.join(self.tmp, "venv-source") + os.sep), out)
        self.assertEqual(out[1:3], [library, relay])
        p = subprocess.run([python, "-m", "unittest", "-v", "test_replica"], capture_output=True,
                           text=True, timeout=300, cwd=os.path.join(self.suite, "tests"),
                           env=clean_env(WEFT_LIBRARY=library, WEFT_RELAY=relay))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    unittest.main()
