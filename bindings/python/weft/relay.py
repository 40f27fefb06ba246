"""Runs a weft-relay process on a free loopback port, for examples and tests."""

import os
import shutil
import subprocess

from . import _capi


class RelayProcess:
    """`with RelayProcess(data_dir) as relay:` starts weft-relay on 127.0.0.1 (port 0: the kernel
    picks a free one), and stops it on exit. relay.url is its ws:// URL, or its wss:// URL when
    `tls` is a (certificate file, key file) pair (PEM): then the relay speaks only TLS.

    The binary is `binary`, else $WEFT_RELAY, else the weft-relay installed beside the library
    (recorded by `cmake --install`), else weft-relay on the PATH."""

    def __init__(self, data_dir, binary=None, tls=None):
        self.binary = (binary or os.environ.get("WEFT_RELAY") or _capi.installed_path("relay")
                       or shutil.which("weft-relay"))
        if not self.binary:
            raise FileNotFoundError("weft-relay not found (set WEFT_RELAY)")
        self.data_dir = str(data_dir)
        self.tls = tls
        self.proc = None
        self.port = None

    def start(self):
        tls = ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])] if self.tls else []
        self.proc = subprocess.Popen(
            [self.binary, "--listen", "127.0.0.1:0", "--data", self.data_dir, *tls],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()  # "weft-relay listening on 127.0.0.1:PORT (...)"
        if "listening on" not in line:
            self.stop()
            raise RuntimeError(f"weft-relay did not start: {line!r}")
        self.port = int(line.split("127.0.0.1:")[1].split()[0])
        return self

    @property
    def url(self):
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
