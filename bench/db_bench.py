#!/usr/bin/env python3
"""db_bench for aiokv: LevelDB-style workloads over the awaitable API, with baselines and peers
measured in the same run so that every figure can be read as a ratio on a noisy machine.

    .venv/bin/python bench/db_bench.py --profile quick      # `make bench`, a minute or two
    .venv/bin/python bench/db_bench.py --profile full
    .venv/bin/python bench/db_bench.py --cprofile 100000    # where get, put and seek time goes

Keys are 16 bytes (`%016d` of an index, so index order is key order), values 100 bytes.
Every op is timed on its own with `time.perf_counter_ns()` around the `await` (around the call
for the synchronous peers); latencies are nearest-rank p50/p99/p999 over every op.  Each
workload but fillsync and syncput_1000w then runs a second time with no timer calls (a fill on
another fresh store): ops/s is that untimed pass, "timed" ops/s the op count over the wall time
of the timed loop, which includes the timer calls (`baseline_timer` says how much).

Workloads (aiokv, then each importable peer, one after the other, on fresh stores per fill):
  fillseq        put `num` keys in key order                   (default durability)
  fillrandom     put `num` keys in random order (a permutation, so every key ends up present)
  overwrite      put `num` random keys (with repeats) into the fillrandom store
  readrandom     get `reads` random present keys
  readmissing    get `reads` keys that are not there
  get_many       get_many of `batches` random batches of `batch` keys (latency per batch)
  readseq        one forward scan over the whole store (latency per item)
  seekrandom     a scan starting at a random key taking `seek_len` items (latency per seek)
  fillsync       put `sync_num` keys with sync=True, one writer
  syncput_1000w  `writers` tasks each doing `puts_per_writer` `await db.put(k, v, sync=True)`
Before each workload the collector runs and `gc.freeze()` moves everything alive (the bench's
own key lists) out of later collections; the store's new objects are collected as usual.
Baselines: `await` of a coroutine doing a dict lookup (the ceiling for one await per op), the
timer's own cost, the disk's write+fdatasync of a 150-byte record (inline and through a thread
pool, as aiokv's committer does), and the peers in bench_peers.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from array import array
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_peers
import bench_report
from bench_report import Result, line, summarize

import aiokv

VALUE_SIZE = 100
VALUE_POOL = 1024  # distinct values cycled through: memory stays flat, bytes are not all equal
RECORD_SIZE = 150  # the disk baseline: one small WAL-record-sized write + fdatasync
ns = time.perf_counter_ns


@dataclass(frozen=True)
class Config:
    num: int
    reads: int
    batches: int
    batch: int
    seeks: int
    seek_len: int
    sync_num: int
    writers: int
    puts_per_writer: int
    fsync_samples: int
    seed: int = 301


PROFILES = {
    "quick": Config(
        num=100_000, reads=100_000, batches=1_000, batch=1_000, seeks=10_000, seek_len=100,
        sync_num=1_000, writers=1_000, puts_per_writer=100, fsync_samples=2_000,
    ),
    "full": Config(
        num=1_000_000, reads=1_000_000, batches=10_000, batch=1_000, seeks=100_000, seek_len=100,
        sync_num=10_000, writers=1_000, puts_per_writer=1_000, fsync_samples=10_000,
    ),
}  # fmt: skip

WORKLOADS = (
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readmissing",
    "get_many",
    "readseq",
    "seekrandom",
    "fillsync",
    "syncput_1000w",
)


def zeros(n: int) -> array[int]:
    """Room for n latencies.  An array, which the garbage collector never traverses: a list of
    a million ints would add its own time to every full collection in the store measured."""
    return array("q", bytes(8 * n))


def key(i: int) -> bytes:
    """The 16-byte key of index i; index order is key order."""
    return b"%016d" % i


# -- timed loops: one timer pair around each op ------------------------------------------------


async def atimed(fn: Callable[[Any], Awaitable[Any]], args: list[Any]) -> tuple[array[int], int]:
    lat = zeros(len(args))
    begin = ns()
    for i, a in enumerate(args):
        t0 = ns()
        await fn(a)
        lat[i] = ns() - t0
    return lat, ns() - begin


async def atimed2(
    fn: Callable[[bytes, bytes], Awaitable[Any]], keys: list[bytes], values: list[bytes]
) -> tuple[array[int], int]:
    lat = zeros(len(keys))
    begin = ns()
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        t0 = ns()
        await fn(k, v)
        lat[i] = ns() - t0
    return lat, ns() - begin


async def auntimed(fn: Callable[[Any], Awaitable[Any]], args: list[Any]) -> int:
    begin = ns()
    for a in args:
        await fn(a)
    return ns() - begin


def timed(fn: Callable[[Any], Any], args: list[Any]) -> tuple[array[int], int]:
    lat = zeros(len(args))
    begin = ns()
    for i, a in enumerate(args):
        t0 = ns()
        fn(a)
        lat[i] = ns() - t0
    return lat, ns() - begin


def timed2(
    fn: Callable[[bytes, bytes], Any], keys: list[bytes], values: list[bytes]
) -> tuple[array[int], int]:
    lat = zeros(len(keys))
    begin = ns()
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        t0 = ns()
        fn(k, v)
        lat[i] = ns() - t0
    return lat, ns() - begin


async def auntimed2(
    fn: Callable[[bytes, bytes], Awaitable[Any]], keys: list[bytes], values: list[bytes]
) -> int:
    begin = ns()
    for k, v in zip(keys, values, strict=True):
        await fn(k, v)
    return ns() - begin


def untimed2(fn: Callable[[bytes, bytes], Any], keys: list[bytes], values: list[bytes]) -> int:
    begin = ns()
    for k, v in zip(keys, values, strict=True):
        fn(k, v)
    return ns() - begin


def untimed(fn: Callable[[Any], Any], args: list[Any]) -> int:
    begin = ns()
    for a in args:
        fn(a)
    return ns() - begin


async def atimed_next(
    nxt: Callable[[], Awaitable[Any]], stop: type[BaseException]
) -> tuple[array[int], int]:
    """Times each step of an async iterator until it stops."""
    lat = array("q")
    app = lat.append
    begin = ns()
    while True:
        t0 = ns()
        try:
            await nxt()
        except stop:
            break
        app(ns() - t0)
    return lat, ns() - begin


def timed_next(nxt: Callable[[], Any]) -> tuple[array[int], int]:
    """Times each step of an iterator until it stops."""
    lat = array("q")
    app = lat.append
    begin = ns()
    while True:
        t0 = ns()
        try:
            nxt()
        except StopIteration:
            break
        app(ns() - t0)
    return lat, ns() - begin


def timer_overhead(n: int) -> tuple[array[int], int]:
    """The timed loop with nothing inside: what every figure's timer calls cost."""
    lat = zeros(n)
    begin = ns()
    for i in range(n):
        t0 = ns()
        lat[i] = ns() - t0
    return lat, ns() - begin


# -- the bench ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, cfg: Config, root: str, peers: list[str]) -> None:
        self.cfg = cfg
        self.root = root
        self.peers = peers
        self.results: list[Result] = []
        rng = random.Random(cfg.seed)
        self.rng = rng
        pool = [rng.randbytes(VALUE_SIZE) for _ in range(VALUE_POOL)]
        self.keys = [key(i) for i in range(cfg.num)]
        self.values = [pool[i % VALUE_POOL] for i in range(cfg.num)]
        self.perm = self.keys[:]
        rng.shuffle(self.perm)
        # Keys to look up are new objects, as a request's keys would be: never the very objects
        # stored (no identity shortcut in the dict), allocated in the order they are used.
        n = cfg.num
        self.overwrite_keys = [key(rng.randrange(n)) for _ in range(n)]
        self.read_keys = [key(rng.randrange(n)) for _ in range(cfg.reads)]
        self.missing_keys = [key(n + rng.randrange(n)) for _ in range(cfg.reads)]
        self.batches = [
            [key(rng.randrange(n)) for _ in range(cfg.batch)] for _ in range(cfg.batches)
        ]
        self.seek_keys = [key(rng.randrange(n)) for _ in range(cfg.seeks)]

    def emit(self, r: Result) -> None:
        self.results.append(r)
        print(line(r), flush=True)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    def peer_runs(self, tag: str, *, sync: bool = False) -> Iterator[bench_peers.Peer]:
        """Each peer in turn, on a fresh store, closed after use."""
        for name in self.peers:
            quiesce()
            with self.peer_run(name, tag, sync=sync) as p:
                yield p

    @contextlib.contextmanager
    def peer_run(self, name: str, tag: str, *, sync: bool = False) -> Iterator[bench_peers.Peer]:
        p = bench_peers.open_peer(name, self.root, tag, sync=sync)
        try:
            yield p
        finally:
            p.close()

    async def run(self, only: set[str]) -> None:
        cfg = self.cfg
        lat, el = timer_overhead(cfg.reads)
        self.emit(summarize("baseline_timer", "python", lat, el))
        if only & {"fillseq"}:
            await self.fill("fillseq", self.keys)
        reads = only & {"readrandom", "readmissing", "get_many", "readseq", "seekrandom"}
        if only & {"fillrandom", "overwrite"} or reads:
            await self.random_store_workloads(only)
        if "fillsync" in only:
            await self.fillsync()
        if "syncput_1000w" in only:
            await self.disk_baseline()
            await self.sync_writers()

    async def fill(self, name: str, keys: list[bytes]) -> None:
        """A fill on a fresh store per engine, timed; then again on another, untimed."""
        quiesce()
        async with aiokv.open(self.path(f"aiokv-{name}")) as db:
            with gc_watch() as gcs:
                lat, el = await atimed2(db.put, keys, self.values)
        quiesce()
        async with aiokv.open(self.path(f"aiokv-{name}-untimed")) as db:
            un = await auntimed2(db.put, keys, self.values)
        self.emit(summarize(name, "aiokv", lat, el, untimed_ns=un, gc=gcs))
        for p in self.peer_runs(name):
            lat, el = timed2(p.put, keys, self.values)
            with self.peer_run(p.name, f"{name}-untimed") as q:
                un = untimed2(q.put, keys, self.values)
            self.emit(summarize(name, p.name, lat, el, untimed_ns=un))

    async def random_store_workloads(self, only: set[str]) -> None:
        """fillrandom, then overwrite and the reads on the stores fillrandom made."""
        if "fillrandom" in only:
            await self.fill("fillrandom", self.perm)
        quiesce()
        stores: list[bench_peers.Peer] = []
        try:
            async with aiokv.open(self.path("aiokv-reads")) as db:
                await auntimed2(db.put, self.perm, self.values)
                for name in self.peers:
                    stores.append(bench_peers.open_peer(name, self.root, "reads"))
                    untimed2(stores[-1].put, self.perm, self.values)
                if "overwrite" in only:
                    quiesce()
                    lat, el = await atimed2(db.put, self.overwrite_keys, self.values)
                    un = await auntimed2(db.put, self.overwrite_keys, self.values)
                    self.emit(summarize("overwrite", "aiokv", lat, el, untimed_ns=un))
                    for p in stores:
                        lat, el = timed2(p.put, self.overwrite_keys, self.values)
                        un = untimed2(p.put, self.overwrite_keys, self.values)
                        self.emit(summarize("overwrite", p.name, lat, el, untimed_ns=un))
                if "readrandom" in only:
                    await self.point_reads("readrandom", db, stores, self.read_keys)
                if "readmissing" in only:
                    await self.point_reads("readmissing", db, stores, self.missing_keys)
                if "get_many" in only:
                    await self.get_many(db, stores)
                if "readseq" in only:
                    await self.readseq(db, stores)
                if "seekrandom" in only:
                    await self.seekrandom(db, stores, self.cfg.seek_len)
        finally:
            for p in stores:
                p.close()

    async def point_reads(
        self, name: str, db: aiokv.DB, stores: list[bench_peers.Peer], keys: list[bytes]
    ) -> None:
        quiesce()
        if name == "readrandom":  # the ceiling, measured right beside what it bounds
            table = dict(zip(self.keys, self.values, strict=True))
            lookup = table.get

            async def dict_get(k: bytes) -> bytes | None:
                return lookup(k)

            lat, el = await atimed(dict_get, keys)
            un = await auntimed(dict_get, keys)
            self.emit(summarize("baseline_dict_await", "python", lat, el, untimed_ns=un))
            del table
        lat, el = await atimed(db.get, keys)
        un = await auntimed(db.get, keys)
        for k in keys[:100]:  # the bench reads what it thinks it reads
            assert (await db.get(k) is not None) == (name == "readrandom"), k
        self.emit(summarize(name, "aiokv", lat, el, untimed_ns=un))
        for p in stores:
            lat, el = timed(p.get, keys)
            un = untimed(p.get, keys)
            self.emit(summarize(name, p.name, lat, el, untimed_ns=un))
            if isinstance(p, bench_peers.LmdbPeer):
                get, close = p.long_txn_get()
                try:
                    lat, el = timed(get, keys)
                    un = untimed(get, keys)
                finally:
                    close()
                self.emit(summarize(name, "lmdb_one_txn", lat, el, untimed_ns=un))

    async def get_many(self, db: aiokv.DB, stores: list[bench_peers.Peer]) -> None:
        quiesce()
        batches = self.batches
        items = len(batches) * self.cfg.batch
        lat, el = await atimed(db.get_many, batches)
        un = await auntimed(db.get_many, batches)
        got = await db.get_many(batches[0])
        assert None not in got and len(got) == len(batches[0])
        self.emit(summarize("get_many", "aiokv", lat, el, items=items, untimed_ns=un))
        for p in stores:
            lat, el = timed(p.get_many, batches)
            un = untimed(p.get_many, batches)
            self.emit(summarize("get_many", p.name, lat, el, items=items, untimed_ns=un))

    async def readseq(self, db: aiokv.DB, stores: list[bench_peers.Peer]) -> None:
        quiesce()
        lat, el = await atimed_next(db.scan().__anext__, StopAsyncIteration)
        assert len(lat) == self.cfg.num, (len(lat), self.cfg.num)
        begin = ns()
        async for _ in db.scan():
            pass
        un = ns() - begin
        self.emit(summarize("readseq", "aiokv", lat, el, untimed_ns=un))
        for p in stores:
            lat, el = timed_next(p.items().__next__)
            begin = ns()
            for _ in p.items():
                pass
            un = ns() - begin
            self.emit(summarize("readseq", p.name, lat, el, untimed_ns=un))

    async def seekrandom(self, db: aiokv.DB, stores: list[bench_peers.Peer], n: int) -> None:
        quiesce()
        keys = self.seek_keys
        scan = db.scan

        async def seek(k: bytes) -> int:
            it = scan(start=k)
            count = 0
            async for _ in it:
                count += 1
                if count == n:
                    break
            await it.aclose()
            return count

        items = 0
        for k in keys[:100]:  # what a seek returns, checked outside the timed loops
            items = await seek(k)
            assert items == min(n, self.cfg.num - int(k)), (k, items)
        items = sum(min(n, self.cfg.num - int(k)) for k in keys)
        lat, el = await atimed(seek, keys)
        un = await auntimed(seek, keys)
        self.emit(summarize("seekrandom", "aiokv", lat, el, items=items, untimed_ns=un, seek_len=n))
        for p in stores:
            assert all(p.seek(k, n) == min(n, self.cfg.num - int(k)) for k in keys[:100])
            lat, el = timed(lambda k, seek=p.seek: seek(k, n), keys)
            un = untimed(lambda k, seek=p.seek: seek(k, n), keys)
            self.emit(
                summarize("seekrandom", p.name, lat, el, items=items, untimed_ns=un, seek_len=n)
            )

    async def fillsync(self) -> None:
        keys = self.keys[: self.cfg.sync_num]
        values = self.values[: len(keys)]
        quiesce()
        async with aiokv.open(self.path("aiokv-fillsync")) as db:

            async def put_sync(k: bytes, v: bytes) -> None:
                await db.put(k, v, sync=True)

            lat, el = await atimed2(put_sync, keys, values)
        self.emit(summarize("fillsync", "aiokv", lat, el))
        for p in self.peer_runs("fillsync", sync=True):
            lat, el = timed2(p.put, keys, values)
            self.emit(summarize("fillsync", p.name, lat, el))

    async def disk_baseline(self) -> None:
        """The disk's own write+fdatasync of one record, inline and via a one-thread pool."""
        rec = self.rng.randbytes(RECORD_SIZE)
        n = self.cfg.fsync_samples
        quiesce()
        fd = open_append(self.path("fdatasync-inline.dat"))
        try:
            lat, el = timed(lambda _: write_fdatasync(fd, rec), [None] * n)
        finally:
            os.close(fd)
        self.emit(summarize("disk_write_fdatasync", "os", lat, el, bytes=RECORD_SIZE))
        loop = asyncio.get_running_loop()
        fd = open_append(self.path("fdatasync-thread.dat"))
        try:
            with ThreadPoolExecutor(1) as pool:
                lat, el = await atimed(
                    lambda _: loop.run_in_executor(pool, write_fdatasync, fd, rec), [None] * n
                )
        finally:
            os.close(fd)
        self.emit(summarize("disk_write_fdatasync", "os_via_thread", lat, el, bytes=RECORD_SIZE))

    async def sync_writers(self) -> None:
        cfg = self.cfg
        total = cfg.writers * cfg.puts_per_writer
        keys = [key(cfg.num + i) for i in range(total)]
        self.rng.shuffle(keys)
        value = self.values[0]
        quiesce()
        lat = array("q")
        app = lat.append
        async with aiokv.open(self.path("aiokv-syncput")) as db:
            put = db.put

            async def writer(ks: list[bytes]) -> None:
                for k in ks:
                    t0 = ns()
                    await put(k, value, sync=True)
                    app(ns() - t0)

            per = cfg.puts_per_writer
            chunks = [keys[i * per : (i + 1) * per] for i in range(cfg.writers)]
            with count_fdatasync() as syncs, gc_watch() as gcs:
                begin = ns()
                async with asyncio.TaskGroup() as tg:
                    for c in chunks:
                        tg.create_task(writer(c))
                el = ns() - begin
                n_syncs = syncs()
            assert await db.get(keys[-1]) == value
        self.emit(
            summarize(
                "syncput_1000w", "aiokv", lat, el, writers=cfg.writers,
                fdatasync_calls=n_syncs, acks_per_fdatasync=total / max(1, n_syncs),
                # Little's law: with every writer always waiting, mean latency = writers / rate.
                littles_law_mean_us=cfg.writers / (total / el * 1e9) * 1e6, gc=gcs,
            )
        )  # fmt: skip


def quiesce() -> None:
    """Collects, then freezes what is alive (the bench's key lists, open stores) out of later
    collections, so that a workload pays for the garbage collection of its own objects only.
    Without it the harness's millions of keys make each full collection take ~100 ms."""
    gc.collect()
    gc.freeze()


@contextlib.contextmanager
def gc_watch() -> Iterator[dict[str, Any]]:
    """Counts garbage collections per generation, and the longest pause, while inside."""
    stats: dict[str, Any] = {"collections": [0, 0, 0], "max_pause_ms": 0.0}
    started = [0]

    def callback(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = ns()
            return
        stats["collections"][info["generation"]] += 1
        stats["max_pause_ms"] = max(stats["max_pause_ms"], (ns() - started[0]) / 1e6)

    gc.callbacks.append(callback)
    try:
        yield stats
    finally:
        gc.callbacks.remove(callback)


def open_append(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)


def write_fdatasync(fd: int, record: bytes) -> None:
    os.write(fd, record)
    os.fdatasync(fd)


@contextlib.contextmanager
def count_fdatasync() -> Iterator[Callable[[], int]]:
    """Counts os.fdatasync calls (aiokv's OsFileSystem syncs through it) while inside."""
    real = os.fdatasync
    lock = threading.Lock()
    calls = [0]

    def counted(fd: int) -> None:
        with lock:
            calls[0] += 1
        real(fd)

    os.fdatasync = counted
    try:
        yield lambda: calls[0]
    finally:
        os.fdatasync = real


# -- cProfile of the hot paths ------------------------------------------------------------------


async def cprofile_hot_paths(root: str, n: int) -> None:
    import cProfile
    import pstats

    rng = random.Random(7)
    keys = [key(i) for i in range(n)]
    rng.shuffle(keys)
    value = rng.randbytes(VALUE_SIZE)
    async with aiokv.open(os.path.join(root, "cprofile")) as db:
        for title, ops, coro in (
            ("await db.put(k, v)", n, _put_all(db, keys, value)),
            ("await db.get(k) (present)", n, _get_all(db, keys)),
            ("await db.get(k) (missing)", n, _get_all(db, [key(n + i) for i in range(n)])),
            ("await db.get_many(batch of 1000)", n // 1000, _get_many_all(db, keys)),
            ("seek: db.scan(start=k), 100 items", n // 100, _seek_all(db, keys[: n // 100], 100)),
            ("await db.put(k, v, sync=True), 1000 writers", n, _sync_all(db, keys, value)),
        ):
            prof = cProfile.Profile()
            prof.enable()
            await coro
            prof.disable()
            print(f"\n=== {title}: {ops} ops, top functions by own time ===")
            pstats.Stats(prof).sort_stats("tottime").print_stats(12)


async def _put_all(db: aiokv.DB, keys: list[bytes], value: bytes) -> None:
    for k in keys:
        await db.put(k, value)


async def _get_all(db: aiokv.DB, keys: list[bytes]) -> None:
    for k in keys:
        await db.get(k)


async def _get_many_all(db: aiokv.DB, keys: list[bytes]) -> None:
    for i in range(0, len(keys), 1000):
        await db.get_many(keys[i : i + 1000])


async def _seek_all(db: aiokv.DB, keys: list[bytes], n: int) -> None:
    for k in keys:
        it = db.scan(start=k)
        count = 0
        async for _ in it:
            count += 1
            if count == n:
                break
        await it.aclose()


async def _sync_all(db: aiokv.DB, keys: list[bytes], value: bytes) -> None:
    async def writer(ks: list[bytes]) -> None:
        for k in ks:
            await db.put(k, value, sync=True)

    async with asyncio.TaskGroup() as tg:
        for i in range(1000):
            tg.create_task(writer(keys[i::1000]))


# -- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    for f in Config.__dataclass_fields__:
        if f != "seed":
            ap.add_argument("--" + f.replace("_", "-"), type=int, dest=f, help="overrides profile")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--workloads", help="comma-separated subset (default: all)")
    ap.add_argument("--peers", default=",".join(bench_peers.PEER_NAMES), help="'' for none")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")
    ap.add_argument("--dir", help="parent of the temp directory (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--out", help="results file (default: bench/results/<utc time>-<profile>.json)")
    ap.add_argument("--cprofile", type=int, metavar="N", help="profile get/put over N ops, exit")
    return ap.parse_args(argv)


def make_config(args: argparse.Namespace) -> Config:
    cfg = PROFILES[args.profile]
    given = {f: getattr(args, f) for f in Config.__dataclass_fields__ if getattr(args, f)}
    cfg = replace(cfg, **given)
    if args.num:  # a smaller store caps what reads from it
        cfg = replace(cfg, seeks=min(cfg.seeks, args.num), sync_num=min(cfg.sync_num, args.num))
        if not args.reads:
            cfg = replace(cfg, reads=args.num)
    return cfg


def event_loop_factory(no_uvloop: bool) -> tuple[Callable[[], asyncio.AbstractEventLoop], str]:
    if not no_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop, f"uvloop {uvloop.__version__}"
    return asyncio.new_event_loop, "asyncio (default selector loop)"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = make_config(args)
    only = set(WORKLOADS)
    if args.workloads:
        only = {w.strip() for w in args.workloads.split(",") if w.strip()}
        unknown = only - set(WORKLOADS)
        if unknown:
            print(f"unknown workloads: {sorted(unknown)}; known: {WORKLOADS}", file=sys.stderr)
            return 2
    wanted = [] if args.no_peers else [p for p in args.peers.split(",") if p]
    peers = bench_peers.available(wanted)
    factory, loop_name = event_loop_factory(args.no_uvloop)
    root = tempfile.mkdtemp(prefix="aiokv-bench-", dir=args.dir)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    meta = bench_report.machine(root, loop_name, repo)
    if meta["data_fs"].startswith(("tmpfs", "ramfs")):
        print(f"warning: {root} is on {meta['data_fs']}, not a disk; use --dir", file=sys.stderr)
    try:
        if args.cprofile:
            with asyncio.Runner(loop_factory=factory) as runner:
                runner.run(cprofile_hot_paths(root, args.cprofile))
            return 0
        print(
            f"aiokv db_bench, profile {args.profile}: {asdict(cfg)}\n"
            f"{meta['nproc']} CPUs ({meta['cpu_model']}), Python {meta['python']}, {loop_name}, "
            f"data in {root} on {meta['data_fs']}; peers: {', '.join(peers) or 'none'}"
            f" (skipped: {', '.join(sorted(set(wanted) - set(peers))) or 'none'})",
            flush=True,
        )
        bench = Bench(cfg, root, peers)
        started = datetime.now(UTC)
        t0 = time.monotonic()
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(bench.run(only))
        wall = time.monotonic() - t0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    results = bench.results
    bench_report.add_ratios(results, peers)
    tgt = bench_report.targets(results)
    doc = {
        "date": started.isoformat(timespec="seconds"),
        "profile": args.profile,
        "config": asdict(cfg),
        "machine": meta,
        "workloads": sorted(only, key=WORKLOADS.index),
        "peers": {p: bench_peers.config(p) for p in peers},
        "peers_skipped": sorted(set(wanted) - set(peers)),
        "wall_seconds": round(wall, 3),
        "results": results,
        "targets": tgt,
    }
    out = args.out or os.path.join(
        repo, "bench", "results", f"{started:%Y%m%dT%H%M%SZ}-{args.profile}.json"
    )
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"\n{len(results)} results in {wall:.1f} s; written to {out}\n")
    print(bench_report.markdown_table(results, peers))
    print()
    print(bench_report.markdown_targets(tgt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
