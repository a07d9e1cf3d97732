"""The child process of test_kill9.py: writes batches into a database until it is killed.

    python kill9_child.py DIR ROUND SEED

Prints "OPEN" once the database is open.  Then WRITERS tasks each write batches one after
another: batch <id> = "<round>.<writer>.<n>" puts the keys "<id>/<i>" for i < size, each with
the value "<id>/<size>/<padding>", in one batch (in one db.put when its size is 1).  Once the
await of a batch has returned, the child prints "<mode> <id>" and flushes stdout: mode S for
sync=True, D for default durability (survives a process crash), B for buffered (may be lost,
but never in part).  It exits by itself after MAX_SECONDS, so that it cannot outlive a parent
that failed to kill it.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time

import aiokv

WRITERS = 8
MAX_SECONDS = 60.0
MODES = {"S": {"sync": True}, "D": {}, "B": {"buffered": True}}


async def _writer(
    db: aiokv.DB, round_: int, w: int, rng: random.Random, mix: list[int], deadline: float
) -> None:
    out = sys.stdout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        bid = f"{round_}.{w}.{n}"
        size = rng.randint(1, 6)
        mode = rng.choices("SDB", mix)[0]
        value = f"{bid}/{size}/{'x' * rng.randrange(200)}".encode()
        if size == 1 and rng.random() < 0.5:
            await db.put(f"{bid}/0".encode(), value, **MODES[mode])
        else:
            async with db.batch(**MODES[mode]) as b:
                for i in range(size):
                    b.put(f"{bid}/{i}".encode(), value)
        out.write(f"{mode} {bid}\n")
        out.flush()
        if rng.random() < 0.02:
            await asyncio.sleep(0.002)  # quiet moments: nothing in flight hides a lost write
        elif mode != "S":
            await asyncio.sleep(0)  # inline writes never suspend: let the other writers run


async def main(path: str, round_: int, seed: int) -> None:
    rng = random.Random(seed)
    options = {
        "wal_segment_size": rng.choice([64 * 1024, 64 * 1024 * 1024]),
        # Small memtables: flushes (LSM) or checkpoints (B+Tree) run while the child is killed.
        "write_buffer_size": rng.choice([64 * 1024, 64 * 1024 * 1024]),
    }
    # Weights of S, D and B.  In a round without synced writes, nothing but the default
    # durability's own write puts an acknowledged batch into the OS before the kill.
    mix = rng.choice([[6, 3, 1], [1, 6, 3], [0, 1, 0]])
    async with aiokv.open(path, engine=os.environ.get("AIOKV_ENGINE", "lsm"), **options) as db:
        sys.stdout.write("OPEN\n")
        sys.stdout.flush()
        deadline = time.monotonic() + MAX_SECONDS
        async with asyncio.TaskGroup() as tg:
            for w in range(WRITERS):
                tg.create_task(_writer(db, round_, w, random.Random(rng.random()), mix, deadline))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
