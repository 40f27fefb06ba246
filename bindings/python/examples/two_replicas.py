#!/usr/bin/env python3
"""Two replicas edit the same document offline, sync through a relay, and converge.

Run from a build tree:
    WEFT_LIBRARY=build/bindings/c/libweft.so WEFT_RELAY=build/sync-server/weft-relay \
        PYTHONPATH=bindings/python python3 bindings/python/examples/two_replicas.py
"""

import tempfile

import weft
from weft.relay import RelayProcess


def sync_both(laptop, phone, url):
    """Connects both replicas to the relay until each holds the other's changes."""
    with laptop.sync() as s1, phone.sync() as s2:
        s1.add_peer(url)
        s2.add_peer(url)
        s1.wait_until_synced(url, timeout=20)
        s2.wait_until_synced(url, timeout=20)
        # Causal tokens: each waits until it holds everything the other had.
        phone.wait_for(laptop.causal_token("trip"), timeout=20)
        laptop.wait_for(phone.causal_token("trip"), timeout=20)


with tempfile.TemporaryDirectory() as tmp, RelayProcess(f"{tmp}/relay") as relay:
    with weft.Replica.open(f"{tmp}/laptop.db") as laptop, \
            weft.Replica.open(f"{tmp}/phone.db") as phone:
        # The laptop creates the document (it owns it) and invites the phone as a writer, by
        # its public key; both devices get it.
        with laptop.transaction("trip") as t:
            t["title"] = "Trip"
            t.text("notes").insert(0, "pack light")
            t.set("tags")
            t.counter("votes")
        laptop.grant("trip", phone.public_key, "writer")
        sync_both(laptop, phone, relay.url)
        assert phone.members("trip")[phone.public_key] == "writer"

        # Offline: each device edits on its own.
        with laptop.transaction("trip") as t:
            t["title"] = "Lisbon"
            t.text("notes").append(", bring a hat")
            t.set("tags").add("spring")
            t.counter("votes").add(1)
        with phone.transaction("trip") as t:
            t["title"] = "Lisbon in May"
            t.text("notes").insert(0, "Remember: ")
            t.set("tags").add("city")
            t.counter("votes").add(2)

        # Back online: sync, and both hold the same state.
        sync_both(laptop, phone, relay.url)
        a, b = laptop.get("trip"), phone.get("trip")
        print("laptop:", a)
        print("phone: ", b)
        assert a == b, "the replicas diverged"
        # Counters add up, sets merge, text edits interleave; the two concurrent titles are
        # both kept (weft.Conflict) until someone picks one.
        assert a["votes"] == 3 and a["tags"] == {"spring", "city"}
        assert a["notes"] == "Remember: pack light, bring a hat"
        print("converged")
