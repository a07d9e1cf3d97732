#!/usr/bin/env python3
"""Where the time of one get and one put goes: the whole call beside its C-level parts.

    .venv/bin/python bench/hotpath.py [--num 100000]

Each line is nanoseconds per op, the best of five passes over `num` ops (16-byte keys looked up
as new objects, 100-byte values), so noise only ever adds.  The parts are what the aiokv code
does on its fast path, written out with the same C-level calls; the whole minus the sum of the
parts is what the interpreter spends on the Python around them (calls, attribute loads, checks).
A store larger than the CPU caches makes every random lookup a few cache misses, so the get
parts are also measured on a small (cache-resident) table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import xxhash

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import aiokv

ns = time.perf_counter_ns
REPEATS = 5


def best_sync(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = ns()
        fn()
        times.append(ns() - t0)
    return min(times) / n


async def best_async(fn: Callable[[], Any], n: int) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = ns()
        await fn()
        times.append(ns() - t0)
    return min(times) / n


def show(label: str, value: float) -> None:
    print(f"  {label:<62} {value:8.0f} ns")


async def get_path(db: aiokv.DB, nkeys: int, n: int) -> None:
    """db.get beside the same lookups done bare, on the store's own table (same memory)."""
    rng = random.Random(2)
    look = [b"%016d" % rng.randrange(nkeys) for _ in range(n)]
    miss = [b"%016d" % (nkeys + rng.randrange(nkeys)) for _ in range(n)]
    get = db.get
    # Internal, for this diagnosis only: the dict the get fast path reads.
    table_get = getattr(db, "_hot_get", None)

    async def run(keys: list[bytes]) -> None:
        for k in keys:
            await get(k)

    async def dict_await() -> None:
        async def one(k: bytes) -> Any:
            return table_get(k)

        for k in look:
            await one(k)

    async def empty_await() -> None:
        async def one(k: bytes) -> None:
            return None

        for k in look:
            await one(k)

    def bare_get() -> None:
        for k in look:
            table_get(k)

    def bare_entry() -> None:
        for k in look:
            e = table_get(k)
            if e is not None and e[0] == 1:
                e[1]

    print(f"get, {nkeys:,} keys stored:")
    show("await db.get(k), present key", await best_async(lambda: run(look), n))
    show("await db.get(k), missing key (the general path)", await best_async(lambda: run(miss), n))
    show("await of a coroutine returning None (the await alone)", await best_async(empty_await, n))
    if table_get is None:
        return
    show(
        "await of a coroutine doing dict.get on the store's table", await best_async(dict_await, n)
    )
    show("dict.get on the store's table, no await", best_sync(bare_get, n))
    show("... and read the entry tuple (e[0], e[1])", best_sync(bare_entry, n))


async def put_path(root: str, n: int) -> None:
    rng = random.Random(3)
    keys = [b"%016d" % i for i in range(n)]
    rng.shuffle(keys)
    value = rng.randbytes(100)
    print(f"put, {n:,} new keys in random order:")

    async def fill() -> None:
        async with aiokv.open(tempfile.mkdtemp(dir=root)) as db:
            put = db.put
            for k in keys:
                await put(k, value)

    show("await db.put(k, v) into a fresh store (incl. open/close)", await best_async(fill, n))

    async def dict_set() -> None:
        table: dict[bytes, Any] = {}

        async def one(k: bytes, v: bytes) -> None:
            table[k] = (1, v, 0, 0)

        for k in keys:
            await one(k, value)

    show("await of a coroutine doing dict[k] = (1, v, seq, 0)", await best_async(dict_set, n))
    head = struct.Struct("<BQIQIBIII").pack  # record tail + payload header + op header
    mark = b"\xe8\x5a\x0b\xc3"
    qpack = struct.Struct("<Q").pack
    h = xxhash.xxh3_64_intdigest
    body = head(1, 0, 141, 1, 1, 1, 0, 16, 100) + keys[0] + value
    record = b"".join((mark, qpack(h(body)), body))

    def pack() -> None:
        for i, k in enumerate(keys):
            head(1, 0, 141, i, 1, 1, 0, 16, 100) + k + value

    def checksum() -> None:
        for _ in keys:
            h(body)

    def join() -> None:
        for _ in keys:
            b"".join((mark, qpack(7), body))

    show("pack the record header + key + value (one struct call, 2 concats)", best_sync(pack, n))
    show(f"xxh3_64 of the {len(body)}-byte checked part", best_sync(checksum, n))
    show("join mark + packed checksum + body", best_sync(join, n))
    fd = os.open(
        os.path.join(root, "write.dat"), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
    )
    try:

        def write() -> None:
            for _ in keys:
                os.write(fd, record)

        show(
            f"os.write of the {len(record)}-byte record (O_APPEND, real disk)", best_sync(write, n)
        )
    finally:
        os.close(fd)
    try:  # internal; these lines are skipped if it moved
        from aiokv.engine import memtable
    except ImportError:
        return

    def mem_fill() -> None:
        put = memtable.Memtable().put
        for i, k in enumerate(keys):
            put(k, value, i)

    show("Memtable.put(k, v, seq) into a fresh memtable (incl. folds)", best_sync(mem_fill, n))
    every = memtable.FOLD_EVERY
    memtable.FOLD_EVERY = 1 << 62  # diagnosis only: the same puts with no fold
    try:
        show("... the same with folding into the SortedList turned off", best_sync(mem_fill, n))
    finally:
        memtable.FOLD_EVERY = every


async def main_async(n: int) -> None:
    root = tempfile.mkdtemp(prefix="aiokv-hotpath-")
    rng = random.Random(1)
    stored = [b"%016d" % i for i in range(n)]
    order = stored[:]
    rng.shuffle(order)
    values = [rng.randbytes(100) for _ in range(1024)]
    for size in (n, 1000):
        gc.collect()
        gc.freeze()  # this script's own lists stay out of the collection timed below
        async with aiokv.open(os.path.join(root, f"get{size}")) as db:
            for i, k in enumerate(order):
                if int(k) < size:
                    await db.put(k, values[i % 1024])
            t0 = ns()
            gc.collect()
            pause = ns() - t0
            tracked = len(gc.get_objects())
            await get_path(db, size, n)
            label = f"a full gc.collect() with the store open ({tracked:,} objects tracked)"
            print(f"  {label:<62} {pause / 1e6:8.1f} ms")
        gc.unfreeze()
    await put_path(root, n)
    import shutil

    shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--num", type=int, default=100_000)
    ap.add_argument("--no-uvloop", action="store_true")
    args = ap.parse_args(argv)
    factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop
    if not args.no_uvloop:
        try:
            import uvloop

            factory = uvloop.new_event_loop
        except ImportError:
            pass
    print(f"Python {sys.version.split()[0]}, loop {factory.__module__}, num {args.num:,}")
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(main_async(args.num))
    return 0


if __name__ == "__main__":
    sys.exit(main())
