#!/usr/bin/env python3
"""Generates a seeded benchmark tree: N files of MIN..MAX bytes spread over D directories."""
import os
import random
import sys


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: gen_tree.py DIR FILES DIRS MIN_BYTES MAX_BYTES")
    root, files, dirs, lo, hi = sys.argv[1], *map(int, sys.argv[2:])
    rng = random.Random(20261126)
    pool = rng.randbytes(hi * 4)  # slices of a random pool: distinct content, cheap to make
    for d in range(dirs):
        os.makedirs(os.path.join(root, f"d{d:04d}"), exist_ok=True)
    for i in range(files):
        size = rng.randint(lo, hi)
        start = rng.randint(0, len(pool) - size)
        body = i.to_bytes(8, "little") + pool[start:start + size - 8]
        with open(os.path.join(root, f"d{i % dirs:04d}", f"f{i:07d}.bin"), "wb") as f:
            f.write(body)


if __name__ == "__main__":
    main()
