"""Crash images of a store with column families: cross-family batches whole, merges exact.

Each round opens a database on a MemFileSystem holding four families: "default", "cnt" (an
Int64Add counter family, named in `column_families` at every open), "small" (tiny write buffer
and levels: it flushes and compacts every few dozen batches) and "big" (a 64 MiB write buffer:
it never flushes on its own, so its data stays in the WAL while the others flush).  The default
family and "cnt" get the tiny sizes in some rounds and not in others.  Then 6 to 10 writer
tasks each write, one await after another, with sync=True, default or buffered durability:

- mostly a cross-family batch: 1 to 3 puts in each of 2 or 3 of default/small/big/tmp, a merge
  of +1 into the writer's counter "n" and of +index into its counter "sum" (both in "cnt"),
  and sometimes a delete of one of the writer's keys;
- now and then a lone merge of +1 into "n" (cf.merge on a handle), a lone put (cf.put on a
  handle), or an empty synced batch (a sync barrier).

Every put's value is tagged with the index of the write that made it.  A maintenance task
flushes the memtables and runs compact_range on a random family now and then.  In a drop
round a family "tmp" is created before the writers start, dropped at a random moment while
batches still name it, and created again later under the same name (a new family).  A monitor
takes crash images (`crash_clone`, all modes) at random points between awaits, noting the time
on the round's logical clock; the log notes when each write, drop and creation was issued and
acknowledged.

Every image is opened and checked:

1. Per writer, the recovered state of all families is the state after a prefix of its writes
   (replayed by a model that folds the merges): a batch is whole or absent across families,
   and each counter equals what the writes present added, so no merge operand was lost or
   applied twice across flushes of one family and WAL replay of another.  Across writers, no
   write is present while a write acknowledged before it was issued is missing.
2. Every write acknowledged with sync=True before the image is present, and every write
   acknowledged before such a write was issued.  Nothing issued after the image is present.
3. "tmp": absent if its drop was acknowledged before the image (and its re-creation was not
   issued yet); present if its creation was acknowledged before it; when present, it holds
   exactly the ops of its own generation that the prefix holds: none of a dropped family's ops
   reappears in the family created later under its name.  Families the round did not touch
   hold what they held when it began.
4. db.check() passes, and recovery is idempotent: reopening the recovered image, and opening a
   crash image of it taken while it was open, give the same families and state.

The live database, once the writers end, must hold every acknowledged write (1 and 3 with no
crash).  A round ends with a power cut (the next round continues on one of its images) or like
a killed process (its closing fsync fails; the next round reopens the live file system, where
every write acknowledged with sync=True or default durability must be there).  Every CHAIN
rounds a fresh store starts.  AIOKV_CRASH_SEED=<n> repeats the random choices of a run (thread
timing may still vary the interleaving); AIOKV_STRESS=1 runs 50 times as many rounds.

The kill -9 test runs kill9_families_child.py on a real directory (compaction in a worker
process), kills it at random moments, and checks the same properties on what the next open
recovers: every write acknowledged with sync=True or default durability is there, each
writer's writes present are a prefix of its plan, and the store equals the model's replay of
that prefix (whole batches, exact counters); whatever a check found stays, unchanged.
AIOKV_KILL9_SEED=<n> repeats its choices; AIOKV_STRESS=1 runs 1,000 rounds.

A stuck engine fails instead of hanging the run: a round that makes no progress for
STUCK_SECONDS fails with every task's await chain, a loop that stops yielding is interrupted
(KeyboardInterrupt) after every thread's stack is dumped, and a kill -9 child that stops
acknowledging writes fails its round.  None of these is a timing assertion: a round takes well
under a second.
"""

from __future__ import annotations

import _thread
import asyncio
import bisect
import contextlib
import errno
import faulthandler
import itertools
import math
import os
import random
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import aiokv
from aiokv.engine.memfs import CrashMode, MemFileSystem
from aiokv.merge import Int64Add
from tests.crash import kill9_families_child as child
from tests.crash.acking_child import AckingChild
from tests.crash.prefix_verdict import assert_no_holes
from tests.tiny import TINY_LSM

STRESS = os.environ.get("AIOKV_STRESS") == "1"
ROUNDS = 800 if STRESS else 16
IMAGES_PER_ROUND = 25  # 400 images per run, 20,000 under AIOKV_STRESS=1
CHAIN = 4  # rounds that each continue on what the round before left, then a fresh store
PROCESS_CRASHES = 0.3  # share of rounds that end as a killed process, not with a power cut
DROP_ROUNDS = 0.5  # share of rounds that drop "tmp" mid-run and create it again
MAX_WRITES = 300  # per writer and round: bounds the round if the monitor were to stall
MAX_GAP = 24  # acknowledgements between two images: 0 to MAX_GAP - 1
MAINTENANCE_GAP = 60  # acknowledgements between two flushes or compactions: 0 to this
MAX_SPIN = 10_000  # loop iterations a waiting task spins before it acts anyway
STUCK_SECONDS = 60.0  # a round's workload takes well under a second: past this it is stuck
PATH = "/db"
KiB = 1024
MiB = 1024 * KiB

STABLE = ("default", "cnt", "small", "big")  # the families every image must hold
TMP = "tmp"
PUT_FAMILIES = ("default", "small", "big")
SLOTS = {"default": 6, "small": 12, "big": 4, TMP: 4}  # keys per writer and family
PUT, DELETE, MERGE = "put", "delete", "merge"
ALL_MODES = ("sync", "default", "buffered")

# (family label, kind, key, value).  The label of "tmp" is "tmp#<generation>": generation 0
# is the family the round creates, 1 the one it creates after dropping it.
Op = tuple[str, str, bytes, bytes]
State = dict[tuple[str, bytes], bytes]  # (family label or name, key) -> value


@dataclass(eq=False)
class Write:
    writer: int
    index: int  # 1-based position in its writer's sequence
    mode: str  # "sync", "default" or "buffered"
    how: str  # "batch", "merge" (cf.merge), "put" (cf.put) or "barrier" (empty synced batch)
    ops: list[Op]
    issued: int
    acked: float = math.inf


@dataclass
class Image:
    taken: float
    mode: CrashMode
    fs: MemFileSystem


@dataclass
class Round:
    number: int
    prefix: bytes
    drops: bool  # "tmp" is created, dropped mid-run and created again
    unsynced_tail: bool = False  # after the last image, end with a few unsynced writes
    # What the database held once the writers ended, and its counters then.
    live: tuple[list[str], State] = field(default_factory=lambda: ([], {}))
    stats: dict[str, int] = field(default_factory=dict)
    logs: dict[int, list[Write]] = field(default_factory=dict)
    images: list[Image] = field(default_factory=list)
    acks: int = 0
    stopped: bool = False
    handles: dict[str, aiokv.ColumnFamily] = field(default_factory=dict)
    tmp_label: str | None = None  # the label of the live "tmp", None while there is none
    # Logical times of the drop of generation 0 and the creation of generation 1.
    drop_issued: float | None = None
    drop_acked: float | None = None
    create_issued: float | None = None
    create_acked: float | None = None


def _durability(mode: str) -> dict[str, bool]:
    return {"sync": mode == "sync", "buffered": mode == "buffered"}


def _plan(
    rnd: Round, w: int, index: int, rng: random.Random, unsynced: bool
) -> tuple[str, str, list[Op]]:
    """Chooses the next write of writer `w`: (durability, how, ops)."""
    own = rnd.prefix + b"w%02d/" % w
    tag = b"%d:" % index

    def key(label: str) -> bytes:
        name = label.partition("#")[0]
        return own + name[0].encode() + b"%d" % rng.randrange(SLOTS[name])

    def value() -> bytes:
        return tag + b"x" * rng.randrange(300)

    mode = rng.choices(["sync", "default", "buffered"], [0 if unsynced else 5, 3, 2])[0]
    kind = rng.random()
    if kind < 0.04 and not unsynced:
        return "sync", "barrier", []  # everything acknowledged before it becomes durable
    if kind < 0.12:
        return mode, "merge", [("cnt", MERGE, own + b"n", b"1")]
    if kind < 0.22:
        label = rng.choice(PUT_FAMILIES)
        return mode, "put", [(label, PUT, key(label), value())]
    labels = list(PUT_FAMILIES) + ([rnd.tmp_label] if rnd.tmp_label else [])
    ops: list[Op] = []
    chosen = rng.sample(labels, rng.randint(2, 3))
    for label in chosen:
        ops.extend((label, PUT, key(label), value()) for _ in range(rng.randint(1, 3)))
    ops.append(("cnt", MERGE, own + b"n", b"1"))
    ops.append(("cnt", MERGE, own + b"sum", b"%d" % index))
    if rng.random() < 0.25:
        label = rng.choice(chosen)
        ops.append((label, DELETE, key(label), b""))
    rng.shuffle(ops)
    return mode, "batch", ops


async def _commit(db: aiokv.DB, write: Write, cfs: dict[str, aiokv.ColumnFamily]) -> None:
    """Commits `write` with the handles `cfs` (by label) taken when it was planned."""
    d = _durability(write.mode)
    if write.how == "merge":
        ((label, _, key, operand),) = write.ops
        await cfs[label].merge(key, operand, **d)
    elif write.how == "put":
        ((label, _, key, value),) = write.ops
        await cfs[label].put(key, value, **d)
    else:
        async with db.batch(**d) as b:
            for label, kind, key, value in write.ops:
                if kind == PUT:
                    b.put(key, value, cf=cfs[label])
                elif kind == DELETE:
                    b.delete(key, cf=cfs[label])
                else:
                    b.merge(key, value, cf=cfs[label])


async def _writer(db: aiokv.DB, rnd: Round, w: int, rng: random.Random, clock: Any) -> None:
    log = rnd.logs[w]
    tail = None  # once stopped: how many unsynced writes are still to do
    for index in range(1, MAX_WRITES + 1):
        if rnd.stopped and tail is None:
            tail = rng.randrange(4) if rnd.unsynced_tail else 0
        if tail is not None:
            if tail == 0:
                return
            tail -= 1
        # No await from planning to building the batch: a family named here is still live.
        cfs = dict(rnd.handles)
        mode, how, ops = _plan(rnd, w, index, rng, tail is not None)
        write = Write(w, index, mode, how, ops, next(clock))
        log.append(write)
        await _commit(db, write, cfs)
        write.acked = next(clock)
        rnd.acks += 1


async def _wait_acks(rnd: Round, count: int) -> None:
    target = rnd.acks + count
    for _ in range(MAX_SPIN):
        if rnd.acks >= target or rnd.stopped:
            return
        await asyncio.sleep(0)


async def _monitor(fs: MemFileSystem, rnd: Round, rng: random.Random, clock: Any) -> None:
    try:
        while len(rnd.images) < IMAGES_PER_ROUND:
            await _wait_acks(rnd, rng.randrange(MAX_GAP))
            for _ in range(rng.randrange(4)):  # images between the steps of a commit too
                await asyncio.sleep(0)
            mode = rng.choice(list(CrashMode))
            # No await between reading the clock and cloning: the image is of that instant.
            taken = next(clock)
            rnd.images.append(Image(taken, mode, fs.crash_clone(mode, random.Random(rng.random()))))
    finally:
        rnd.stopped = True


async def _maintain(db: aiokv.DB, rnd: Round, rng: random.Random, clock: Any) -> None:
    """Flushes and compacts now and then; in a drop round, drops "tmp" and creates it again."""
    drop_after = rng.randrange(1, IMAGES_PER_ROUND // 2)  # images taken before the drop
    create_after = drop_after + rng.randrange(1, IMAGES_PER_ROUND // 3)
    while not rnd.stopped:
        await _wait_acks(rnd, rng.randrange(MAINTENANCE_GAP))
        if rnd.stopped:
            return
        if rnd.drops and rnd.drop_issued is None and len(rnd.images) >= drop_after:
            del rnd.handles[TMP + "#0"]  # writers stop naming it from now on
            rnd.tmp_label = None
            rnd.drop_issued = next(clock)
            await db.drop_column_family(TMP)
            rnd.drop_acked = next(clock)
        elif rnd.drops and rnd.create_issued is None and len(rnd.images) >= create_after:
            rnd.create_issued = next(clock)
            handle = await db.create_column_family(TMP, **rng.choice([{}, TINY_LSM]))
            rnd.create_acked = next(clock)
            rnd.handles[TMP + "#1"] = handle
            rnd.tmp_label = TMP + "#1"
        elif rng.random() < 0.4:
            await db.flush()
        else:
            cf = db.column_family(rng.choice(STABLE))
            lo, hi = sorted([rnd.prefix + b"w%02d" % rng.randrange(12) for _ in range(2)])
            await cf.compact_range(*rng.choice([(None, None), (lo, hi), (lo, None)]))


def _stacks() -> str:
    """Where every task of the loop waits: its chain of awaits, innermost last."""
    out = []
    for task in asyncio.all_tasks():
        frames = []
        coro: Any = task.get_coro()
        while coro is not None:
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                frames.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}")
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
        out.append(f"{task.get_name()}: {' > '.join(frames)}")
    return "\n".join(sorted(out))


async def _bounded(coro: Any, what: str) -> None:
    """Awaits `coro`; fails, showing where every task waits, if it is stuck (a deadlock).

    Not a timing assertion: a round takes well under a second, and STUCK_SECONDS is a hang.
    """
    task = asyncio.ensure_future(coro)
    done, _ = await asyncio.wait({task}, timeout=STUCK_SECONDS)
    if not done:
        stacks = _stacks()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        raise AssertionError(f"{what} made no progress in {STUCK_SECONDS} s (deadlock?):\n{stacks}")
    await task


@contextlib.asynccontextmanager
async def _loop_watchdog() -> Any:
    """Interrupts the test (KeyboardInterrupt in the main thread, after dumping every thread's
    stack) if the event loop stops running for STUCK_SECONDS: a busy loop that never yields
    would otherwise hang the whole test run, and no coroutine can notice it."""
    beat = [time.monotonic()]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(1.0):
            if time.monotonic() - beat[0] > STUCK_SECONDS:
                print(f"the event loop has not run for {STUCK_SECONDS} s:", file=sys.stderr)
                faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
                # asyncio.Runner takes the first SIGINT as "cancel the main task", which a
                # loop that never yields cannot do; the second raises KeyboardInterrupt.
                for _ in range(2):
                    _thread.interrupt_main()
                    time.sleep(0.5)
                return

    async def heartbeat() -> None:
        while True:
            beat[0] = time.monotonic()
            await asyncio.sleep(1.0)

    thread = threading.Thread(target=watch, name="loop-watchdog", daemon=True)
    thread.start()
    task = asyncio.ensure_future(heartbeat())
    try:
        yield
    finally:
        done.set()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        thread.join()


def _failing_sync(op: str, path: str) -> None:
    if op == "sync":
        raise OSError(errno.EIO, "injected sync failure", path)


async def _read(db: aiokv.DB) -> tuple[list[str], State]:
    """Every live family's name, and the state of all of them."""
    names = db.list_column_families()
    state: State = {}
    for name in names:
        cf = db.column_family(name)
        part = {k: v async for k, v in cf.scan()}
        assert await cf.get_many(list(part)) == list(part.values())
        state.update(((name, k), v) for k, v in part.items())
    return names, state


async def _run_round(
    fs: MemFileSystem, rnd: Round, rng: random.Random, process_crash: bool, engine: str
) -> tuple[list[str], State]:
    """Runs a round's workload; returns the families and state the database opened with."""
    cnt: dict[str, Any] = {"merge_operator": Int64Add()}
    options: dict[str, Any] = {
        "engine": engine,
        "wal_segment_size": rng.choice([64 * KiB, 256 * KiB, 64 * MiB]),
        "group_commit_size": rng.choice([4 * KiB, 4 * MiB]),
        "buffered_flush_ms": rng.choice([1, 100]),
        "io_threads": rng.choice([1, 2, 4]),
        "column_families": {"cnt": cnt},
    }
    if rng.random() < 0.5:
        options.update(TINY_LSM)
    if rng.random() < 0.5:
        cnt.update(TINY_LSM)
    clock = itertools.count()
    db = await aiokv.open(PATH, fs=fs, **options)
    try:
        start = await _read(db)
        names = db.list_column_families()
        if "small" not in names:
            await db.create_column_family("small", **TINY_LSM)
        if "big" not in names:
            await db.create_column_family("big", write_buffer_size=64 * MiB)
        if TMP in names:
            await db.drop_column_family(TMP)
        rnd.handles = {name: db.column_family(name) for name in STABLE}
        if rnd.drops:
            tmp = await db.create_column_family(TMP, **rng.choice([{}, TINY_LSM]))
            rnd.handles[TMP + "#0"] = tmp
            rnd.tmp_label = TMP + "#0"

        async def workload() -> None:
            async with asyncio.TaskGroup() as tg:
                for w in range(rng.randint(6, 10)):
                    rnd.logs[w] = []
                    tg.create_task(_writer(db, rnd, w, random.Random(rng.random()), clock))
                tg.create_task(_monitor(fs, rnd, rng, clock))
                tg.create_task(_maintain(db, rnd, random.Random(rng.random()), clock))

        await _bounded(workload(), "the round's workload")
        rnd.live = await _read(db)
        rnd.stats = db.stats()
    finally:
        if process_crash:  # a close whose fsync fails leaves what a killed process leaves
            fs.fault = _failing_sync
            with contextlib.suppress(OSError):
                await _bounded(db.aclose(), "closing the database")
            fs.fault = None
        await _bounded(db.aclose(), "closing the database")
    return start


# -- checking an image ----------------------------------------------------------------------------


async def _recover(
    fs: MemFileSystem, engine: str, rng: random.Random | None = None
) -> tuple[list[str], State, MemFileSystem | None]:
    """Opens `fs`: its families, their state, and a crash image taken while open (if rng)."""
    async with aiokv.open(PATH, engine=engine, fs=fs) as db:
        db.check()
        names, state = await _read(db)
        image = None
        if rng is not None:
            image = fs.crash_clone(rng.choice(list(CrashMode)), random.Random(rng.random()))
    return names, state, image


def _apply(state: State, write: Write, tmp: str | None) -> None:
    """Applies `write` to the model `state`; ops of a "tmp" generation other than `tmp` (the
    one the recovered store holds, or None) go nowhere."""
    for label, kind, key, value in write.ops:
        if label.startswith(TMP):
            if label != tmp:
                continue
            label = TMP
        if kind == PUT:
            state[label, key] = value
        elif kind == DELETE:
            state.pop((label, key), None)
        else:
            state[label, key] = b"%d" % (int(state.get((label, key), b"0")) + int(value))


def _replay(writes: list[Write], tmp: str | None) -> State:
    state: State = {}
    for write in writes:
        _apply(state, write, tmp)
    return state


def _tag(value: bytes) -> int:
    """The index of the write that put `value`."""
    return int(value.split(b":", 1)[0])


def _describe(write: Write) -> str:
    return (
        f"write {write.index} of writer {write.writer} ({write.how}, {write.mode}, "
        f"{len(write.ops)} ops, issued at {write.issued}, acknowledged at {write.acked})"
    )


def _diff(found: State, expected: State) -> list[tuple[str, bytes, bytes | None, bytes | None]]:
    keys = sorted(k for k in found.keys() | expected.keys() if found.get(k) != expected.get(k))

    def show(v: bytes | None, fam: str) -> bytes | None:
        return v if v is None or fam == "cnt" else v[: v.index(b":")]

    return [(f, k, show(found.get((f, k)), f), show(expected.get((f, k)), f)) for f, k in keys[:6]]


def _prefix_length(w: int, log: list[Write], found: State, tmp: str | None, own: bytes) -> int:
    """The m for which `found` is the state after the first m writes of `log`.

    m is at least the largest tag found; the counter "n" then fixes the number of writes that
    merged into it; writes that merge nothing (lone puts, barriers) leave a few candidates.
    """
    lo = max((_tag(v) for (fam, _), v in found.items() if fam != "cnt"), default=0)
    counter = int(found.get(("cnt", own + b"n"), b"0"))
    state = _replay(log[:lo], tmp)
    merged = sum(1 for x in log[:lo] if x.how in ("batch", "merge"))
    m = lo
    while merged <= counter:
        if merged == counter and state == found:
            return m
        if m == len(log):
            break
        _apply(state, log[m], tmp)
        merged += log[m].how in ("batch", "merge")
        m += 1
    expected = _replay(log[:lo], tmp)
    raise AssertionError(
        f"writer {w}: the recovered state of its keys is not the state after any prefix of its "
        f"writes (its newest tag found is {lo}, its counter n is {counter}); "
        f"(family, key, tag found, tag expected after {lo} writes): {_diff(found, expected)}"
    )


def _check_prefix(
    rnd: Round, taken: float, durable: tuple[str, ...], state: State, tmp: str | None
) -> None:
    """Checks properties 1 and 2 of the module docstring on this round's part of `state`.

    Args:
        taken: when the crash happened, on the round's logical clock.
        durable: the durabilities whose acknowledged writes must survive this crash.
        tmp: the label of the "tmp" generation that `state` holds (None: none).
    """
    found: dict[int, State] = {w: {} for w in rnd.logs}
    p = len(rnd.prefix)
    for (fam, key), value in state.items():
        w = int(key[p + 1 : p + 3])
        assert w in found, f"{fam} holds {key!r}, which no writer wrote"
        found[w][fam, key] = value
    cut: dict[int, tuple[int, int]] = {}  # writer -> (m, largest prefix length consistent)
    for w, log in rnd.logs.items():
        m = _prefix_length(w, log, found[w], tmp, rnd.prefix + b"w%02d/" % w)
        issued = bisect.bisect_left([x.issued for x in log], taken)
        assert m <= issued, f"{_describe(log[m - 1])} is present, but was issued after the image"
        top = next((x.index - 1 for x in log[m:] if x.ops), len(log))
        cut[w] = (m, top)

    assert_no_holes(rnd.logs, cut, durable, taken, _describe)


def _tmp_generation(rnd: Round, taken: float, exists: bool) -> str | None:
    """The label of the "tmp" a store recovered from a crash at `taken` holds (property 3)."""

    def before(t: float | None) -> bool:
        return t is not None and t < taken

    if not rnd.drops:
        assert not exists, f"{TMP!r} exists, but was dropped before the image"
        return None
    if not before(rnd.drop_issued):
        assert exists, f"{TMP!r} is missing, but was created before the image"
        return TMP + "#0"
    if not before(rnd.drop_acked):
        return TMP + "#0" if exists else None
    if not before(rnd.create_issued):
        assert not exists, f"{TMP!r} exists, but its drop was acknowledged before the image"
        return None
    if not before(rnd.create_acked):
        return TMP + "#1" if exists else None
    assert exists, f"{TMP!r} is missing, but its re-creation was acknowledged before the image"
    return TMP + "#1"


def _check_state(
    rnd: Round,
    baseline: State,
    taken: float,
    durable: tuple[str, ...],
    recovered: tuple[list[str], State],
) -> None:
    names, state = recovered
    assert names[0] == "default" and set(STABLE) <= set(names) <= {*STABLE, TMP}, names
    tmp = _tmp_generation(rnd, taken, TMP in names)
    old = {k: v for k, v in state.items() if k[0] != TMP and not k[1].startswith(rnd.prefix)}
    assert old == baseline, "the state recovered before this round changed"
    strays = sorted(k for f, k in state if f == TMP and not k.startswith(rnd.prefix))
    assert not strays, f"keys of an earlier round's {TMP!r} reappear: {strays[:5]}"
    if tmp == TMP + "#1":
        dropped = {
            (k, v)
            for log in rnd.logs.values()
            for x in log
            for f, _, k, v in x.ops
            if f == TMP + "#0"
        }
        back = sorted(k for (f, k), v in state.items() if f == TMP and (k, v) in dropped)
        assert not back, f"puts into the dropped {TMP!r} reappear in the one made after: {back[:5]}"
    part = {k: v for k, v in state.items() if k[1].startswith(rnd.prefix)}
    _check_prefix(rnd, taken, durable, part, tmp)


async def _check_image(
    rnd: Round, image: Image, baseline: State, rng: random.Random, engine: str
) -> tuple[list[str], State]:
    names, state, crashed_while_open = await _recover(image.fs, engine, rng)
    _check_state(rnd, baseline, image.taken, ("sync",), (names, state))
    again = await _recover(image.fs, engine)
    assert again[:2] == (names, state), "recovering a recovered image changed it"
    assert crashed_while_open is not None
    after_crash = await _recover(crashed_while_open, engine)
    assert after_crash[:2] == (names, state), "a crash right after recovery changed its state"
    return names, state


def _without_tmp(state: State) -> State:
    return {k: v for k, v in state.items() if k[0] != TMP}


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["lsm", "btree"])
async def test_crash_images_keep_cross_family_batches_whole_and_merge_counters_exact(
    engine: str,
) -> None:
    seed = int(os.environ.get("AIOKV_CRASH_SEED") or random.randrange(1 << 32))
    print(f"AIOKV_CRASH_SEED={seed}")
    async with _loop_watchdog():
        await _crash_images(seed, engine)


async def _crash_images(seed: int, engine: str) -> None:
    rng = random.Random(seed)
    modes: Counter[CrashMode] = Counter()
    work: Counter[str] = Counter()  # flushes and compactions the rounds ran
    writes = synced_writes = process_crashes = drop_rounds = 0
    t_work = t_check = 0.0
    fs = MemFileSystem()
    baseline: State = {}
    killed: Round | None = None  # the round before, if it ended as a killed process on `fs`
    for number in range(ROUNDS + 1):
        where = f"AIOKV_CRASH_SEED={seed}, round {number}"
        try:
            if number % CHAIN == 0 or number == ROUNDS:
                if killed is not None:  # no round follows on this store: check it here
                    where += f" (recovering round {killed.number}, ended like a killed process)"
                    names, state, _ = await _recover(fs, engine)
                    _check_state(killed, baseline, math.inf, ("sync", "default"), (names, state))
                if number == ROUNDS:
                    break
                fs, baseline, killed = MemFileSystem(), {}, None
            process_crash = rng.random() < PROCESS_CRASHES
            drops = rng.random() < DROP_ROUNDS
            rnd = Round(number, b"r%04d/" % number, drops, unsynced_tail=process_crash)
            t0 = time.perf_counter()
            start = await _run_round(fs, rnd, rng, process_crash, engine)
            t1 = time.perf_counter()
            where = f"AIOKV_CRASH_SEED={seed}, round {number} (its live database at the end)"
            _check_state(rnd, _without_tmp(start[1]), math.inf, ALL_MODES, rnd.live)
            if killed is None:
                assert _without_tmp(start[1]) == baseline, "the round began from another state"
            else:
                where = (
                    f"AIOKV_CRASH_SEED={seed}, round {killed.number} (recovered by round "
                    f"{number}; it ended like a killed process)"
                )
                _check_state(killed, baseline, math.inf, ("sync", "default"), start)
            baseline = _without_tmp(start[1])
            states = []
            for i, image in enumerate(rnd.images):
                where = f"AIOKV_CRASH_SEED={seed}, round {number}, image {i} ({image.mode.name})"
                states.append(await _check_image(rnd, image, baseline, rng, engine))
                modes[image.mode] += 1
            t_work += t1 - t0
            t_check += time.perf_counter() - t1
        except BaseException as e:
            e.add_note(f"reproduce with {where}")
            raise
        drop_rounds += drops
        work.update({k: rnd.stats[k] for k in ("flushes", "compactions", "trivial_moves")})
        if process_crash:
            killed = rnd
            process_crashes += 1
        else:
            killed = None
            pick = rng.randrange(len(rnd.images))
            fs, baseline = rnd.images[pick].fs, _without_tmp(states[pick][1])
        writes += sum(len(log) for log in rnd.logs.values())
        synced_writes += sum(x.mode == "sync" for log in rnd.logs.values() for x in log)
    print(f"images by mode: {dict(modes)}; writes: {writes} ({synced_writes} synced)")
    print(f"rounds ended as a killed process: {process_crashes}, dropping a family: {drop_rounds}")
    print(f"background work during the rounds: {dict(work)}")
    print(f"workload {t_work:.1f} s, checking {t_check:.1f} s")
    assert sum(modes.values()) == ROUNDS * IMAGES_PER_ROUND
    assert set(modes) == set(CrashMode)


# -- kill -9 on the real file system ---------------------------------------------------------------

KILL9_ROUNDS = 1000 if STRESS else 30
KILL9_FRESH_EVERY = 10  # rounds on one directory
KILL9_MAX_ACKS = 400  # a round kills its child after 0 to this many acknowledgements
KILL9_EARLY = 0.15  # share of rounds that kill at a random instant instead
KILL9_ROUND_SECONDS = 20.0  # a round kills its child after this long, acknowledged enough or not
CHILD = Path(__file__).with_name("kill9_families_child.py")


def _owner(key: bytes) -> tuple[int, int, int]:
    """(round, writer, n) of a key the child wrote; n is 0 for a hot key or a counter."""
    parts = key.split(b"/", 1)[0].split(b".")
    return int(parts[0]), int(parts[1]), int(parts[2]) if len(parts) == 3 else 0


def _kill9_replay(writes: Iterable[child.Write], count: int) -> State:
    state: State = {}
    for write in itertools.islice(writes, count):
        for family, kind, key, value in write.ops:
            if kind == PUT:
                state[family, key] = value
            elif kind == DELETE:
                state.pop((family, key), None)
            else:
                state[family, key] = b"%d" % (int(state.get((family, key), b"0")) + int(value))
    return state


async def _check_store(
    path: Path, seeds: dict[int, int], opened: bool, engine: str
) -> dict[tuple[int, int], int]:
    """Checks the store against the child's plans; returns how many writes of each writer of
    each round are there (a prefix of its plan).  `opened`: a child said OPEN on this store,
    so the families it opens with exist (else it may have been killed before it made them)."""
    async with aiokv.open(path, engine=engine) as db:
        db.check()
        names, state = await _read(db)
    assert sorted(names) == sorted(STABLE) or (not opened and names == ["default"]), names
    found: dict[tuple[int, int], State] = {}
    top: dict[tuple[int, int], int] = {}
    for (family, key), value in state.items():
        round_, w, n = _owner(key)
        found.setdefault((round_, w), {})[family, key] = value
        top[round_, w] = max(top.get((round_, w), 0), n)
    for (round_, w), part in found.items():
        _, mix, wseeds = child.setup(seeds[round_])
        m = top[round_, w]
        expected = _kill9_replay(child.plan(round_, w, mix, wseeds[w]), m)
        if part != expected:
            diff = sorted(
                k for k in part.keys() | expected.keys() if part.get(k) != expected.get(k)
            )
            shown = [
                (f, k, part.get((f, k), b"")[:12], expected.get((f, k), b"")[:12])
                for f, k in diff[:6]
            ]
            raise AssertionError(
                f"round {round_} writer {w}: the store is not the state after its first {m} "
                f"writes (whole batches, exact counters); (family, key, found, expected): {shown}"
            )
    return top


def _kill9_round(
    path: Path, round_: int, seed: int, rng: random.Random, stderr: Any, engine: str
) -> tuple[list[tuple[str, str]], str, bool]:
    """Runs a child on `path` and kills it; returns its acknowledgements, when it was killed
    and whether it said OPEN."""
    proc = AckingChild(CHILD, path, round_, seed, stderr, engine)
    stuck = None
    try:
        if rng.random() < KILL9_EARLY:
            delay = rng.uniform(0.0, 0.5)
            plan = f"{delay:.3f} s after its start"
            time.sleep(delay)  # where this lands decides only what is tested, not the verdict
        else:
            count = rng.randint(0, KILL9_MAX_ACKS)
            plan = f"after {count} acknowledgements"
            proc.wait_for_acks(count, time.monotonic() + KILL9_ROUND_SECONDS)
            if len(proc.acks) < count and proc.proc.poll() is None:
                # Not a timing assertion: the child acknowledges hundreds of writes a second.
                stuck = (
                    f"the child acknowledged {len(proc.acks)} of {count} writes in "
                    f"{KILL9_ROUND_SECONDS} s and is still running: stuck (deadlock?)"
                )
    finally:
        status = proc.kill()
    assert status == -signal.SIGKILL, f"the child exited by itself with status {status}"
    assert stuck is None, stuck
    return proc.acks, plan, proc.opened


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["lsm", "btree"])
async def test_kill9_keeps_acknowledged_cross_family_batches_whole_and_counters_exact(
    tmp_path: Path, engine: str
) -> None:
    seed = int(os.environ.get("AIOKV_KILL9_SEED") or random.randrange(1 << 32))
    print(f"AIOKV_KILL9_SEED={seed}")
    rng = random.Random(seed)
    err_path = tmp_path / "child.stderr"
    seeds: dict[int, int] = {}  # round -> the seed its child ran with
    seen: dict[tuple[int, int], int] = {}  # writes of each (round, writer) found by a check
    total_acks = 0
    path = tmp_path
    with open(err_path, "wb") as stderr:
        for round_ in range(KILL9_ROUNDS):
            if round_ % KILL9_FRESH_EVERY == 0:
                path = tmp_path / f"db{round_}"
                seen, opened = {}, False
            where = f"AIOKV_KILL9_SEED={seed}, round {round_}"
            try:
                seeds[round_] = rng.randrange(1 << 32)
                acks, plan, proc_opened = _kill9_round(
                    path, round_, seeds[round_], rng, stderr, engine
                )
                where += f" (killed {plan}, {len(acks)} acknowledged)"
                opened = opened or proc_opened
                top = await _check_store(path, seeds, opened, engine)
                lost = [
                    bid
                    for mode, bid in acks
                    if mode in "SD"
                    and top.get(_owner(bid.encode())[:2], 0) < _owner(bid.encode())[2]
                ]
                assert not lost, f"{len(lost)} acknowledged writes are lost: {lost[:5]}"
                for owner, m in seen.items():
                    assert top.get(owner, 0) == m, (
                        f"round {owner[0]} writer {owner[1]} had {m} writes at the last check, "
                        f"now {top.get(owner, 0)}"
                    )
            except BaseException as e:
                stderr.flush()
                e.add_note(f"reproduce with {where}; child stderr: {err_path.read_text()[-2000:]}")
                raise
            seen = dict(top)
            total_acks += len(acks)
    print(f"{KILL9_ROUNDS} rounds, {total_acks} acknowledged writes")
    assert total_acks > 0
