"""Crash images taken in the middle of a concurrent workload: no acknowledged synced write is lost.

Each round opens a database on a MemFileSystem and runs 8 to 16 writer tasks.  Each writer owns
its keys and writes them one await after another: single puts and multi-key batches, synced,
default-durability or buffered, and now and then an empty synced batch (a sync barrier).  Every
value is tagged with the index of the write that wrote it.  A single put writes one of the
writer's hot keys; a batch writes 1 to 6 of the writer's batch keys and a hot key, and may delete
another hot key.  A monitor task takes crash images (`crash_clone`, all three modes) at random
points between awaits, noting the logical time; the log notes the logical time at which each write
was issued and acknowledged.

After the round, every image is opened and checked:

1. The recovered state is the state after a prefix of the commit order.  Per writer: its keys
   hold exactly what its first m writes left (m is the largest tag found, since every write that
   changes anything puts a key with its own tag).  Across writers: no write is present while a
   write acknowledged before it was issued is missing (acknowledged before issued means a smaller
   sequence number, and records reach the WAL in sequence order).
2. That prefix holds every write acknowledged with sync=True before the image was taken, and
   every write acknowledged, with any durability, before such a write was issued.
3. Nothing issued after the image was taken is present.
4. Batches are all-or-nothing (part of 1: either every key of a batch shows its tag, or a later
   write's, or the batch is not in the prefix and none of its keys shows its tag).
5. db.check() passes, and recovery is idempotent: reopening the recovered image, and opening a
   crash image of it taken while the recovered database was open, give the same state.

A round ends in one of two ways.  Either the next round continues on one of its images (a
power cut), or its writers end with a few unsynced writes and its database dies like a killed
process (its closing fsync fails, so nothing is synced that was not synced before) and the next
round reopens the live file system.  There every write acknowledged with sync=True or default
durability must be present (properties 1 to 4, with both durabilities in 2), and the tail that
was recovered without ever having been synced must survive the power cuts of the next round.
Either way, the state the next round starts from must come back unchanged in all its images.
AIOKV_CRASH_SEED=<n> repeats the random choices of a run (thread timing may still vary the
interleaving); AIOKV_STRESS=1 takes 100 times as many images.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import errno
import itertools
import math
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest

import aiokv
from aiokv.engine.memfs import CrashMode, MemFileSystem
from tests.crash.prefix_verdict import assert_no_holes

STRESS = os.environ.get("AIOKV_STRESS") == "1"
ROUNDS = 1000 if STRESS else 10
IMAGES_PER_ROUND = 50  # 500 images per run, 50,000 under AIOKV_STRESS=1
CHAIN = 5  # rounds that each continue on what the round before left, then a fresh store
PROCESS_CRASHES = 0.5  # share of rounds that end as a killed process, not with a power cut
MAX_WRITES = 400  # per writer and round: bounds the round if the monitor were to stall
MAX_GAP = 20  # acknowledgements between two images: 0 to MAX_GAP - 1
MAX_SPIN = 10_000  # loop iterations between two images, at most
HOT_KEYS = 3  # keys per writer that single puts and batches overwrite
BATCH_SLOTS = 8  # more keys per writer that only batches write (1 to 6 of them each time)
PATH = "/db"
KiB = 1024

Ops = list[tuple[bytes, bytes | None]]  # puts, and deletes (value None)


@dataclass(eq=False)
class Write:
    writer: int
    index: int  # 1-based position in its writer's sequence
    mode: str  # "sync", "default" or "buffered"
    ops: Ops  # empty for a sync barrier
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
    logs: dict[int, list[Write]] = field(default_factory=dict)
    images: list[Image] = field(default_factory=list)
    acks: int = 0
    stopped: bool = False
    unsynced_tail: bool = False  # after the last image, end with a few unsynced writes


def _durability(mode: str) -> dict[str, bool]:
    return {"sync": mode == "sync", "buffered": mode == "buffered"}


async def _commit(db: aiokv.DB, write: Write, as_put: bool) -> None:
    if as_put:
        ((key, value),) = write.ops
        await db.put(key, value, **_durability(write.mode))
        return
    async with db.batch(**_durability(write.mode)) as b:
        for key, value in write.ops:
            if value is None:
                b.delete(key)
            else:
                b.put(key, value)


def _plan(
    rnd: Round, w: int, index: int, rng: random.Random, unsynced: bool
) -> tuple[str, Ops, bool]:
    """Chooses the next write of writer `w`: (durability, ops, whether through db.put)."""
    own = rnd.prefix + b"w%02d/" % w
    hot = [own + b"h%d" % j for j in range(HOT_KEYS)]
    tag = b"%d:" % index

    def value() -> bytes:
        return tag + b"x" * rng.randrange(300)

    mode = rng.choices(["sync", "default", "buffered"], [0 if unsynced else 5, 3, 2])[0]
    kind = rng.random()
    if kind < 0.05 and not unsynced:
        return "sync", [], False  # an empty synced batch: everything before it becomes durable
    if kind < 0.45:
        return mode, [(rng.choice(hot), value())], rng.random() < 0.8
    slots = rng.sample(range(BATCH_SLOTS), rng.randint(1, 6))
    ops: Ops = [(own + b"s%d" % i, value()) for i in slots]
    put_hot, del_hot = rng.sample(hot, 2)
    ops.append((put_hot, value()))
    if rng.random() < 0.3:
        ops.append((del_hot, None))
    rng.shuffle(ops)
    return mode, ops, False


async def _writer(db: aiokv.DB, rnd: Round, w: int, rng: random.Random, clock) -> None:
    log = rnd.logs[w]
    tail = None  # once stopped: how many unsynced writes are still to do
    for index in range(1, MAX_WRITES + 1):
        if rnd.stopped and tail is None:
            tail = rng.randrange(4) if rnd.unsynced_tail else 0
        if tail is not None:
            if tail == 0:
                return
            tail -= 1
        mode, ops, as_put = _plan(rnd, w, index, rng, tail is not None)
        write = Write(w, index, mode, ops, next(clock))
        log.append(write)
        await _commit(db, write, as_put)
        write.acked = next(clock)
        rnd.acks += 1


async def _monitor(fs: MemFileSystem, rnd: Round, rng: random.Random, clock) -> None:
    try:
        while len(rnd.images) < IMAGES_PER_ROUND:
            # Wait for a random number of acknowledgements (bounded in loop iterations, in case
            # the writers stall), then for a few more iterations, so that images fall between
            # the steps of a group commit too.
            target = rnd.acks + rng.randrange(MAX_GAP)
            for _ in range(MAX_SPIN):
                if rnd.acks >= target:
                    break
                await asyncio.sleep(0)
            for _ in range(rng.randrange(4)):
                await asyncio.sleep(0)
            mode = rng.choice(list(CrashMode))
            # No await between reading the clock and cloning: the image is of that instant.
            taken = next(clock)
            rnd.images.append(Image(taken, mode, fs.crash_clone(mode, random.Random(rng.random()))))
    finally:
        rnd.stopped = True


def _failing_sync(op: str, path: str) -> None:
    if op == "sync":
        raise OSError(errno.EIO, "injected sync failure", path)


async def _run_round(
    fs: MemFileSystem, rnd: Round, rng: random.Random, process_crash: bool, engine: str
) -> dict[bytes, bytes]:
    """Runs a round's workload; returns the state the database recovered when it opened."""
    options: dict[str, Any] = {
        "engine": engine,
        "wal_segment_size": rng.choice([64 * KiB, 256 * KiB, 64 * KiB * KiB]),
        "group_commit_size": rng.choice([4 * KiB, 4 * KiB * KiB]),
        "buffered_flush_ms": rng.choice([1, 100]),
        "io_threads": rng.choice([1, 2, 4]),
    }
    if rng.random() < 0.5:  # flushes and compactions run during the workload and the crash
        options.update(
            write_buffer_size=rng.choice([16 * KiB, 32 * KiB]),
            block_size=256,
            target_file_size=16 * KiB,
            max_bytes_for_level_base=64 * KiB,
            level_multiplier=4,
            l0_compaction_trigger=2,
        )
    clock = itertools.count()
    writers = rng.randint(8, 16)
    db = await aiokv.open(PATH, fs=fs, **options)
    try:
        start = {k: v async for k, v in db.scan()}
        async with asyncio.TaskGroup() as tg:
            for w in range(writers):
                rnd.logs[w] = []
                tg.create_task(_writer(db, rnd, w, random.Random(rng.random()), clock))
            tg.create_task(_monitor(fs, rnd, rng, clock))
    finally:
        if process_crash:  # a close whose fsync fails leaves what a killed process leaves
            fs.fault = _failing_sync
            with contextlib.suppress(OSError):
                await db.aclose()
            fs.fault = None
        await db.aclose()
    return start


# -- checking an image ----------------------------------------------------------------------------


async def _recover(fs: MemFileSystem, engine: str, rng: random.Random | None = None):
    """Opens `fs`; returns the state, and a crash image taken while it was open (if rng)."""
    async with aiokv.open(PATH, engine=engine, fs=fs) as db:
        db.check()
        state = {k: v async for k, v in db.scan()}
        assert await db.get_many(list(state)) == list(state.values())
        image = None
        if rng is not None:
            image = fs.crash_clone(rng.choice(list(CrashMode)), random.Random(rng.random()))
    return state, image


def _replay(writes: list[Write]) -> dict[bytes, bytes]:
    state: dict[bytes, bytes] = {}
    for write in writes:
        for key, value in write.ops:
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


def _tag(value: bytes | None) -> int | None:
    """The index of the write that wrote `value`."""
    return None if value is None else int(value.split(b":", 1)[0])


def _describe(write: Write) -> str:
    return (
        f"write {write.index} of writer {write.writer} ({write.mode}, {len(write.ops)} ops, "
        f"issued at {write.issued}, acknowledged at {write.acked})"
    )


def _check_prefix(
    rnd: Round, taken: float, durable: tuple[str, ...], state: dict[bytes, bytes]
) -> None:
    """Checks properties 1 to 4 of the module docstring on this round's part of `state`.

    Args:
        taken: when the crash happened, on the round's logical clock.
        durable: the durabilities whose acknowledged writes must survive this crash.
    """
    found: dict[int, dict[bytes, bytes]] = {w: {} for w in rnd.logs}
    for key, value in state.items():
        found[int(key[len(rnd.prefix) + 1 : len(rnd.prefix) + 3])][key] = value
    cut: dict[int, tuple[int, int]] = {}  # writer -> (m, largest prefix length consistent)
    for w, log in rnd.logs.items():
        m = max(map(_tag, found[w].values()), default=0)
        issued = bisect.bisect_left([x.issued for x in log], taken)
        assert m <= issued, f"{_describe(log[m - 1])} is present, but was issued after the image"
        expected = _replay(log[:m])
        if found[w] != expected:
            diff = sorted(
                k for k in expected.keys() | found[w].keys() if found[w].get(k) != expected.get(k)
            )
            shown = [(k, _tag(found[w].get(k)), _tag(expected.get(k))) for k in diff[:5]]
            raise AssertionError(
                f"writer {w}: the recovered keys are not the state after its first {m} writes; "
                f"(key, tag found, tag expected): {shown}"
            )
        top = next((x.index - 1 for x in log[m:] if x.ops), len(log))
        cut[w] = (m, top)

    assert_no_holes(rnd.logs, cut, durable, taken, _describe)


def _part(rnd: Round, state: dict[bytes, bytes]) -> dict[bytes, bytes]:
    return {k: v for k, v in state.items() if k.startswith(rnd.prefix)}


def _check_process_crash(
    rnd: Round, baseline: dict[bytes, bytes], state: dict[bytes, bytes]
) -> None:
    """Checks what was recovered after `rnd` ended as a killed process."""
    old = {k: v for k, v in state.items() if not k.startswith(rnd.prefix)}
    assert old == baseline, "the state recovered before the round changed"
    _check_prefix(rnd, math.inf, ("sync", "default"), _part(rnd, state))


async def _check_image(
    rnd: Round, image: Image, baseline: dict[bytes, bytes], rng: random.Random, engine: str
) -> dict[bytes, bytes]:
    state, crashed_while_open = await _recover(image.fs, engine, rng)
    old = {k: v for k, v in state.items() if not k.startswith(rnd.prefix)}
    assert old == baseline, "the state recovered before this round changed"
    _check_prefix(rnd, image.taken, ("sync",), _part(rnd, state))
    again, _ = await _recover(image.fs, engine)
    assert again == state, "recovering a recovered image changed its state"
    assert crashed_while_open is not None
    after_crash, _ = await _recover(crashed_while_open, engine)
    assert after_crash == state, "a crash right after recovery changed the recovered state"
    return state


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["lsm", "btree"])
async def test_crash_images_keep_every_acknowledged_synced_write_and_whole_batches(engine):
    seed = int(os.environ.get("AIOKV_CRASH_SEED") or random.randrange(1 << 32))
    print(f"AIOKV_CRASH_SEED={seed}")
    rng = random.Random(seed)
    modes: Counter[CrashMode] = Counter()
    writes = synced_writes = process_crashes = 0
    t_work = t_check = 0.0
    fs, baseline = MemFileSystem(), {}
    killed: Round | None = None  # the round before, if it ended as a killed process on `fs`
    for number in range(ROUNDS + 1):
        where = f"AIOKV_CRASH_SEED={seed}, round {number}"
        try:
            if number % CHAIN == 0 or number == ROUNDS:
                if killed is not None:  # no round follows on this store: check it here
                    state, _ = await _recover(fs, engine)
                    _check_process_crash(killed, baseline, state)
                if number == ROUNDS:
                    break
                fs, baseline, killed = MemFileSystem(), {}, None
            process_crash = rng.random() < PROCESS_CRASHES
            rnd = Round(number, b"r%04d/" % number, unsynced_tail=process_crash)
            t0 = time.perf_counter()
            start = await _run_round(fs, rnd, rng, process_crash, engine)
            t1 = time.perf_counter()
            if killed is None:
                assert start == baseline, "the state the round began from is not the last one"
            else:
                _check_process_crash(killed, baseline, start)
            baseline = start
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
        if process_crash:
            killed = rnd
            process_crashes += 1
        else:
            killed = None
            pick = rng.randrange(len(rnd.images))
            fs, baseline = rnd.images[pick].fs, states[pick]
        writes += sum(len(log) for log in rnd.logs.values())
        synced_writes += sum(x.mode == "sync" for log in rnd.logs.values() for x in log)
    print(f"images by mode: {dict(modes)}; writes: {writes} ({synced_writes} synced)")
    print(f"rounds ended as a killed process: {process_crashes} of {ROUNDS}")
    print(f"workload {t_work:.1f} s, checking {t_check:.1f} s")
    assert sum(modes.values()) == ROUNDS * IMAGES_PER_ROUND >= 500
    assert set(modes) == set(CrashMode)
