"""The SDK's side of the web interop test (test/sdk.test.mjs): a replica on SQLite, through the
Python package over libweft.so (the C API), exchanging raw changes with the WebAssembly core.

    python3 sdk_peer.py DB DOC < lines

Reads "change HEX" lines (changes made in WebAssembly) and applies them with apply_changes (all or
nothing). Then, unless the input said "readonly", makes one transaction of its own touching every
value kind. Prints "json TEXT" (the replica's document, View.to_json) and a "change HEX" line per
change of the document in the replica's log (changes_since), ending with "end".
"""
import sys

import weft


def main():
    db, doc = sys.argv[1], sys.argv[2]
    blobs, edit = [], True
    for line in sys.stdin:
        kind, _, rest = line.strip().partition(" ")
        if kind == "change":
            blobs.append(bytes.fromhex(rest))
        elif kind == "readonly":
            edit = False
    with weft.Replica.open(db, public_documents=True) as r:
        if blobs:
            r.apply_changes(doc, blobs)
        if edit:
            def body(t):
                t.put("from", "python")
                t.put("title", "from python")
                t.counter("likes").add(10)
                t.text("notes").insert(0, "sdk: ")
                t.list("items").append("py", 3)
                t.set("tags").add("sdk")
                t.map("meta").put("device", "sqlite")
            r.transact(doc, body)
        print("json " + r.read(doc, lambda v: v.to_json()))
        for c in r.changes_since(doc):
            print("change " + c.hex())
    print("end")


if __name__ == "__main__":
    main()
