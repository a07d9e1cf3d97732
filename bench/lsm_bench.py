#!/usr/bin/env python3
"""lsm_bench for aiokv: the LSM persistence figures of issue 3, on a real directory, with the
peers measured in the same run so that every figure can also be read as a ratio.

    .venv/bin/python bench/lsm_bench.py --profile quick     # 200K keys, about a minute
    .venv/bin/python bench/lsm_bench.py --profile full      # 2M keys, several minutes
    .venv/bin/python bench/lsm_bench.py --keys 50000 --scale 64 --no-peers

Keys are 16 bytes (`%016d` of an index, so index order is key order), values 100 bytes, one
writer coroutine, default durability.  The store is several memtables large: `--scale N`
divides write_buffer_size, target_file_size and max_bytes_for_level_base by N (quick: 16, so
200K keys are ~9 memtables of 4 MiB; full: 1, so 2M keys are ~5 memtables of 64 MiB).  The
block cache is 1 GiB, enough to hold the data.  Figures, in the order they are taken:

  fillrandom    `keys` awaited puts in random order (a permutation: every key ends up present),
                flushes and compactions included; then `settle`, the wall time until the flush
                and compaction tasks are idle, and `compact_range`, `await db.compact_range()`.
  space         after compact_range: *.sst + *.log + MANIFEST-* bytes over the logical bytes
                (sum of len(key) + len(value) of the live keys); again after a close and reopen.
  verify        a full scan and a get of every key (the warm-up pass) compared with what was
                written: data missing after a flush or compaction fails the run.
  readrandom    `reads` gets of random present keys, warm cache.
  readmissing   `reads` gets of absent keys inside the key range (a present key with its last
                digit replaced by "x": same length, so filters, not range checks, answer).
  scan1000      `scans` scans from a random present key taking `scan_len` items, then aclose.
  compaction    the store is reopened with a small memtable (`busy_write_buffer_size`) and
                l0_compaction_trigger 2; gets of random keys run in chunks of `yield_every`,
                each chunk followed by `await asyncio.sleep(0)` (compaction runs as cooperative
                slices on the same loop), first with the background idle (`get_idle`), then
                while a writer coroutine overwrites `overwrites` random keys (`get_during_
                compaction`: only chunks that started while a compaction task held the engine's
                compaction lock).  The window closes once the writer is done and either the
                background is idle or `during_gets` gets were sampled during compactions and
                one compaction finished in the window (the counter moves at the end); the
                backlog then finishes with no get load (`settle_after_seconds`).  Reported:
                both p99s and their ratio, the loop stalls (the time each sleep(0) took: how
                long other tasks held the loop), the garbage collector's longest pause, and the
                writer's put latencies.  Every get must find its key, and the store must hold
                exactly what was written once the writer is done.
Peers (bench_peers.py, whichever are importable) run fillrandom, readrandom, readmissing and
scan1000 on fresh stores with the same keys, synchronously, one call per op; their store size
after the fill (and after their own compact_range, where they have one) is reported too.

Every op is timed with `time.perf_counter_ns()` around its `await` (the call for the peers);
latencies are nearest-rank p50/p99/p999.  Reads and scans run a second, untimed pass (ops/s);
fills run once (timed: a fill costs ~10 µs an op, the timer 0.15 µs).  Every loop is bounded by
a count, and the open-ended waits (settle, the compaction window) by `time_limit` seconds.
The compaction figures peek at two private attributes of the engine (its compaction lock and
the event that wakes the compaction task): no public API says whether a compaction is running.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench_peers
import bench_report
from bench_report import Result, line, percentile, summarize
from db_bench import (
    atimed,
    atimed2,
    auntimed,
    event_loop_factory,
    gc_watch,
    key,
    ns,
    quiesce,
    timed,
    timed2,
    timer_overhead,
    untimed,
)

import aiokv

VALUE_SIZE = 100
VALUE_POOL = 1024  # distinct values cycled through: memory stays flat, bytes are not all equal
WARM_BATCH = 1000  # keys per get_many in the warm-up and verify pass
POLL_S = 0.005  # how often settle() looks at the background tasks
TARGET_SPACE_RATIO = 1.2  # the issue's: store bytes after compact_range <= 1.2x logical bytes
TARGET_COMPACTION_P99_RATIO = 3.0  # the issue's: get p99 during compaction <= 3x idle p99
STAT_KEYS = (
    "flushes", "compactions", "trivial_moves", "stalls_slowdown", "stalls_stop", "stall_micros",
    "bytes_written", "compaction_bytes_read", "compaction_bytes_written", "block_cache_hits",
    "block_cache_misses", "filter_useful", "filter_useless", "filter_positive", "table_opens",
)  # fmt: skip


@dataclass(frozen=True)
class Config:
    keys: int
    reads: int
    scans: int
    scan_len: int
    overwrites: int
    during_gets: int  # gets wanted while a compaction runs (20x that bounds the window)
    scale: int
    busy_write_buffer_size: int
    busy_l0_trigger: int
    yield_every: int
    time_limit: float  # seconds, for each open-ended wait
    block_cache_size: int = 1 << 30
    seed: int = 303


PROFILES = {
    "quick": Config(
        keys=200_000, reads=200_000, scans=1_000, scan_len=1_000, overwrites=50_000,
        during_gets=1_000_000, scale=16, busy_write_buffer_size=1 << 20, busy_l0_trigger=2,
        yield_every=100, time_limit=60.0,
    ),
    "full": Config(
        keys=2_000_000, reads=1_000_000, scans=2_000, scan_len=1_000, overwrites=300_000,
        during_gets=2_000_000, scale=1, busy_write_buffer_size=1 << 20, busy_l0_trigger=2,
        yield_every=100, time_limit=300.0,
    ),
}  # fmt: skip


def store_options(cfg: Config) -> dict[str, Any]:
    """The main store's options: the defaults scaled down by cfg.scale, and a big cache."""
    d = aiokv.Options()
    s = cfg.scale
    return {
        "write_buffer_size": max(16 << 10, d.write_buffer_size // s),
        "target_file_size": max(16 << 10, d.target_file_size // s),
        "max_bytes_for_level_base": max(64 << 10, d.max_bytes_for_level_base // s),
        "block_cache_size": cfg.block_cache_size,
    }


def busy_options(cfg: Config) -> dict[str, Any]:
    """The compaction phase's: a small memtable and an eager L0 trigger, so compactions run."""
    return {
        **store_options(cfg),
        "write_buffer_size": cfg.busy_write_buffer_size,
        "l0_compaction_trigger": cfg.busy_l0_trigger,
    }


def missing_key(i: int) -> bytes:
    """A 16-byte key that is never stored and sorts inside the key range (just after key(i))."""
    return key(i)[:-1] + b"x"


def stat_delta(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: after[k] - before[k] for k in STAT_KEYS if k in after and k in before}


def store_bytes(path: str) -> dict[str, int]:
    """Bytes per kind of file in a store directory (apparent sizes)."""
    out = {"sst": 0, "log": 0, "manifest": 0, "other": 0, "sst_files": 0, "log_files": 0}
    for name in os.listdir(path):
        size = os.path.getsize(os.path.join(path, name))
        if name.endswith(".sst"):
            out["sst"] += size
            out["sst_files"] += 1
        elif name.endswith(".log"):
            out["log"] += size
            out["log_files"] += 1
        elif name.startswith("MANIFEST"):
            out["manifest"] += size
        else:
            out["other"] += size
    return out


def space_row(engine: str, when: str, files: dict[str, int], logical: int) -> dict[str, Any]:
    total = files["sst"] + files["log"] + files["manifest"]
    return {
        "engine": engine,
        "when": when,
        **files,
        "store_bytes": total,
        "logical_bytes": logical,
        "ratio": total / logical,
        "sst_ratio": files["sst"] / logical,
    }


def peer_bytes(p: bench_peers.Peer, path: str) -> dict[str, int]:
    """A peer's store bytes: file sizes, but LMDB's used pages (its map file is sparse)."""
    if isinstance(p, bench_peers.LmdbPeer):
        info, st = p.env.info(), p.env.stat()
        used = (info["last_pgno"] + 1) * st["psize"]
        return {"sst": used, "log": 0, "manifest": 0, "other": 0, "sst_files": 1, "log_files": 0}
    out = {"sst": 0, "log": 0, "manifest": 0, "other": 0, "sst_files": 0, "log_files": 0}
    for name in os.listdir(path):
        size = os.path.getsize(os.path.join(path, name))
        kind = "sst" if name.endswith((".sst", ".ldb")) else "log" if name.endswith(".log") else ""
        if kind:
            out[kind] += size
            out[kind + "_files"] += 1
        elif name.startswith("MANIFEST"):
            out["manifest"] += size
        else:
            out["other"] += size
    return out


# -- the engine's background state (private attributes; see the module docstring) --------------


class Background:
    """Whether the engine's flush and compaction tasks have work, read off its private state."""

    def __init__(self, db: aiokv.DB) -> None:
        eng = db._engine
        self._db = db
        self._lock: asyncio.Lock | None = getattr(eng, "_compaction_lock", None)
        self._wanted: asyncio.Event | None = getattr(eng, "_compact_wanted", None)
        self.probe = "engine" if self._lock is not None and self._wanted is not None else "stats"

    def compacting(self) -> bool:
        """A compaction task (or trivial move) holds the compaction lock right now."""
        return self._lock is not None and self._lock.locked()

    def idle(self) -> bool:
        """No frozen memtable waits, no compaction runs and none is about to be picked."""
        if self._db.stats()["memtables_frozen"]:
            return False
        if self._lock is None or self._wanted is None:
            return True  # stats only: settle() then waits for the counters to stop moving
        return not self._lock.locked() and not self._wanted.is_set()


async def settle(db: aiokv.DB, bg: Background, limit_s: float) -> tuple[float, bool]:
    """Waits until the background is idle; returns (seconds, whether it got there in time).
    Idle must hold at two polls in a row (with the stats probe: the counters must not move)."""
    begin = ns()
    deadline = begin + int(limit_s * 1e9)
    last: dict[str, int] | None = None
    quiet = 0
    while ns() < deadline:
        s = stat_delta(db.stats(), {k: 0 for k in STAT_KEYS})
        quiet = quiet + 1 if bg.idle() and s == last else 0
        if quiet >= 2:
            return (ns() - begin) / 1e9, True
        last = s
        await asyncio.sleep(POLL_S)
    return (ns() - begin) / 1e9, False


# -- timed loops -----------------------------------------------------------------------------


@dataclass
class Window:
    """Get latencies and loop stalls sampled in one state (compaction running or not)."""

    lat: array[int]
    stalls: array[int]


async def sampled_gets(
    get: Callable[[bytes], Awaitable[bytes | None]],
    keys: list[bytes],
    total: int,
    every: int,
    compacting: Callable[[], bool],
    stop: Callable[[dict[bool, Window]], bool],
    deadline_ns: int,
) -> tuple[dict[bool, Window], int, str]:
    """Gets up to `total` keys, going round `keys`, in chunks of `every`, each followed by
    `await asyncio.sleep(0)`, until stop(windows) or the deadline.  A get never suspends, so
    nothing else runs during a chunk: the state read at a chunk's start holds for its gets
    and for the sleep after it, whose duration is the time other tasks held the loop.
    Returns the windows by state, the count of gets that found nothing, and why it ended."""
    win = {s: Window(array("q"), array("q")) for s in (False, True)}
    misses = 0
    n = len(keys)
    i = 0
    ended = "count"
    while i < total:
        if stop(win):
            ended = "stop"
            break
        if ns() >= deadline_ns:
            ended = "time"
            break
        w = win[compacting()]
        app = w.lat.append
        start = i % n
        for k in keys[start : start + min(every, total - i)]:
            t0 = ns()
            v = await get(k)
            app(ns() - t0)
            if v is None:
                misses += 1
        i += every
        t0 = ns()
        await asyncio.sleep(0)
        w.stalls.append(ns() - t0)
    return win, misses, ended


async def writer(
    put: Callable[[bytes, bytes], Awaitable[None]],
    keys: list[bytes],
    values: list[bytes],
    every: int,
    lat: array[int],
    stop: list[bool],
) -> int:
    """Puts keys[i] = values[i], yielding to the loop after every `every` puts (an inline put
    never suspends), until done or stop[0]; returns the nanoseconds it took."""
    app = lat.append
    begin = ns()
    for j in range(0, len(keys), every):
        if stop[0]:
            break
        for k, v in zip(keys[j : j + every], values[j : j + every], strict=True):
            t0 = ns()
            await put(k, v)
            app(ns() - t0)
        await asyncio.sleep(0)
    return ns() - begin


async def seek_aiokv(db: aiokv.DB, k: bytes, n: int) -> int:
    count = 0
    async with db.scan(start=k) as it:
        async for _ in it:
            count += 1
            if count == n:
                break
    return count


def stall_summary(stalls: array[int]) -> dict[str, Any]:
    if not stalls:
        return {"yields": 0}
    o = sorted(stalls)
    return {
        "yields": len(o),
        "p50_us": percentile(o, 0.50) / 1000,
        "p99_us": percentile(o, 0.99) / 1000,
        "max_ms": o[-1] / 1e6,
    }


# -- the bench --------------------------------------------------------------------------------


class Bench:
    def __init__(self, cfg: Config, root: str, peers: list[str]) -> None:
        self.cfg = cfg
        self.root = root
        self.peers = peers
        self.results: list[Result] = []
        self.space: list[dict[str, Any]] = []
        self.background: dict[str, Any] = {}
        self.compaction: dict[str, Any] = {}
        self.checks: list[dict[str, Any]] = []
        rng = random.Random(cfg.seed)
        n = cfg.keys
        self.pool = [rng.randbytes(VALUE_SIZE) for _ in range(VALUE_POOL)]
        self.keys = [key(i) for i in range(n)]
        self.expected = [self.pool[i % VALUE_POOL] for i in range(n)]
        order = list(range(n))
        rng.shuffle(order)
        self.perm = [self.keys[i] for i in order]
        self.perm_values = [self.expected[i] for i in order]
        self.logical = sum(map(len, self.keys)) + sum(map(len, self.expected))
        # Keys looked up are new objects (no identity shortcut in a dict), made in use order.
        self.read_keys = [key(rng.randrange(n)) for _ in range(cfg.reads)]
        self.missing_keys = [missing_key(rng.randrange(n)) for _ in range(cfg.reads)]
        self.seek_starts = [rng.randrange(n) for _ in range(cfg.scans)]
        self.seek_keys = [key(i) for i in self.seek_starts]
        self.seek_items = sum(min(cfg.scan_len, n - i) for i in self.seek_starts)
        over = [rng.randrange(n) for _ in range(cfg.overwrites)]
        self.over_keys = [key(i) for i in over]
        self.over_values = [self.pool[(i + 1) % VALUE_POOL] for i in over]
        self.busy_keys = [key(rng.randrange(n)) for _ in range(max(cfg.reads, 100_000))]

    def emit(self, r: Result) -> None:
        self.results.append(r)
        print(line(r), flush=True)

    def check(self, what: str, ok: bool, **detail: Any) -> None:
        self.checks.append({"check": what, "ok": ok, **detail})
        if not ok:
            print(f"CHECK FAILED: {what}: {detail}", file=sys.stderr, flush=True)

    def path(self, name: str) -> str:
        return os.path.join(self.root, name)

    async def run(self) -> None:
        lat, el = timer_overhead(self.cfg.reads)
        self.emit(summarize("baseline_timer", "python", lat, el))
        await self.aiokv_main()
        await self.aiokv_compaction()
        for name in self.peers:
            self.peer(name)

    # -- aiokv: fill, settle, compact_range, space, verify, reads, scans ---------------------

    async def aiokv_main(self) -> None:
        cfg = self.cfg
        path = self.path("aiokv")
        quiesce()
        async with aiokv.open(path, **store_options(cfg)) as db:
            bg = Background(db)
            s0 = db.stats()
            with gc_watch() as gcs:
                lat, el = await atimed2(db.put, self.perm, self.perm_values)
            s1 = db.stats()
            self.emit(summarize("fillrandom", "aiokv", lat, el, gc=gcs, **stat_delta(s1, s0)))
            settle_s, settled = await settle(db, bg, cfg.time_limit)
            s2 = db.stats()
            begin = ns()
            await db.compact_range()
            compact_s = (ns() - begin) / 1e9
            s3 = db.stats()
            self.background = {
                "probe": bg.probe,
                "settle_seconds": settle_s,
                "settled": settled,
                "compact_range_seconds": compact_s,
                "after_fill": s1,
                "after_settle": s2,
                "after_compact_range": s3,
                "settle_delta": stat_delta(s2, s1),
                "compact_range_delta": stat_delta(s3, s2),
            }
            print(
                f"{'settle':<20} aiokv          {settle_s:>10.3f} s to idle after the fill"
                f"{'' if settled else ' (NOT idle at the time limit)'}; "
                f"compact_range {compact_s:.3f} s",
                flush=True,
            )
            self.check("background idle after the fill", settled, seconds=settle_s)
            self.space.append(space_row("aiokv", "compact_range", store_bytes(path), self.logical))
            await self.verify(db, "after compact_range", self.expected)
            await self.reads(db)
        self.space.append(
            space_row("aiokv", "reopen", await self.reopened_bytes(path), self.logical)
        )
        for row in self.space:
            print(
                f"{'space':<20} {row['engine']:<14} {row['ratio']:>10.3f}x logical after "
                f"{row['when']} (sst {row['sst']:,} + log {row['log']:,} + manifest "
                f"{row['manifest']:,} B over {row['logical_bytes']:,} B; sst alone "
                f"{row['sst_ratio']:.3f}x)",
                flush=True,
            )

    async def reopened_bytes(self, path: str) -> dict[str, int]:
        async with aiokv.open(path, **store_options(self.cfg)):
            pass
        return store_bytes(path)

    async def verify(self, db: aiokv.DB, when: str, expected: list[bytes]) -> None:
        """A full scan and a get_many of every key (the warm-up pass), against `expected`."""
        keys: list[bytes] = []
        values: list[bytes] = []
        kapp, vapp = keys.append, values.append
        begin = ns()
        async with db.scan() as it:
            async for k, v in it:
                kapp(k)
                vapp(v)
                if len(keys) > len(self.keys):
                    break
        scan_s = (ns() - begin) / 1e9
        wrong = sum(a != b for a, b in zip(values, expected, strict=False))
        self.check(
            f"full scan {when} yields every key once, in order, with its value",
            keys == self.keys and values == expected,
            scanned=len(keys), expected=len(self.keys), wrong_values=wrong, seconds=scan_s,
        )  # fmt: skip
        got: list[bytes | None] = []
        begin = ns()
        for i in range(0, len(self.keys), WARM_BATCH):
            got += await db.get_many(self.keys[i : i + WARM_BATCH])
        get_s = (ns() - begin) / 1e9
        self.check(
            f"get of every key {when} returns its value",
            got == expected,
            missing=got.count(None), seconds=get_s,
        )  # fmt: skip

    async def reads(self, db: aiokv.DB) -> None:
        cfg = self.cfg
        table = dict(zip(self.keys, self.expected, strict=True))
        lookup = table.get

        async def dict_get(k: bytes) -> bytes | None:
            return lookup(k)

        quiesce()
        lat, el = await atimed(dict_get, self.read_keys)
        un = await auntimed(dict_get, self.read_keys)
        self.emit(summarize("baseline_dict_await", "python", lat, el, untimed_ns=un))
        del table
        for name, keys in (("readrandom", self.read_keys), ("readmissing", self.missing_keys)):
            quiesce()
            s0 = db.stats()
            lat, el = await atimed(db.get, keys)
            s1 = db.stats()
            un = await auntimed(db.get, keys)
            found = sum([v is not None for v in await db.get_many(keys)])
            present = len(keys) if name == "readrandom" else 0
            self.check(f"{name} finds {present} of {len(keys)} keys", found == present, found=found)
            d = stat_delta(s1, s0)
            # Blocks a get looked into: for readmissing, the filters' false-positive rate.
            blocks = (d.get("block_cache_hits", 0) + d.get("block_cache_misses", 0)) / len(keys)
            self.emit(summarize(name, "aiokv", lat, el, untimed_ns=un, blocks_per_get=blocks, **d))
        quiesce()
        n = cfg.scan_len
        counts = [await seek_aiokv(db, k, n) for k in self.seek_keys[:100]]
        want = [min(n, cfg.keys - i) for i in self.seek_starts[:100]]
        self.check("scan1000 yields scan_len items from each start", counts == want)

        async def seek(k: bytes) -> int:
            return await seek_aiokv(db, k, n)

        lat, el = await atimed(seek, self.seek_keys)
        un = await auntimed(seek, self.seek_keys)
        self.emit(
            summarize(
                "scan1000", "aiokv", lat, el, items=self.seek_items, untimed_ns=un, scan_len=n
            )
        )

    # -- aiokv: gets while compacting ------------------------------------------------------------

    async def aiokv_compaction(self) -> None:
        cfg = self.cfg
        path = self.path("aiokv")
        every = cfg.yield_every
        limit_ns = int(cfg.time_limit * 1e9)
        quiesce()
        async with aiokv.open(path, **busy_options(cfg)) as db:
            bg = Background(db)
            settled = (await settle(db, bg, cfg.time_limit))[1]
            self.check("background idle after the reopen", settled)
            await self.verify(db, "after the reopen", self.expected)  # also warms the cache
            quiesce()
            s0 = db.stats()
            idle, idle_misses, _ = await sampled_gets(
                db.get, self.busy_keys, cfg.reads, every, bg.compacting, lambda w: False,
                ns() + limit_ns,
            )  # fmt: skip
            s1 = db.stats()
            self.check(
                "no compaction ran during the idle window",
                not idle[True].lat and s1["compactions"] == s0["compactions"],
            )
            quiesce()
            put_lat: array[int] = array("q")
            stop = [False]
            task = asyncio.create_task(
                writer(db.put, self.over_keys, self.over_values, every, put_lat, stop)
            )
            want = cfg.during_gets
            done_before = s1["compactions"]

            def enough(w: dict[bool, Window]) -> bool:
                """Writer done, and idle, or enough samples and a compaction finished."""
                if not task.done():
                    return False
                if bg.idle():
                    return True
                return len(w[True].lat) >= want and db.stats()["compactions"] > done_before

            begin = ns()
            with gc_watch() as gcs:
                busy, busy_misses, ended = await sampled_gets(
                    db.get, self.busy_keys, 20 * want, every, bg.compacting, enough,
                    begin + limit_ns,
                )  # fmt: skip
            window_ns = ns() - begin
            s2 = db.stats()
            stop[0] = ended == "time"  # out of time: the writer stops; out of gets: it goes on
            wrote_ns = await task  # re-raises what the writer raised
            # The backlog left when the window closed, with no get load: bounded by time_limit.
            settle_s, settled = await settle(db, bg, cfg.time_limit)
            s3 = db.stats()
            self.check("background idle after the compaction window", settled, seconds=settle_s)
            expected = self.expected[:]
            for k, v in zip(self.over_keys, self.over_values, strict=True):
                expected[int(k)] = v
            if len(put_lat) == len(self.over_keys):
                await self.verify(db, "after the overwrites and their compactions", expected)
        self.report_compaction(
            idle, busy, idle_misses + busy_misses, put_lat, window_ns, wrote_ns, ended, gcs,
            stat_delta(s1, s0), stat_delta(s2, s1), stat_delta(s3, s2), settle_s, bg.probe,
        )  # fmt: skip

    def report_compaction(
        self,
        idle: dict[bool, Window],
        busy: dict[bool, Window],
        misses: int,
        put_lat: array[int],
        window_ns: int,
        wrote_ns: int,
        ended: str,
        gcs: dict[str, Any],
        idle_delta: dict[str, int],
        busy_delta: dict[str, int],
        tail_delta: dict[str, int],
        settle_s: float,
        probe: str,
    ) -> None:
        cfg = self.cfg
        self.check("every get in the compaction windows found its key", misses == 0, misses=misses)
        ran = busy_delta.get("compactions", 0)
        self.check(
            "compactions ran, and gets were sampled while one did",
            ran > 0 and len(busy[True].lat) > 0,
            compactions=ran, gets_sampled=len(busy[True].lat),
        )  # fmt: skip
        # ops/s of these two is 1 / mean get latency: their loops also slept and polled.
        idle_r: Result | None = None
        if idle[False].lat:
            idle_r = summarize("get_idle", "aiokv", idle[False].lat, sum(idle[False].lat))
            self.emit(idle_r)
        during: Result | None = None
        if busy[True].lat:
            during = summarize(
                "get_during_compaction", "aiokv", busy[True].lat, sum(busy[True].lat)
            )
            self.emit(during)
        if put_lat:
            self.emit(summarize("overwrite_during_compaction", "aiokv", put_lat, wrote_ns, gc=gcs))
        all_stalls = array("q", sorted([*busy[True].stalls, *busy[False].stalls]))
        self.compaction = {
            "probe": probe,
            "options": busy_options(cfg),
            "yield_every": cfg.yield_every,
            "window_seconds": window_ns / 1e9,
            "overwrites_done": len(put_lat),  # fewer than asked: the writer ran out of time
            "overwrites_asked": cfg.overwrites,
            # stop: the writer was done and the background idle, or `during_gets` were sampled
            "window_ended_by": ended,
            "gets_during_compaction": len(busy[True].lat),
            "gets_other_busy": len(busy[False].lat),
            "gets_idle": len(idle[False].lat),
            "idle_p99_us": idle_r["p99_us"] if idle_r else None,
            "during_p99_us": during["p99_us"] if during else None,
            "p99_ratio": during["p99_us"] / idle_r["p99_us"] if during and idle_r else None,
            "idle_stalls": stall_summary(idle[False].stalls),
            "stalls_during_compaction": stall_summary(busy[True].stalls),
            "stalls_other_busy": stall_summary(busy[False].stalls),
            "max_loop_stall_ms": all_stalls[-1] / 1e6 if all_stalls else None,
            "idle_window_stats": idle_delta,
            "busy_window_stats": busy_delta,
            "after_window_stats": tail_delta,
            "settle_after_seconds": settle_s,
        }
        c = self.compaction
        nan = float("nan")
        print(
            f"{'get p99 compaction':<20} aiokv          idle {c['idle_p99_us'] or nan:.2f} µs, "
            f"during {c['during_p99_us'] or nan:.2f} µs, ratio {c['p99_ratio'] or nan:.2f}"
            f"; max loop stall {c['max_loop_stall_ms'] or nan:.2f} ms; "
            f"{ran} compactions, {c['gets_during_compaction']:,} gets while one ran; window "
            f"{c['window_seconds']:.1f} s, ended by {ended}, {len(put_lat):,} of "
            f"{cfg.overwrites:,} overwrites done",
            flush=True,
        )

    # -- peers ------------------------------------------------------------------------------------

    def peer(self, name: str) -> None:
        cfg = self.cfg
        quiesce()
        p = bench_peers.open_peer(name, self.root, "lsm")
        path = self.path(f"{name}-lsm")
        try:
            lat, el = timed2(p.put, self.perm, self.perm_values)
            self.emit(summarize("fillrandom", name, lat, el))
            self.space.append(space_row(name, "fill", peer_bytes(p, path), self.logical))
            if isinstance(p, bench_peers.PlyvelPeer | bench_peers.RocksdictPeer):
                begin = ns()
                if isinstance(p, bench_peers.PlyvelPeer):
                    p.db.compact_range()
                else:
                    p.db.compact_range(None, None)
                self.space.append(
                    space_row(name, "compact_range", peer_bytes(p, path), self.logical)
                    | {"compact_range_seconds": (ns() - begin) / 1e9}
                )
            row = self.space[-1]
            print(f"{'space':<20} {name:<14} {row['ratio']:>10.3f}x logical after {row['when']}")
            get_many = p.get_many
            got: list[Any] = []
            for i in range(0, len(self.keys), WARM_BATCH):  # the warm-up pass
                got += get_many(self.keys[i : i + WARM_BATCH])
            self.check(f"{name}: get of every key returns its value", got == self.expected)
            for wl, keys in (("readrandom", self.read_keys), ("readmissing", self.missing_keys)):
                quiesce()
                lat, el = timed(p.get, keys)
                un = untimed(p.get, keys)
                self.emit(summarize(wl, name, lat, el, untimed_ns=un))
            quiesce()
            n = cfg.scan_len
            seek = p.seek
            lat, el = timed(lambda k: seek(k, n), self.seek_keys)
            un = untimed(lambda k: seek(k, n), self.seek_keys)
            self.emit(
                summarize(
                    "scan1000", name, lat, el, items=self.seek_items, untimed_ns=un, scan_len=n
                )
            )
        finally:
            p.close()
            shutil.rmtree(path, ignore_errors=True)

    # -- targets ----------------------------------------------------------------------------------

    def targets(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for row in self.space:
            if row["engine"] == "aiokv" and row["when"] == "compact_range":
                out.append({
                    "target": f"store bytes after compact_range <= {TARGET_SPACE_RATIO}x logical",
                    "workload": "space",
                    "measured": row["ratio"],
                    "absolute_target": TARGET_SPACE_RATIO,
                    "absolute_met": row["ratio"] <= TARGET_SPACE_RATIO,
                })  # fmt: skip
        ratio = self.compaction.get("p99_ratio")
        if ratio is not None:
            out.append({
                "target": f"get p99 during compaction <= {TARGET_COMPACTION_P99_RATIO}x idle p99",
                "workload": "get_during_compaction",
                "measured": ratio,
                "absolute_target": TARGET_COMPACTION_P99_RATIO,
                "absolute_met": ratio <= TARGET_COMPACTION_P99_RATIO,
            })  # fmt: skip
        return out


def markdown_space(rows: list[dict[str, Any]]) -> str:
    out = [
        "| engine | after | sst B | log B | manifest B | logical B | ratio | sst ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r['engine']} | {r['when']} | {r['sst']:,} | {r['log']:,} | {r['manifest']:,} | "
        f"{r['logical_bytes']:,} | {r['ratio']:.3f} | {r['sst_ratio']:.3f} |"
        for r in rows
    ]
    return "\n".join(out)


# -- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    for f, fld in Config.__dataclass_fields__.items():
        kind = float if fld.type in ("float", float) else int
        ap.add_argument("--" + f.replace("_", "-"), type=kind, dest=f, help="overrides profile")
    ap.add_argument("--peers", default=",".join(bench_peers.PEER_NAMES), help="'' for none")
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--no-uvloop", action="store_true", help="use asyncio's default loop")
    ap.add_argument(
        "--switch-interval",
        type=float,
        help="sys.setswitchinterval() for the run, in seconds (default: Python's, 0.005): how\n"
        "long a pool thread may wait for the GIL while the loop is busy",
    )
    ap.add_argument("--dir", help="parent of the temp directory (default: the system temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    ap.add_argument("--out", help="results file (default: bench/results/<utc>-lsm-<profile>.json)")
    return ap.parse_args(argv)


def make_config(args: argparse.Namespace) -> Config:
    cfg = PROFILES[args.profile]
    given = {f: getattr(args, f) for f in Config.__dataclass_fields__ if getattr(args, f)}
    cfg = replace(cfg, **given)
    if args.keys and not args.reads:  # a smaller store caps what reads from it
        cfg = replace(cfg, reads=min(cfg.reads, args.keys))
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = make_config(args)
    wanted = [] if args.no_peers else [p for p in args.peers.split(",") if p]
    peers = bench_peers.available(wanted)
    factory, loop_name = event_loop_factory(args.no_uvloop)
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    root = tempfile.mkdtemp(prefix="aiokv-lsm-bench-", dir=args.dir)
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    meta = bench_report.machine(root, loop_name, repo)
    if meta["data_fs"].startswith(("tmpfs", "ramfs")):
        print(f"warning: {root} is on {meta['data_fs']}, not a disk; use --dir", file=sys.stderr)
    print(
        f"aiokv lsm_bench, profile {args.profile}: {asdict(cfg)}\n"
        f"aiokv options: {store_options(cfg)}; compaction phase: {busy_options(cfg)}\n"
        f"{meta['nproc']} CPUs ({meta['cpu_model']}), Python {meta['python']}, {loop_name}, "
        f"switch interval {sys.getswitchinterval() * 1000:g} ms, "
        f"data in {root} on {meta['data_fs']}; peers: {', '.join(peers) or 'none'}"
        f" (skipped: {', '.join(sorted(set(wanted) - set(peers))) or 'none'})",
        flush=True,
    )
    bench = Bench(cfg, root, peers)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(bench.run())
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    wall = time.monotonic() - t0
    results = bench.results
    bench_report.add_ratios(results, peers)
    tgt = bench.targets()
    doc = {
        "date": started.isoformat(timespec="seconds"),
        "bench": "lsm",
        "profile": args.profile,
        "config": asdict(cfg),
        "options": store_options(cfg),
        "machine": meta,
        "switch_interval": sys.getswitchinterval(),
        "peers": {p: bench_peers.config(p) for p in peers},
        "peers_skipped": sorted(set(wanted) - set(peers)),
        "wall_seconds": round(wall, 3),
        "results": results,
        "space": bench.space,
        "background": bench.background,
        "compaction": bench.compaction,
        "checks": bench.checks,
        "targets": tgt,
    }
    out = args.out or os.path.join(
        repo, "bench", "results", f"{started:%Y%m%dT%H%M%SZ}-lsm-{args.profile}.json"
    )
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    failed = [c for c in bench.checks if not c["ok"]]
    print(f"\n{len(results)} results in {wall:.1f} s; written to {out}\n")
    print(bench_report.markdown_table(results, peers))
    print()
    print(markdown_space(bench.space))
    print()
    print(bench_report.markdown_targets(tgt))
    print(f"\nchecks: {len(bench.checks) - len(failed)} of {len(bench.checks)} passed")
    for c in failed:
        print(f"  FAILED: {c}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
