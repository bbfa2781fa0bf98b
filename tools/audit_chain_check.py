#!/usr/bin/env python3
"""Independent check of a Moat audit chain, written only from Docs/Audit.md.

Usage: tools/audit_chain_check.py PATH/TO/moat.db
Recomputes every entry's hash from the documented canonical encoding and checks the links.
Prints "ok N" and exits 0, or "broken at K: reason" and exits 1. (Checkpoint signatures need an
Ed25519 library and are checked by `moat audit verify`.)
"""
import hashlib
import sqlite3
import struct
import sys

GENESIS = "0" * 64
COLUMNS = "seq, time, actor, action, target, source_ip, user_agent, outcome, metadata, prev_hash, hash"


def entry_hash(row, previous):
    data = b"moat-audit-v1\x00"
    for field in [str(row[0])] + list(row[1:9]):
        encoded = field.encode("utf-8")
        data += struct.pack(">I", len(encoded)) + encoded
    data += bytes.fromhex(previous)
    return hashlib.sha256(data).hexdigest()


def main(path):
    connection = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    previous, expected = GENESIS, 1
    for row in connection.execute("SELECT %s FROM audit_entries ORDER BY seq" % COLUMNS):
        if row[0] != expected:
            print("broken at %d: missing entries" % expected)
            return 1
        if row[9] != previous:
            print("broken at %d: does not link to the previous entry" % row[0])
            return 1
        computed = entry_hash(row, previous)
        if computed != row[10]:
            print("broken at %d: contents do not match the hash" % row[0])
            return 1
        previous, expected = computed, expected + 1
    print("ok %d" % (expected - 1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
