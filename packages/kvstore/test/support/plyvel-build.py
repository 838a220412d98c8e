"""Builds or lists a LevelDB database with the real library (plyvel), for the tests.

stdin: JSON {"path": ..., "sessions": [{"options": {...}, "ops": [...]}]} to build, or
{"path": ..., "list": true} to print every live entry as "<hex key> <hex value>" lines.
Each session opens the database (LevelDB flushes the previous session's log to a
table on open), applies its operations, and closes it leaving its own writes in the
log. Operations: ["put", k, v], ["delete", k], ["batch", [["put", k, v] | ["delete", k], ...]],
["compact"] or ["compact", start, stop]; keys and values are hex.
"""
import json
import sys

import plyvel

spec = json.load(sys.stdin)
path = spec["path"]
if spec.get("list"):
    db = plyvel.DB(path)
    out = sys.stdout
    for key, value in db.iterator():
        out.write(f"{key.hex()} {value.hex()}\n")
    db.close()
    sys.exit(0)

for session in spec["sessions"]:
    options = session.get("options", {})
    db = plyvel.DB(
        path,
        create_if_missing=True,
        write_buffer_size=options.get("write_buffer_size", 4 << 20),
        block_size=options.get("block_size", 4096),
        block_restart_interval=options.get("block_restart_interval", 16),
        compression=options.get("compression", "snappy"),
        max_file_size=options.get("max_file_size", 2 << 20),
    )
    for op in session["ops"]:
        kind = op[0]
        if kind == "put":
            db.put(bytes.fromhex(op[1]), bytes.fromhex(op[2]))
        elif kind == "delete":
            db.delete(bytes.fromhex(op[1]))
        elif kind == "batch":
            with db.write_batch() as batch:
                for item in op[1]:
                    if item[0] == "put":
                        batch.put(bytes.fromhex(item[1]), bytes.fromhex(item[2]))
                    else:
                        batch.delete(bytes.fromhex(item[1]))
        elif kind == "compact":
            if len(op) > 1:
                db.compact_range(start=bytes.fromhex(op[1]), stop=bytes.fromhex(op[2]))
            else:
                db.compact_range()
        else:
            raise SystemExit(f"unknown op {kind}")
    db.close()
