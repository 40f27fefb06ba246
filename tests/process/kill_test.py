#!/usr/bin/python3
"""Processes, for real: a weft-relay and three devices (the weft CLI) sync while SIGKILL hits the
relay and the sync processes at random moments; everything is restarted, and at the end every
device holds the same document, with every write whose `weft set` or `weft incr` returned.

Environment: WEFT_BIN and WEFT_RELAY_BIN (the binaries, set by ctest), WEFT_KILL_ROUNDS (rounds;
default 8, `make soak` runs more), WEFT_SEED (replays one run).
"""
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

WEFT = os.environ.get("WEFT_BIN", "weft")
RELAY = os.environ.get("WEFT_RELAY_BIN", "weft-relay")
ROUNDS = int(os.environ.get("WEFT_KILL_ROUNDS", "8"))
SEED = int(os.environ.get("WEFT_SEED", "0")) or random.randrange(1, 1 << 31)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Relay:
    def __init__(self, data, port):
        self.data, self.port, self.proc = data, port, None

    def start(self):
        self.proc = subprocess.Popen(
            [RELAY, "--listen", "127.0.0.1:%d" % self.port, "--data", self.data],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening" not in line:
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise RuntimeError("the relay did not start: %r %r" % (line, err))

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)


def weft(db, *args, timeout=30):
    return subprocess.run([WEFT, "--db", db] + list(args), capture_output=True, text=True,
                          timeout=timeout)


class KillTest(unittest.TestCase):
    def test_sigkill_during_sync_loses_nothing_acknowledged(self):
        rng = random.Random(SEED)
        print("seed %d (replay: WEFT_SEED=%d), %d rounds" % (SEED, SEED, ROUNDS))
        with tempfile.TemporaryDirectory(prefix="weft-kill-") as tmp:
            port = free_port()
            url = "ws://127.0.0.1:%d" % port
            relay = Relay(os.path.join(tmp, "relay"), port)
            relay.start()
            devices = [os.path.join(tmp, "d%d.db" % i) for i in range(3)]
            committed = {}    # key -> value, for every `set` that returned 0
            increments = 0    # every `incr` that returned 0
            kills = {"relay": 0, "sync": 0}
            try:
                # One counter everywhere first (counters created concurrently at one key would
                # be siblings, each with its own increments).
                r = weft(devices[0], "incr", "doc", "count", "0")
                self.assertEqual(r.returncode, 0, r.stderr)
                # devices[0] owns the document: it invites the other two as writers.
                for db in devices[1:]:
                    key = weft(db, "id").stdout.strip()
                    r = weft(devices[0], "grant", "doc", key, "writer")
                    self.assertEqual(r.returncode, 0, r.stderr)
                for db in devices:
                    r = weft(db, "sync", url, "--timeout", "20", timeout=60)
                    self.assertEqual(r.returncode, 0, r.stderr)
                for rnd in range(ROUNDS):
                    for i, db in enumerate(devices):
                        key = "d%d_r%d" % (i, rnd)
                        r = weft(db, "set", "doc", key, str(rnd))
                        self.assertEqual(r.returncode, 0, r.stderr)
                        committed[key] = rnd
                        r = weft(db, "incr", "doc", "count", "1")
                        self.assertEqual(r.returncode, 0, r.stderr)
                        increments += 1
                    syncs = [subprocess.Popen([WEFT, "--db", db, "sync", url, "--timeout", "5"],
                                              stdout=subprocess.DEVNULL,
                                              stderr=subprocess.DEVNULL) for db in devices]
                    time.sleep(rng.uniform(0, 0.25))
                    if rng.random() < 0.5:
                        relay.kill()
                        kills["relay"] += 1
                    for p in syncs:
                        if rng.random() < 0.3 and p.poll() is None:
                            p.send_signal(signal.SIGKILL)
                            kills["sync"] += 1
                    for p in syncs:
                        try:
                            p.wait(timeout=30)
                        except subprocess.TimeoutExpired:
                            p.kill()
                            p.wait()
                            self.fail("a sync did not end within its timeout")
                    if relay.proc.poll() is not None:
                        relay.start()
                    # Every database survives its kills.
                    for db in devices:
                        r = weft(db, "info")
                        self.assertEqual(r.returncode, 0, r.stderr)
                # Heal: sync round-robin until every device dumps the same state.
                dumps = []
                for attempt in range(6):
                    for db in devices:
                        r = weft(db, "sync", url, "--timeout", "20", timeout=60)
                        self.assertEqual(r.returncode, 0, r.stderr)
                    dumps = [weft(db, "dump", "doc").stdout for db in devices]
                    if len(set(dumps)) == 1:
                        break
                self.assertEqual(len(set(dumps)), 1, "the devices did not converge")
                state = json.loads(weft(devices[0], "get", "doc").stdout)
                for key, value in committed.items():
                    self.assertEqual(state.get(key), value, "lost " + key)
                self.assertEqual(state.get("count"), increments)
                print("%d writes, %d increments, %d relay kills, %d sync kills: converged"
                      % (len(committed), increments, kills["relay"], kills["sync"]))
            finally:
                if relay.proc.poll() is None:
                    relay.stop()
            # The relay, stopped cleanly, holds the same state.
            r = weft(os.path.join(tmp, "relay", "weft-relay.db"), "dump", "doc")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, dumps[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
