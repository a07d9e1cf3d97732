"""The contract of persistence: a store that can reopen keeps everything across a clean close,
and one that can crash keeps every write acknowledged before a synced one.  On stores that
cannot (the model, in-memory engines) the history still runs and is checked as it goes."""

from __future__ import annotations

import math

from aiokv.merge import Int64Add
from tests.conformance.harness import scan

FAMILIES = {"counters": {"merge_operator": Int64Add()}}


async def everything(db, clock) -> None:
    """A history that touches every kind of state a store keeps."""
    counters = db.column_family("counters")
    sessions = await db.create_column_family("sessions", ttl=100)
    gone = await db.create_column_family("gone")
    await gone.put(b"g", b"x")
    for i in range(300):
        await db.put(b"k%04d" % i, b"v%d" % i)
    await db.flush()
    await db.delete_range(b"k0100", b"k0200")
    await db.put(b"k0150", b"back")
    await db.delete(b"k0000")
    await db.put(b"big", b"B" * 70_000)
    await db.put(b"expiring", b"e", ttl=50)
    await db.put(b"expired", b"e", ttl=1)
    await db.expire(b"k0001", 30)
    await counters.merge(b"hits", b"5")
    await db.flush()
    await counters.merge(b"hits", b"7")
    await sessions.put(b"s", b"alice")
    async with db.batch() as b:
        b.put(b"x", b"1", cf=sessions)
        b.merge(b"hits", b"-2", cf=counters)
        b.put(b"k0299", b"batched")
    await db.drop_column_family(gone)
    clock.advance(1)


async def state(db) -> list:
    """Everything a reader can see, with the seconds left of each TTL."""
    out: list = [db.list_column_families()]
    for name in db.list_column_families():
        cf = db.column_family(name)
        items = await scan(cf)
        out.append((name, items, [await cf.ttl(k) for k, _ in items]))
    return out


async def check_everything(db) -> None:
    got = await state(db)
    assert got[0] == ["default", "counters", "sessions"]
    default, counters, sessions = got[1], got[2], got[3]
    keys = [k for k, _ in default[1]]
    assert len(keys) == 202  # 300, less k0000 and the 100 of the range, + k0150, big, expiring
    assert b"k0100" not in keys and b"k0150" in keys and b"expired" not in keys
    assert dict(default[1])[b"k0299"] == b"batched"
    assert dict(default[1])[b"big"] == b"B" * 70_000
    ttls = dict(zip(keys, default[2], strict=True))
    assert (ttls[b"expiring"], ttls[b"k0001"], ttls[b"k0002"]) == (49.0, 29.0, math.inf)
    assert counters[1:] == ([(b"hits", b"10")], [math.inf])
    assert sessions[1:] == ([(b"s", b"alice"), (b"x", b"1")], [99.0, 99.0])


async def test_a_store_keeps_everything_across_reopen(opener, clock):
    db = await opener.open(column_families=FAMILIES)
    await everything(db, clock)
    await check_everything(db)
    if opener.can_reopen:
        db = await opener.reopen(db)
        await check_everything(db)
        db = await opener.reopen(db)  # a second cycle: recovery is idempotent
        await check_everything(db)
        await db.compact_range()
        await check_everything(db)


async def test_a_crash_after_a_synced_write_keeps_every_write_before_it(opener, clock):
    db = await opener.open(column_families=FAMILIES)
    await everything(db, clock)
    await db.put(b"last", b"synced", sync=True)
    before = await state(db)
    if opener.can_crash:
        db = await opener.crash(db)
        assert await state(db) == before
        await db.put(b"after", b"crash", sync=True)
        db = await opener.crash(db)
        assert await db.get(b"after") == b"crash"
        await db.delete(b"after")
        assert await state(db) == before
    await db.delete(b"last")
    await check_everything(db)
