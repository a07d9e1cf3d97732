#!/usr/bin/env python3
"""db_bench for aiokv: LevelDB-style workloads over the awaitable API, with baselines and peers
measured in the same run so that every figure can be read as a ratio on a noisy machine.

    .venv/bin/python bench/db_bench.py --profile quick      # `make bench`, a minute or two
    .venv/bin/python bench/db_bench.py --profile full
    .venv/bin/python bench/db_bench.py --cprofile 100000    # where get, put, seek, merge time goes
    .venv/bin/python bench/db_bench.py --workloads session --no-peers --cprofile-run

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
  mergerandom    `merges` `await db.merge(k, b"1")` over `counters` uniform keys (Int64Add on the
                 default family); every counter is then checked against the model (a wrong total
                 fails the run); then `merge_reads` gets of counter keys while they hold operands
                 (mergerandom_get_operands) and after flush + compact_range (_get_compacted);
                 mergerandom_put_baseline puts the same keys and bytes (vs_put: the ratio)
  session        YCSB-A: `sessions` keys of ~200-byte JSON put with ttl=`session_ttl_s`, then
                 `session_ops` ops, 50% get / 50% put(ttl=...), keys zipfian (theta 0.99, a
                 precomputed table, ranks scattered over the keys); a fake clock advances
                 `session_tick_us` per op (the defaults span 2x the ttl, so cold sessions expire);
                 every read's hit or miss is checked against a model of the expiry times;
                 session_read / session_update give each kind's latencies, their ops/s is
                 of the calls alone (1 / mean latency)
  fifo           a column family with compaction="fifo", a ttl and max_table_files_size R =
                 `fifo_bytes` (memtable R / `fifo_buffers`) takes 10 R of 116-byte entries;
                 first half: the fake clock makes the ttl span 2 R of writes (the size bound
                 drops tables), second half 0.5 R (the ttl drops them); table bytes (sum of
                 lN_bytes) are sampled every FIFO_SAMPLE writes: flat = max <= 1.2 R + one memtable
                 (PASS/FAIL); also the ttl phase's level over its last half, fifo_drops per
                 phase, and write amp = bytes_written / user bytes (keys + values; no WAL)
The last three run on aiokv only (no peer has merge operators, TTLs or FIFO), each loop bounded by
its count and by `time_limit` seconds (a loop cut short says so: `truncated`); one that has
not finished after HANG_LIMITS x `time_limit` is a hang, and fails the run with its task stacks.
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
import faulthandler
import gc
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
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
import aiokv.merge

VALUE_SIZE = 100
VALUE_POOL = 1024  # distinct values cycled through: memory stays flat, bytes are not all equal
RECORD_SIZE = 150  # the issue's disk baseline: one small WAL-record-sized write + fdatasync
CHUNK = 4096  # ops between two deadline checks: the check costs nothing measurable per op
FIFO_SAMPLE = 512  # fifo writes between two samples of the table bytes (well under a memtable)
ZIPF_THETA = 0.99  # YCSB's default skew
TARGET_MERGE = 250_000.0  # issue 4: merges/s
FIFO_FLAT = 1.2  # issue 4: FIFO table bytes stay within 1.2 R (plus one memtable)
HANG_LIMITS = 10  # an issue-4 workload runs at most ~8 bounded loops, and some waits between
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
    merges: int
    counters: int
    merge_reads: int
    sessions: int
    session_ops: int
    session_ttl_s: int
    session_tick_us: int
    fifo_bytes: int
    fifo_buffers: int
    time_limit: int  # seconds, for each load or op loop of the issue-4 workloads
    seed: int = 301


PROFILES = {
    "quick": Config(
        num=100_000, reads=100_000, batches=1_000, batch=1_000, seeks=10_000, seek_len=100,
        sync_num=1_000, writers=1_000, puts_per_writer=100, fsync_samples=2_000,
        merges=200_000, counters=10_000, merge_reads=100_000, sessions=10_000,
        session_ops=200_000, session_ttl_s=1800, session_tick_us=18_000,
        fifo_bytes=4 << 20, fifo_buffers=8, time_limit=120,
    ),
    "full": Config(
        num=1_000_000, reads=1_000_000, batches=10_000, batch=1_000, seeks=100_000, seek_len=100,
        sync_num=10_000, writers=1_000, puts_per_writer=1_000, fsync_samples=10_000,
        merges=1_000_000, counters=50_000, merge_reads=1_000_000, sessions=100_000,
        session_ops=1_000_000, session_ttl_s=1800, session_tick_us=3_600,
        fifo_bytes=16 << 20, fifo_buffers=8, time_limit=600,
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
    "mergerandom",
    "session",
    "fifo",
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
        if only & {"mergerandom", "session", "fifo"} and "readrandom" not in only:
            await self.dict_await_baseline(self.read_keys)  # the ceiling, just before them
        if "mergerandom" in only:
            await self.watched("mergerandom", self.mergerandom())
        if "session" in only:
            await self.watched("session", self.session())
        if "fifo" in only:
            await self.watched("fifo", self.fifo())

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
            await self.dict_await_baseline(keys)
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

    async def dict_await_baseline(self, keys: list[bytes]) -> None:
        """`await` of a coroutine doing one dict lookup: the ceiling of one await per op."""
        table = dict(zip(self.keys, self.values, strict=True))
        lookup = table.get

        async def dict_get(k: bytes) -> bytes | None:
            return lookup(k)

        lat, el = await atimed(dict_get, keys)
        un = await auntimed(dict_get, keys)
        self.emit(summarize("baseline_dict_await", "python", lat, el, untimed_ns=un))

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

    # -- issue 4: merge operators, TTL sessions, FIFO -----------------------------------------

    def deadline(self) -> int:
        return ns() + self.cfg.time_limit * 1_000_000_000

    async def watched(self, name: str, work: Awaitable[None]) -> None:
        """Runs a workload whose waits outside its loops (flush, compact_range, close) could
        hang: past HANG_LIMITS time limits, the asyncio task stacks are printed and the run
        fails; if even the cancellation hangs, faulthandler prints the threads and exits."""
        limit = HANG_LIMITS * self.cfg.time_limit
        stacks = asyncio.get_running_loop().call_later(limit, print_task_stacks)
        faulthandler.dump_traceback_later(limit + 60, exit=True)
        try:
            async with asyncio.timeout(limit + 1):
                await work
        except TimeoutError:
            raise BenchFailure(f"{name} did not finish in {limit} s: a hang?") from None
        finally:
            stacks.cancel()
            faulthandler.cancel_dump_traceback_later()

    async def mergerandom(self) -> None:
        """Counter increments, checked whole; then gets over the counters, before and after
        their operands are folded by a flush and a full compaction."""
        cfg = self.cfg
        rng = random.Random(cfg.seed + 4)
        idx = [rng.randrange(cfg.counters) for _ in range(cfg.merges)]
        keys = [counter_key(i) for i in idx]  # one new object per op, as a request's key is
        ones = [b"1"] * len(keys)
        read_keys = [counter_key(rng.randrange(cfg.counters)) for _ in range(cfg.merge_reads)]
        counter = aiokv.merge.Int64Add()
        quiesce()
        async with aiokv.open(self.path("aiokv-merge"), merge_operator=counter) as db:
            with gc_watch() as gcs:
                lat, el = await atimed2_bounded(db.merge, keys, ones, self.deadline())
            done = len(lat)
            expected = counter_model(idx[:done])
            await check_counters(db, expected, done, "after the merges")
            before = db.stats()
            quiesce()
            async with aiokv.open(self.path("aiokv-merge-untimed"), merge_operator=counter) as db2:
                un, done_un = await auntimed2_bounded(db2.merge, keys, ones, self.deadline())
                await check_counters(db2, counter_model(idx[:done_un]), done_un, "(untimed pass)")
            # The same keys and bytes as plain puts (default family, no operator): the write
            # path merge is read against, measured beside it (an untimed second pass
            # overwrites, as `overwrite` does).
            quiesce()
            async with aiokv.open(self.path("aiokv-merge-puts")) as db3:
                plat, pel = await atimed2_bounded(db3.put, keys, ones, self.deadline())
                pun, pdone = await auntimed2_bounded(db3.put, keys, ones, self.deadline())
            puts = summarize(
                "mergerandom_put_baseline", "aiokv", plat, pel,
                untimed_ns=pun * len(plat) // max(1, pdone),
            )  # fmt: skip
            m = summarize(
                "mergerandom", "aiokv", lat, el, untimed_ns=un * done // max(1, done_un),
                counters=cfg.counters, truncated=done < len(keys) or done_un < len(keys),
                flushes=before["flushes"], gc=gcs,
            )  # fmt: skip
            m["vs_put"] = bench_report.rate(m) / bench_report.rate(puts)
            self.emit(m)
            self.emit(puts)
            for phase in ("operands", "compacted"):
                if phase == "compacted":
                    await db.flush()
                    await db.compact_range()
                    await check_counters(db, expected, done, "after flush + compact_range")
                quiesce()
                lat, el = await atimed_bounded(db.get, read_keys, self.deadline())
                un = await auntimed(db.get, read_keys[: len(lat)])
                for k in read_keys[:100]:  # the bench reads what it thinks it reads
                    want = expected.get(k)
                    got = await db.get(k)
                    if got != (None if want is None else b"%d" % want):
                        raise BenchFailure(f"get({k!r}) after merges: {got!r}, expected {want}")
                s = db.stats()
                levels = {f"l{n}_tables": s[f"l{n}_tables"] for n in range(7)}
                self.emit(
                    summarize(
                        f"mergerandom_get_{phase}", "aiokv", lat, el, untimed_ns=un,
                        operands_per_counter=done / max(1, len(expected)),
                        truncated=len(lat) < len(read_keys), flushes=s["flushes"], **levels,
                    )
                )  # fmt: skip

    async def session(self) -> None:
        """YCSB-A over expiring sessions, on a fake clock; every read checked against a model."""
        cfg = self.cfg
        rng = random.Random(cfg.seed + 5)
        n_keys, n_ops = cfg.sessions, cfg.session_ops
        ttl, tick = float(cfg.session_ttl_s), cfg.session_tick_us / 1e6
        pool = [session_value(rng, i) for i in range(VALUE_POOL)]
        load = [(session_key(i), pool[i % VALUE_POOL]) for i in range(n_keys)]
        ids = zipf_ids(rng, n_keys, n_ops, ZIPF_THETA)
        keys = [session_key(i) for i in ids]
        is_read = bytes(rng.random() < 0.5 for _ in range(n_ops))
        values = [pool[rng.randrange(VALUE_POOL)] for _ in range(n_ops)]
        runs: list[tuple[array[int], bytearray, int, int, dict[str, int]]] = []
        engine: dict[str, int] = {}
        for tag in ("session", "session-untimed"):
            quiesce()
            clock = FakeClock()
            async with aiokv.open(self.path(f"aiokv-{tag}"), clock=clock) as db:
                loaded = await session_load(db, clock, tick, ttl, load, self.deadline())
                if loaded < n_keys:
                    raise BenchFailure(f"session: loaded {loaded} of {n_keys} in time_limit")
                op = session_ops_timed if tag == "session" else session_ops_untimed
                with gc_watch() as gcs:
                    lat, hits, el = await op(
                        db, clock, tick, ttl, keys, is_read, values, self.deadline()
                    )
                runs.append((lat, hits, el, len(hits), gcs))
                if not engine:
                    engine = pick_stats(db.stats(), "flushes", "compactions", *STALLS)
        (lat, hits, el, done, gcs), (_, hits_un, el_un, done_un, _) = runs
        want = session_model(n_keys, ids[:done], is_read[:done], tick, ttl)
        if hits != want or hits_un[:done_un] != want[:done_un]:
            bad = next(i for i in range(done) if hits[i] != want[i] or hits_un[i] != want[i])
            raise BenchFailure(
                f"session: op {bad} read {keys[bad]!r}: hit {hits[bad]} (untimed pass "
                f"{hits_un[bad]}), the model says {want[bad]}"
            )
        flags = is_read[:done]
        n_reads = flags.count(1)
        n_hits = sum(itertools.compress(hits, flags))
        common: dict[str, Any] = {
            "hit_ratio": n_hits / max(1, n_reads), "reads": n_reads,
            "read_misses": n_reads - n_hits,
            "sessions": n_keys, "ttl_s": ttl, "tick_us": cfg.session_tick_us,
            "fake_seconds": (n_keys + done) * tick, "zipf_theta": ZIPF_THETA,
            "truncated": done < n_ops or done_un < n_ops, **engine,
        }  # fmt: skip
        self.emit(
            summarize("session", "aiokv", lat, el, untimed_ns=el_un * done // max(1, done_un),
                      **common, gc=gcs)
        )  # fmt: skip
        for name, sel in (("session_read", flags), ("session_update", bytes(1 - f for f in flags))):
            part = array("q", itertools.compress(lat, sel))
            # ops/s of the calls alone (1 / mean latency): they share one loop with the others.
            self.emit(summarize(name, "aiokv", part, sum(part), **common))
        print(
            f"{'':<20} session hit ratio {common['hit_ratio']:.3f} ({n_reads - n_hits:,} of "
            f"{n_reads:,} reads found their session expired), every read as the model says",
            flush=True,
        )

    async def fifo(self) -> None:
        """10 R of writes into a FIFO family bounded at R bytes: do its tables stay flat?"""
        cfg = self.cfg
        r_bytes = cfg.fifo_bytes
        wbs = max(16 << 10, r_bytes // cfg.fifo_buffers)
        entry = 16 + VALUE_SIZE
        n = -(-10 * r_bytes // entry)
        ttl = 3600.0
        # The ttl spans 2 R of writes in the first half (size drops), 0.5 R in the second.
        ticks = (ttl / (2 * r_bytes / entry), ttl / (0.5 * r_bytes / entry))
        clock = FakeClock()
        quiesce()
        async with aiokv.open(self.path("aiokv-fifo"), clock=clock) as db:
            cf = await db.create_column_family(
                "events", compaction="fifo", ttl=ttl, max_table_files_size=r_bytes,
                write_buffer_size=wbs,
            )  # fmt: skip
            with gc_watch() as gcs:
                lat, el, samples = await fifo_writes(
                    db, cf, clock, n, ticks, self.values, self.deadline()
                )
            done = len(lat)
            await db.flush()
            samples.append((done, table_bytes(db.stats(cf=cf)), db.stats()["fifo_drops"]))
            s = db.stats(cf=cf)
            last, first = key(done - 1), key(0)
            if await cf.get(last) is None or await cf.get(first) is not None:
                raise BenchFailure("fifo: the newest key is gone or the oldest is still there")
        half = n // 2
        # The second half's first samples still hold the first half's tables; its last half
        # (from 3/4 of the run) shows where the ttl alone keeps the family.
        by_phase = [[x for x in samples if x[0] <= half], [x for x in samples if x[0] > half]]
        steady = [b for d, b, _ in samples if d > half + (n - half) // 2]
        peak = max(b for _, b, _ in samples)
        bound = FIFO_FLAT * r_bytes + wbs
        ok = peak <= bound
        user = done * entry
        fields: dict[str, Any] = {
            "R_bytes": r_bytes, "write_buffer_size": wbs, "user_bytes": user,
            "max_table_bytes_over_R": peak / r_bytes, "final_table_bytes_over_R":
            samples[-1][1] / r_bytes, "bound_over_R": bound / r_bytes, "flat": ok,
            "fifo_drops": s["fifo_drops"],
            "fifo_drops_size_phase": max((d for _, _, d in by_phase[0]), default=0),
            "max_over_R_size_phase": max((b for _, b, _ in by_phase[0]), default=0) / r_bytes,
            "max_over_R_ttl_phase": max((b for _, b, _ in by_phase[1]), default=0) / r_bytes,
            "max_over_R_ttl_steady": max(steady, default=0) / r_bytes,
            "write_amp": s["bytes_written"] / user, "flushes": s["flushes"],
            "ttl_gc_tasks": s["ttl_gc_tasks"], **pick_stats(s, *STALLS),
            "compactions": s["compactions"], "samples": len(samples), "truncated": done < n,
            "gc": gcs,
        }  # fmt: skip
        fields["fifo_drops_ttl_phase"] = fields["fifo_drops"] - fields["fifo_drops_size_phase"]
        self.emit(summarize("fifo", "aiokv", lat, el, **fields))
        print(
            f"{'':<20} fifo {'PASS' if ok else 'FAIL'}: max table bytes {peak / r_bytes:.3f} R "
            f"(bound {bound / r_bytes:.3f} R = {FIFO_FLAT} R + one memtable), final "
            f"{fields['final_table_bytes_over_R']:.3f} R, {s['fifo_drops']} tables dropped "
            f"({fields['fifo_drops_size_phase']} in the size phase), ttl phase steady max "
            f"{fields['max_over_R_ttl_steady']:.3f} R, write amp {fields['write_amp']:.3f}",
            flush=True,
        )


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


# -- issue 4 helpers ----------------------------------------------------------------------------


def print_task_stacks() -> None:
    """Every task's chain of awaits, outermost first (Task.print_stack shows one frame)."""
    print("\n=== asyncio tasks still running ===", file=sys.stderr)
    for t in asyncio.all_tasks():
        print(f"task {t.get_name()}:", file=sys.stderr)
        aw: Any = t.get_coro()
        while aw is not None:
            frame = getattr(aw, "cr_frame", None) or getattr(aw, "gi_frame", None)
            if frame is not None:
                code = frame.f_code
                print(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}", file=sys.stderr)
            aw = getattr(aw, "cr_await", None) or getattr(aw, "gi_yieldfrom", None)


class BenchFailure(Exception):
    """A workload's data check failed: the run fails, and no figure is kept."""


class FakeClock:
    """The store's clock: seconds since the epoch, advanced by the workload, not by time."""

    __slots__ = ("t",)

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def counter_key(i: int) -> bytes:
    return b"counter:%08d" % i


def session_key(i: int) -> bytes:
    return b"session:%08d" % i


def session_value(rng: random.Random, i: int) -> bytes:
    """About 200 bytes of session JSON."""
    doc = {
        "user_id": i, "csrf": rng.randbytes(16).hex(), "created": 1_700_000_000 + i,
        "cart": [rng.randrange(10**6) for _ in range(4)], "locale": "en-GB",
        "flash": "x" * rng.randrange(45, 65),
    }  # fmt: skip
    return json.dumps(doc, separators=(",", ":")).encode()


def zipf_ids(rng: random.Random, n_keys: int, n_ops: int, theta: float) -> list[int]:
    """n_ops key ids, rank r drawn with weight 1/(r+1)**theta through a cumulative table
    (one bisect per draw, inside random.choices), then scattered over the ids so that the
    hot keys are not neighbours (YCSB's scrambled zipfian)."""
    cum = list(itertools.accumulate((r + 1) ** -theta for r in range(n_keys)))
    scatter = list(range(n_keys))
    rng.shuffle(scatter)
    return [scatter[r] for r in rng.choices(range(n_keys), cum_weights=cum, k=n_ops)]


def counter_model(idx: list[int]) -> dict[bytes, int]:
    return {counter_key(i): c for i, c in Counter(idx).items()}


async def check_counters(db: aiokv.DB, expected: dict[bytes, int], total: int, when: str) -> None:
    """Every counter, by a scan and by get_many, equals the model; the sum is the merge count."""
    scanned = {k: int(v) async for k, v in db.scan(prefix=b"counter:")}
    ks = list(expected)
    got = await db.get_many(ks)
    by_get = {k: int(v) for k, v in zip(ks, got, strict=True) if v is not None}
    for name, seen in (("scan", scanned), ("get", by_get)):
        if seen != expected or sum(seen.values()) != total:
            wrong = sorted(
                k for k in expected.keys() | seen.keys() if seen.get(k) != expected.get(k)
            )
            raise BenchFailure(
                f"mergerandom {when}: counters by {name} sum to {sum(seen.values())}, "
                f"expected {total}; {len(wrong)} wrong, e.g. {wrong[:3]}"
            )


async def atimed2_bounded(
    fn: Callable[[bytes, bytes], Awaitable[Any]],
    keys: list[bytes],
    values: list[bytes],
    deadline: int,
) -> tuple[array[int], int]:
    """atimed2 that stops at the first chunk boundary past the deadline."""
    n = len(keys)
    lat = zeros(n)
    begin = ns()
    done = 0
    while done < n and ns() < deadline:
        for i in range(done, min(n, done + CHUNK)):
            k, v = keys[i], values[i]
            t0 = ns()
            await fn(k, v)
            lat[i] = ns() - t0
        done = min(n, done + CHUNK)
    return lat[:done], ns() - begin


async def auntimed2_bounded(
    fn: Callable[[bytes, bytes], Awaitable[Any]],
    keys: list[bytes],
    values: list[bytes],
    deadline: int,
) -> tuple[int, int]:
    """auntimed2 in chunks, stopping past the deadline: (elapsed ns, ops done)."""
    begin = ns()
    done = 0
    for lo in range(0, len(keys), CHUNK):
        if ns() >= deadline:
            break
        for k, v in zip(keys[lo : lo + CHUNK], values[lo : lo + CHUNK], strict=True):
            await fn(k, v)
        done = min(len(keys), lo + CHUNK)
    return ns() - begin, done


async def atimed_bounded(
    fn: Callable[[Any], Awaitable[Any]], args: list[Any], deadline: int
) -> tuple[array[int], int]:
    n = len(args)
    lat = zeros(n)
    begin = ns()
    done = 0
    while done < n and ns() < deadline:
        for i in range(done, min(n, done + CHUNK)):
            a = args[i]
            t0 = ns()
            await fn(a)
            lat[i] = ns() - t0
        done = min(n, done + CHUNK)
    return lat[:done], ns() - begin


async def session_load(
    db: aiokv.DB,
    clock: FakeClock,
    tick: float,
    ttl: float,
    items: list[tuple[bytes, bytes]],
    deadline: int,
) -> int:
    put = db.put
    done = 0
    for lo in range(0, len(items), CHUNK):
        if ns() >= deadline:
            break
        for k, v in items[lo : lo + CHUNK]:
            clock.t += tick
            await put(k, v, ttl=ttl)
        done = min(len(items), lo + CHUNK)
    return done


async def session_ops_timed(
    db: aiokv.DB,
    clock: FakeClock,
    tick: float,
    ttl: float,
    keys: list[bytes],
    is_read: bytes,
    values: list[bytes],
    deadline: int,
) -> tuple[array[int], bytearray, int]:
    """The op loop with a timer pair around each call: (latencies, hit per op, elapsed)."""
    get, put = db.get, db.put
    n = len(keys)
    lat = zeros(n)
    hits = bytearray(n)
    begin = ns()
    done = 0
    while done < n and ns() < deadline:
        for i in range(done, min(n, done + CHUNK)):
            clock.t += tick
            if is_read[i]:
                t0 = ns()
                v = await get(keys[i])
                lat[i] = ns() - t0
                hits[i] = v is not None
            else:
                t0 = ns()
                await put(keys[i], values[i], ttl=ttl)
                lat[i] = ns() - t0
        done = min(n, done + CHUNK)
    return lat[:done], hits[:done], ns() - begin


async def session_ops_untimed(
    db: aiokv.DB,
    clock: FakeClock,
    tick: float,
    ttl: float,
    keys: list[bytes],
    is_read: bytes,
    values: list[bytes],
    deadline: int,
) -> tuple[array[int], bytearray, int]:
    """The same op loop with no timer calls; hits are still recorded (one store per op)."""
    get, put = db.get, db.put
    n = len(keys)
    hits = bytearray(n)
    begin = ns()
    done = 0
    while done < n and ns() < deadline:
        for i in range(done, min(n, done + CHUNK)):
            clock.t += tick
            if is_read[i]:
                hits[i] = await get(keys[i]) is not None
            else:
                await put(keys[i], values[i], ttl=ttl)
        done = min(n, done + CHUNK)
    return array("q"), hits[:done], ns() - begin


def session_model(
    n_keys: int, ids: list[int], is_read: bytes, tick: float, ttl: float
) -> bytearray:
    """Which reads should hit: the same float clock steps and millisecond rounding as the
    store (a value is visible while its expiry ms > now ms)."""
    t = FakeClock().t
    expiry = [0] * n_keys
    for i in range(n_keys):
        t += tick
        expiry[i] = int((t + ttl) * 1000)
    hits = bytearray(len(ids))
    for j, (i, r) in enumerate(zip(ids, is_read, strict=True)):
        t += tick
        if r:
            hits[j] = expiry[i] > int(t * 1000)
        else:
            expiry[i] = int((t + ttl) * 1000)
    return hits


STALLS = ("stalls_slowdown", "stalls_stop", "stall_micros")


def pick_stats(stats: dict[str, int], *names: str) -> dict[str, int]:
    return {n: stats[n] for n in names}


def table_bytes(stats: dict[str, int]) -> int:
    return sum(stats[f"l{n}_bytes"] for n in range(7))


async def fifo_writes(
    db: aiokv.DB,
    cf: aiokv.ColumnFamily,
    clock: FakeClock,
    n: int,
    ticks: tuple[float, float],
    values: list[bytes],
    deadline: int,
) -> tuple[array[int], int, list[tuple[int, int, int]]]:
    """n puts of key(i) into `cf`, the clock advancing ticks[0] per put in the first half and
    ticks[1] in the second; every FIFO_SAMPLE puts, (puts done, table bytes, fifo drops) is
    sampled (keys are made and samples taken outside the elapsed time)."""
    put = cf.put
    lat = zeros(n)
    samples: list[tuple[int, int, int]] = []
    elapsed = 0
    done = 0
    nv = len(values)
    while done < n and ns() < deadline:
        hi = min(n, done + FIFO_SAMPLE)
        tick = ticks[0] if done < n // 2 else ticks[1]
        ks = [key(i) for i in range(done, hi)]
        begin = ns()
        for i in range(done, hi):
            clock.t += tick
            t0 = ns()
            await put(ks[i - done], values[i % nv])
            lat[i] = ns() - t0
        elapsed += ns() - begin
        done = hi
        s = db.stats(cf=cf)
        samples.append((done, table_bytes(s), s["fifo_drops"]))
    return lat[:done], elapsed, samples


def issue4_targets(results: list[Result]) -> list[dict[str, Any]]:
    """Issue 4's targets: merges/s (absolute, and as a ratio to the dict-await ceiling of the
    same run, scaled as bench_report does), and the FIFO family's flatness."""
    out: list[dict[str, Any]] = []
    m = bench_report.find(results, "mergerandom", "aiokv")
    ceiling = bench_report.find(results, "baseline_dict_await", "python")
    if m is not None:
        got = bench_report.rate(m)
        row: dict[str, Any] = {
            "target": "await db.merge >= 250K merges/s",
            "workload": "mergerandom",
            "measured": got,
            "absolute_target": TARGET_MERGE,
            "absolute_met": got >= TARGET_MERGE,
            "ratio_target": TARGET_MERGE / bench_report.REF_DICT_AWAIT,
        }
        if ceiling is not None:
            row["measured_ratio"] = got / bench_report.rate(ceiling)
            row["ratio_met"] = row["measured_ratio"] >= row["ratio_target"]
        out.append(row)
    f = bench_report.find(results, "fifo", "aiokv")
    if f is not None:
        out.append({
            "target": "FIFO max table bytes <= 1.2 R + one memtable (÷ R)",
            "workload": "fifo",
            "measured": f["max_table_bytes_over_R"],
            "ratio_target": f["bound_over_R"],
            "ratio_met": f["flat"],
        })  # fmt: skip
    return out


@contextlib.contextmanager
def profiled(on: bool) -> Iterator[None]:
    """When on, profiles the block and prints the top functions by own and by total time."""
    if not on:
        yield
        return
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        st = pstats.Stats(prof)
        print("\n=== cProfile of the run: top functions by own time ===")
        st.sort_stats("tottime").print_stats(25)
        print("=== by cumulative time, aiokv only ===")
        st.sort_stats("cumulative").print_stats("aiokv", 25)


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
    counters = [counter_key(rng.randrange(max(1, n // 20))) for _ in range(n)]
    mdb = aiokv.open(os.path.join(root, "cprofile-merge"), merge_operator=aiokv.merge.Int64Add())
    async with mdb as db:
        for title, coro in (
            (f"await db.merge(k, b'1'), Int64Add, {n // 20} counters", _merge_all(db, counters)),
            ("await db.get(k), 20 operands per counter, unflushed", _get_all(db, counters)),
        ):
            prof = cProfile.Profile()
            prof.enable()
            await coro
            prof.disable()
            print(f"\n=== {title}: {n} ops, top functions by own time ===")
            pstats.Stats(prof).sort_stats("tottime").print_stats(12)


async def _merge_all(db: aiokv.DB, keys: list[bytes]) -> None:
    for k in keys:
        await db.merge(k, b"1")


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
    ap.add_argument(
        "--cprofile-run", action="store_true", help="run under cProfile; print the top costs"
    )
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
        with asyncio.Runner(loop_factory=factory) as runner, profiled(args.cprofile_run):
            try:
                runner.run(bench.run(only))
            except BenchFailure as e:
                print(f"\nFAILED: {e}", file=sys.stderr, flush=True)
                return 1
        wall = time.monotonic() - t0
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    results = bench.results
    bench_report.add_ratios(results, peers)
    tgt = bench_report.targets(results) + issue4_targets(results)
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
