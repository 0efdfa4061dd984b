#!/usr/bin/env python3
"""The random-read load of mount-load-bench.ts (a child process; Python because it needs
posix_fadvise, which Node lacks): READERS threads, each for SECONDS: open FILE, read one length in
[MIN_LEN, MAX_LEN] at a random 4 KiB-aligned offset, compare it with the same bytes of ORIGIN (the
file the server serves), drop the range from the page cache (POSIX_FADV_DONTNEED: a later read of
it goes to the daemon again, as on a machine whose page cache holds other data), close.
Prints JSON: bytes read, seconds, wrong bytes, errors.

    python3 test/bench/random-readers.py FILE ORIGIN SIZE SEED READERS SECONDS MIN_LEN MAX_LEN
"""
import json
import os
import random
import sys
import threading
import time

file, origin, size, seed, readers, seconds, min_len, max_len = sys.argv[1:9]
size, seed, readers, min_len, max_len = int(size), int(seed), int(readers), int(min_len), int(max_len)
deadline = time.monotonic() + float(seconds)
lock = threading.Lock()
totals = {"bytes": 0, "wrong": 0, "errors": 0}


def pread_all(fd, length, offset):
    parts = []
    got = 0
    while got < length:
        b = os.pread(fd, length - got, offset + got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def reader(i):
    rnd = random.Random(seed * 7919 + i)
    ofd = os.open(origin, os.O_RDONLY)
    try:
        while time.monotonic() < deadline:
            length = rnd.randint(min_len, max_len)
            off = rnd.randrange(0, size - length + 1) // 4096 * 4096
            try:
                fd = os.open(file, os.O_RDONLY)
                try:
                    got = pread_all(fd, length, off)
                    os.posix_fadvise(fd, off, length, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)
                wrong = 0 if got == pread_all(ofd, length, off) else length
                with lock:
                    totals["bytes"] += len(got)
                    totals["wrong"] += wrong
            except OSError as e:
                with lock:
                    totals["errors"] += 1
                    if totals["errors"] == 1:
                        print(f"random-readers: {e}", file=sys.stderr)
    finally:
        os.close(ofd)


started = time.monotonic()
threads = [threading.Thread(target=reader, args=(i,)) for i in range(readers)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({**totals, "seconds": time.monotonic() - started}))
