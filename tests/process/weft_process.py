"""Helpers for the process tests: weft-relay on a free loopback port, stopped by its process ID,
and the `weft` tool run against a database."""

import os
import socket
import subprocess

WEFT = os.environ.get("WEFT_BIN", "weft")
RELAY = os.environ.get("WEFT_RELAY_BIN", "weft-relay")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RelayProcess:
    """A weft-relay process serving on a free loopback port (or `port`); `flags` are passed as
    they are (no --open unless given: the relay admits only authenticated devices)."""

    def __init__(self, data, *flags, binary=None, port=None):
        self.port = port or free_port()
        args = [binary or RELAY, "--listen", "127.0.0.1:%d" % self.port]
        if data is not None:
            args += ["--data", data]
        self.proc = subprocess.Popen(args + list(flags), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.pid = self.proc.pid
        self.banner = [self.proc.stdout.readline(), self.proc.stdout.readline()]
        if "listening" not in self.banner[0]:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            self.stop()
            raise RuntimeError("the relay did not start: %r %r" % (self.banner, err))
        self.url = "ws://127.0.0.1:%d" % self.port

    def stop(self):
        """SIGTERM to the relay's process ID; returns its stderr."""
        if self.proc.poll() is None:
            os.kill(self.pid, 15)
            self.proc.wait(timeout=20)
        err = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return err


def weft(db, *args, binary=None, timeout=60):
    """Runs `weft --db DB ARGS...`; returns the CompletedProcess."""
    return subprocess.run([binary or WEFT, "--db", db, *args], capture_output=True, text=True,
                          timeout=timeout)
