"""kill -9 on the real file system: no acknowledged batch is lost, no batch survives in part.

Each round starts kill9_child.py on the same directory (so that every round but the first
recovers what a killed process left, and what the recovery before it repaired), lets it write
concurrent batches, and kills it with SIGKILL at a random moment: mostly after a random number
of acknowledgements, sometimes a random instant after its start (while it imports, opens or
recovers).  Then this process opens the directory and checks:

1. Every batch acknowledged with sync=True or with default durability is there (a process crash
   keeps what reached the OS), in every later round too.
2. Every batch is whole: all its keys, each with its value.
3. Each writer's batches that are there are a prefix of what it wrote (records reach the WAL in
   sequence order, and a writer issues a batch only once the one before is acknowledged).
4. Whatever an earlier check found stays there, and db.check() passes.

Reading the child's output and waiting for it are bounded in time; a round whose child does not
acknowledge enough in time is killed all the same.  AIOKV_KILL9_SEED=<n> repeats the choices of a
run; AIOKV_STRESS=1 runs 1,000 rounds (a fresh directory every 50, to keep each replay short).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import defaultdict
from pathlib import Path

import pytest

import aiokv
from tests.crash.acking_child import AckingChild

STRESS = os.environ.get("AIOKV_STRESS") == "1"
ROUNDS = 1000 if STRESS else 30
FRESH_EVERY = 50  # rounds on one directory
MAX_ACKS = 300  # a round kills its child after 0 to MAX_ACKS acknowledgements
EARLY_KILLS = 0.15  # share of rounds that kill at a random instant instead
ROUND_SECONDS = 20.0  # a round kills its child after this long, acknowledged enough or not
CHILD = Path(__file__).with_name("kill9_child.py")


async def _batches(path: Path, engine: str) -> dict[str, int]:
    """Opens the store; returns the size of every batch found, checking each is whole."""
    keys: dict[str, set[int]] = defaultdict(set)
    sizes: dict[str, int] = {}
    async with aiokv.open(path, engine=engine) as db:
        db.check()
        async for key, value in db.scan():
            bid, i = key.decode().split("/")
            vbid, size, _ = value.decode().split("/")
            assert vbid == bid, f"key {key!r} holds the value of batch {vbid}"
            keys[bid].add(int(i))
            sizes[bid] = int(size)
    for bid, found in keys.items():
        assert found == set(range(sizes[bid])), f"batch {bid} is there in part: {sorted(found)}"
    return sizes


def _check_prefixes(found: dict[str, int]) -> None:
    numbers: dict[tuple[str, str], list[int]] = defaultdict(list)
    for bid in found:
        round_, writer, n = bid.split(".")
        numbers[round_, writer].append(int(n))
    for (round_, writer), ns in numbers.items():
        missing = sorted(set(range(1, max(ns) + 1)) - set(ns))
        assert not missing, f"round {round_} writer {writer}: batches {missing[:5]} are missing"


def _run_round(
    path: Path, round_: int, rng: random.Random, stderr, engine: str
) -> tuple[list, str]:
    child = AckingChild(CHILD, path, round_, rng.randrange(1 << 32), stderr, engine)
    try:
        if rng.random() < EARLY_KILLS:
            delay = rng.uniform(0.0, 0.4)
            plan = f"{delay:.3f} s after its start"
            time.sleep(delay)  # where this lands decides only what is tested, not the verdict
        else:
            count = rng.randint(0, MAX_ACKS)
            plan = f"after {count} acknowledgements"
            child.wait_for_acks(count, time.monotonic() + ROUND_SECONDS)
    finally:
        status = child.kill()
    assert status == -signal.SIGKILL, f"the child exited by itself with status {status}"
    return child.acks, plan


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["lsm", "btree"])
async def test_kill9_loses_no_acknowledged_batch_and_never_part_of_one(tmp_path, engine):
    seed = int(os.environ.get("AIOKV_KILL9_SEED") or random.randrange(1 << 32))
    print(f"AIOKV_KILL9_SEED={seed}")
    rng = random.Random(seed)
    durable: set[str] = set()  # acknowledged with sync=True or default durability
    seen: set[str] = set()  # found by an earlier check
    path = tmp_path
    total_acks = 0
    err_path = tmp_path / "child.stderr"
    with open(err_path, "wb") as stderr:
        for round_ in range(ROUNDS):
            if round_ % FRESH_EVERY == 0:
                path = tmp_path / f"db{round_}"
                durable, seen = set(), set()
            where = f"AIOKV_KILL9_SEED={seed}, round {round_}"
            try:
                acks, plan = _run_round(path, round_, rng, stderr, engine)
                where += f" (killed {plan}, {len(acks)} acknowledged)"
                durable |= {bid for mode, bid in acks if mode in "SD"}
                found = await _batches(path, engine)
                lost = sorted(durable - found.keys())
                assert not lost, f"{len(lost)} acknowledged batches are lost: {lost[:5]}"
                gone = sorted(seen - found.keys())
                assert not gone, f"batches found by an earlier check are gone: {gone[:5]}"
                _check_prefixes(found)
            except BaseException as e:
                stderr.flush()
                e.add_note(f"reproduce with {where}; child stderr: {err_path.read_text()[-2000:]}")
                raise
            seen = set(found)
            total_acks += len(acks)
    print(f"{ROUNDS} rounds, {total_acks} acknowledged batches, {len(seen)} batches at the end")
    assert total_acks > 0
