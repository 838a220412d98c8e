#!/usr/bin/env python3
# mk_raw.py OUT SIZE_GIB DATA_MIB SEED -- the scattered-data raw image of the formats doc, section 4b:
# SIZE_GIB sparse file with DATA_MIB of 4 MiB chunks (even: random, odd: compressible text),
# each at a random 64 KiB-aligned offset in its own slot, skewed by 0/512/4096/32768 bytes.
import os, random, sys   # mk_raw.py OUT SIZE_GIB DATA_MIB SEED
out, size_gib, data_mib, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed); size = size_gib << 30; chunk = 4 << 20; n = data_mib // 4; slot = size // n
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9))) for _ in range(5000)]
with open(out, "wb") as f:
    f.truncate(size)
    for i in range(n):
        off = i * slot + rng.randrange(0, (slot - chunk) // 65536 + 1) * 65536 + rng.choice([0, 512, 4096, 32768])
        off = min(off, (i + 1) * slot - chunk)
        if i % 2 == 0: buf = os.urandom(chunk)
        else:
            parts, total = [], 0
            while total < chunk:
                w = rng.choice(words); parts.append(w + b" "); total += len(w) + 1
            buf = b"".join(parts)[:chunk]
        f.seek(off); f.write(buf)
