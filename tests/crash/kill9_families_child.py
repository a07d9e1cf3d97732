"""The child process of test_families_crash.py's kill -9 test: cross-family batches until killed.

    python kill9_families_child.py DIR ROUND SEED

Opens DIR with four families: "default", "cnt" (an Int64Add counter family), "small" (tiny
write buffer and levels: it flushes and compacts often) and "big" (a 64 MiB write buffer: its
data stays in the WAL while the others flush); prints "OPEN".  Then WRITERS tasks each commit
the writes that `plan` yields for them, one after another, and a maintenance task flushes and
runs compact_range now and then.  Once the await of write <id> = "<round>.<writer>.<n>" has
returned, the child prints "<mode> <id>" and flushes stdout: mode S for sync=True, D for
default durability (survives a process crash), B for buffered (may be lost, never in part).
It exits by itself after MAX_SECONDS (at the latest 30 s later, even if stuck), so that it
cannot outlive a parent that failed to kill it.

`plan` is a pure function of (round, writer, seed), so the parent regenerates every write and
replays the ones it finds into a model of what the store must hold.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import aiokv
from aiokv.merge import Int64Add
from tests.tiny import TINY_LSM

WRITERS = 6
MAX_SECONDS = 60.0
HOT_KEYS = 4  # per writer: keys that batches overwrite and delete
MODES: dict[str, dict[str, bool]] = {"S": {"sync": True}, "D": {}, "B": {"buffered": True}}
PUT_FAMILIES = ("default", "small", "big")
PUT, DELETE, MERGE = "put", "delete", "merge"

Op = tuple[str, str, bytes, bytes]  # (family, kind, key, value)


@dataclass
class Write:
    bid: str  # "<round>.<writer>.<n>"
    n: int
    mode: str  # S, D or B
    how: str  # "batch" (db.batch), or "put" (cf.put on a handle: one unique key)
    ops: list[Op]
    pause: bool  # sleep a little after it: quiet moments, where nothing in flight hides a loss


def family_options() -> dict[str, dict[str, Any]]:
    """The `column_families` the child opens with (the parent opens with none)."""
    return {
        "cnt": {"merge_operator": Int64Add()},
        "small": dict(TINY_LSM),
        "big": {"write_buffer_size": 64 << 20},
    }


def setup(seed: int) -> tuple[dict[str, Any], list[int], list[float]]:
    """The child's choices for a seed: open options, durability weights, writer seeds."""
    rng = random.Random(seed)
    options: dict[str, Any] = {"wal_segment_size": rng.choice([64 << 10, 64 << 20])}
    if rng.random() < 0.5:
        options.update(TINY_LSM)
    # Weights of S, D and B.  In a round without synced writes, nothing but the default
    # durability's own write puts an acknowledged batch into the OS before the kill.
    mix = rng.choice([[6, 3, 1], [1, 6, 3], [0, 1, 0]])
    return options, mix, [rng.random() for _ in range(WRITERS)]


def plan(round_: int, w: int, mix: list[int], wseed: float) -> Iterator[Write]:
    """The writes of writer `w`, in order; each puts at least one key of its own.

    Unique keys "<id>/<i>" are never overwritten; the writer's hot keys "<round>.<w>/h<j>" are
    overwritten and deleted; its counters "<round>.<w>/n" (+1 per batch) and "/sum" (+n) are
    merged into "cnt".
    """
    rng = random.Random(wseed)
    own = f"{round_}.{w}"
    for n in itertools.count(1):
        bid = f"{own}.{n}"
        mode = rng.choices("SDB", mix)[0]
        pad = "x" * rng.randrange(250)
        pause = rng.random() < 0.02
        if rng.random() < 0.1:
            family = rng.choice(PUT_FAMILIES)
            yield Write(
                bid, n, mode, "put", [(family, PUT, f"{bid}/0".encode(), pad.encode())], pause
            )
            continue
        ops: list[Op] = []
        i = 0
        for family in rng.sample(PUT_FAMILIES, rng.randint(2, 3)):
            for _ in range(rng.randint(1, 3)):
                ops.append((family, PUT, f"{bid}/{i}".encode(), f"{bid}/{pad}".encode()))
                i += 1
        hot = [f"{own}/h{j}".encode() for j in range(HOT_KEYS)]
        ops.append((rng.choice(PUT_FAMILIES), PUT, rng.choice(hot), bid.encode()))
        if rng.random() < 0.3:
            ops.append((rng.choice(PUT_FAMILIES), DELETE, rng.choice(hot), b""))
        ops.append(("cnt", MERGE, f"{own}/n".encode(), b"1"))
        ops.append(("cnt", MERGE, f"{own}/sum".encode(), b"%d" % n))
        rng.shuffle(ops)
        yield Write(bid, n, mode, "batch", ops, pause)


async def _writer(
    db: aiokv.DB, writes: Iterator[Write], cfs: dict[str, aiokv.ColumnFamily], deadline: float
) -> None:
    out = sys.stdout
    for write in writes:
        if time.monotonic() >= deadline:
            return
        durability = MODES[write.mode]
        if write.how == "put":
            ((family, _, key, value),) = write.ops
            await cfs[family].put(key, value, **durability)
        else:
            async with db.batch(**durability) as b:
                for family, kind, key, value in write.ops:
                    if kind == PUT:
                        b.put(key, value, cf=cfs[family])
                    elif kind == DELETE:
                        b.delete(key, cf=cfs[family])
                    else:
                        b.merge(key, value, cf=cfs[family])
        out.write(f"{write.mode} {write.bid}\n")
        out.flush()
        if write.pause:
            await asyncio.sleep(0.002)
        elif write.mode != "S":
            await asyncio.sleep(0)  # inline writes never suspend: let the other writers run


async def _maintain(
    db: aiokv.DB, cfs: dict[str, aiokv.ColumnFamily], rng: random.Random, deadline: float
) -> None:
    while time.monotonic() < deadline:
        await asyncio.sleep(rng.uniform(0.005, 0.1))
        if rng.random() < 0.5:
            await db.flush()
        else:
            await cfs[rng.choice(list(cfs))].compact_range()


async def main(path: str, round_: int, seed: int) -> None:
    # A last resort that does not depend on the loop: a deadlocked child exits all the same.
    timer = threading.Timer(MAX_SECONDS + 30, os._exit, (3,))
    timer.daemon = True
    timer.start()
    options, mix, seeds = setup(seed)
    engine = os.environ.get("AIOKV_ENGINE", "lsm")
    async with aiokv.open(path, engine=engine, column_families=family_options(), **options) as db:
        cfs = {name: db.column_family(name) for name in db.list_column_families()}
        sys.stdout.write("OPEN\n")
        sys.stdout.flush()
        deadline = time.monotonic() + MAX_SECONDS
        async with asyncio.TaskGroup() as tg:
            for w, wseed in enumerate(seeds):
                tg.create_task(_writer(db, plan(round_, w, mix, wseed), cfs, deadline))
            tg.create_task(_maintain(db, cfs, random.Random(seed + 1), deadline))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
