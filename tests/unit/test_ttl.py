"""Per-key and per-family TTL through the public API: reads hide expired values at once,
expire() and ttl(), compaction and the TTL GC task drop expired entries from the tables, and
an expired key never comes back with an older value.  Time is a fake clock the tests advance."""

from __future__ import annotations

import asyncio
import math

import pytest

import aiokv
from aiokv.engine.memfs import MemFileSystem
from tests.tiny import TINY_LSM

PATH = "/db"
START = 1_000_000.0


class Clock:
    """A clock that moves only when a test says so."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def table_entries(db: aiokv.DB, cf: aiokv.ColumnFamily | None = None) -> int:
    """Entries the family's tables hold, every level together."""
    cfid = 0 if cf is None else cf.id
    return sum(f.entries for _, f in db._engine.versions.current[cfid].files())


async def dump(db: aiokv.DB, *cfs: aiokv.ColumnFamily) -> tuple[int, list[list[tuple]]]:
    """What a bad call must leave as it was: the last sequence number and every family's scan."""
    scans = [[kv async for kv in db.scan()]]
    for cf in cfs:
        scans.append([kv async for kv in cf.scan()])
    return db._committer.last_seq, scans


def open_db(fs: MemFileSystem, clock: Clock, **options):
    return aiokv.open(PATH, fs=fs, clock=clock, **options)


# -- reads hide expired values ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["memtable", "table", "compacted"])
async def test_a_per_key_ttl_hides_the_value_as_soon_as_the_clock_passes_it(where):
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        await db.put(b"short", b"v1", ttl=10)
        await db.put(b"plain", b"v2")
        if where != "memtable":
            await db.flush()
        if where == "compacted":
            await db.compact_range()
            assert db.stats()["l6_tables"] == 1
        clock.advance(9.999)
        assert await db.get(b"short") == b"v1"
        assert await db.get_many([b"short", b"plain"]) == [b"v1", b"v2"]
        clock.advance(0.001)  # exactly at the expiry: gone
        assert await db.get(b"short") is None
        assert await db.get_many([b"short", b"plain"]) == [None, b"v2"]
        assert [kv async for kv in db.scan()] == [(b"plain", b"v2")]
        assert [kv async for kv in db.scan(reverse=True)] == [(b"plain", b"v2")]
        assert await db.ttl(b"short") is None


async def test_an_expired_key_stays_hidden_at_a_snapshot_taken_before_it_expired():
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        await db.put(b"k", b"v", ttl=5)
        with db.snapshot() as snap:
            assert await snap.get(b"k") == b"v"
            clock.advance(5)
            assert await snap.get(b"k") is None  # reads never return an expired value
            assert [kv async for kv in snap.scan()] == []


# -- family default ttl -------------------------------------------------------------------------


async def test_the_ttl_option_stamps_every_put_of_the_default_family():
    clock = Clock()
    async with open_db(MemFileSystem(), clock, ttl=30) as db:
        await db.put(b"a", b"1")
        await db.put_many({b"b": b"2"})
        async with db.batch() as b:
            b.put(b"c", b"3")
        assert [await db.ttl(k) for k in (b"a", b"b", b"c")] == [30.0, 30.0, 30.0]
        clock.advance(29)
        assert await db.get_many([b"a", b"b", b"c"]) == [b"1", b"2", b"3"]
        clock.advance(1)
        assert await db.get_many([b"a", b"b", b"c"]) == [None, None, None]


async def test_the_default_family_ttl_is_persisted_and_still_stamps_puts_after_reopen():
    fs, clock = MemFileSystem(), Clock()
    async with open_db(fs, clock, ttl=30):
        pass
    async with open_db(fs, clock) as db:  # ttl not given again: the persisted one holds
        await db.put(b"a", b"1")
        assert await db.ttl(b"a") == 30.0


async def test_a_family_ttl_stamps_its_own_puts_only():
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        sessions = await db.create_column_family("sessions", ttl=5)
        await sessions.put(b"s1", b"alice")
        async with db.batch() as b:
            b.put(b"s2", b"bob", cf=sessions)
            b.put(b"user", b"carol")  # the default family has no ttl
        assert await sessions.ttl(b"s1") == 5.0
        assert await db.ttl(b"user") == math.inf
        clock.advance(5)
        assert await sessions.get(b"s1") is None
        assert await sessions.get(b"s2") is None
        assert await db.get(b"user") == b"carol"


async def test_a_puts_own_ttl_overrides_the_family_ttl_both_ways():
    clock = Clock()
    async with open_db(MemFileSystem(), clock, ttl=10) as db:
        await db.put(b"long", b"v", ttl=100)
        await db.put(b"short", b"v", ttl=1)
        await db.put(b"family", b"v")
        assert [await db.ttl(k) for k in (b"long", b"short", b"family")] == [100.0, 1.0, 10.0]
        clock.advance(50)
        assert await db.get_many([b"long", b"short", b"family"]) == [b"v", None, None]


# -- expire and ttl -----------------------------------------------------------------------------


async def test_ttl_reports_none_inf_or_the_seconds_left():
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        await db.put(b"forever", b"v")
        await db.put(b"soon", b"v", ttl=10)
        await db.put(b"gone", b"v")
        await db.delete(b"gone")
        assert await db.ttl(b"never-written") is None
        assert await db.ttl(b"gone") is None
        assert await db.ttl(b"forever") == math.inf
        clock.advance(2.5)
        assert await db.ttl(b"soon") == pytest.approx(7.5)
        await db.flush()  # the same answers from a table
        assert await db.ttl(b"soon") == pytest.approx(7.5)
        assert await db.ttl(b"forever") == math.inf
        clock.advance(7.5)
        assert await db.ttl(b"soon") is None


async def test_expire_sets_a_ttl_on_a_live_key_and_keeps_its_value():
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        await db.put(b"k", b"v")
        await db.flush()  # the key sits in a table: expire reads it there
        assert await db.expire(b"k", 20) is True
        assert await db.ttl(b"k") == 20.0
        assert await db.get(b"k") == b"v"
        clock.advance(20)
        assert await db.get(b"k") is None


async def test_expire_with_none_removes_the_expiry():
    clock = Clock()
    async with open_db(MemFileSystem(), clock, ttl=10) as db:
        await db.put(b"k", b"v", ttl=5)
        assert await db.expire(b"k", None) is True
        assert await db.ttl(b"k") == math.inf
        clock.advance(1000)
        assert await db.get(b"k") == b"v"


@pytest.mark.parametrize("state", ["missing", "deleted", "expired", "range-deleted"])
async def test_expire_on_a_key_without_a_live_value_returns_false_and_writes_nothing(state):
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        await db.put(b"other", b"x")
        if state == "deleted":
            await db.put(b"k", b"v")
            await db.delete(b"k")
        elif state == "expired":
            await db.put(b"k", b"v", ttl=1)
            clock.advance(1)
        elif state == "range-deleted":
            await db.put(b"k", b"v")
            await db.flush()
            await db.delete_range(b"a", b"l")
        before = await dump(db)
        assert await db.expire(b"k", 60) is False
        assert await db.expire(b"k", None) is False
        assert await db.expire(b"k", 60, sync=True) is False
        assert await dump(db) == before
        assert await db.get(b"k") is None
        assert await db.ttl(b"k") is None


@pytest.mark.parametrize(
    ("ttl", "error"),
    [
        (0, aiokv.InvalidArgumentError),
        (-1, aiokv.InvalidArgumentError),
        (math.inf, aiokv.InvalidArgumentError),
        (math.nan, aiokv.InvalidArgumentError),
        ("10", aiokv.InvalidTypeError),
        (True, aiokv.InvalidTypeError),
    ],
)
async def test_a_bad_ttl_is_refused_by_put_and_expire_and_changes_nothing(ttl, error):
    fs, clock = MemFileSystem(), Clock()
    async with open_db(fs, clock) as db:
        await db.put(b"k", b"v", ttl=10)
        before = await dump(db)
        with pytest.raises(error):
            await db.put(b"k", b"new", ttl=ttl)
        with pytest.raises(error):
            await db.put(b"k", b"new", ttl=ttl, sync=True)
        with pytest.raises(error):
            await db.expire(b"k", ttl)
        with pytest.raises(error):
            db.batch().put(b"k", b"new", ttl=ttl)
        with pytest.raises(error):
            await db.create_column_family("c", ttl=ttl)
        assert await dump(db) == before
        assert await db.ttl(b"k") == 10.0
        assert db.list_column_families() == ["default"]
    async with open_db(fs, clock) as db:
        assert await db.get(b"k") == b"v"
        assert await db.ttl(b"k") == 10.0


async def test_a_synced_expire_survives_a_power_cut():
    fs, clock = MemFileSystem(), Clock()
    async with open_db(fs, clock) as db:
        await db.put(b"k", b"v", sync=True)
        assert await db.expire(b"k", 30, sync=True) is True
        image = fs.crash_clone()
    async with open_db(image, clock) as db:
        assert await db.get(b"k") == b"v"
        assert await db.ttl(b"k") == 30.0
        clock.advance(30)
        assert await db.get(b"k") is None


async def test_expire_queued_behind_a_synced_put_keeps_the_puts_value():
    fs, clock = MemFileSystem(), Clock()
    async with open_db(fs, clock) as db:
        await db.put(b"k", b"old")
        put = asyncio.create_task(db.put(b"k", b"new", sync=True))
        await asyncio.sleep(0)  # the put is queued (its sync is in flight) before expire runs
        found, _ = await asyncio.gather(db.expire(b"k", 30), put)
        assert found is True
        assert await db.get(b"k") == b"new"
        assert await db.ttl(b"k") == 30.0  # applied after the put, to the put's value
        image = fs.crash_clone()
    async with open_db(image, clock) as db:
        assert await db.get(b"k") == b"new"  # the put was synced; the expire may or may not be


@pytest.mark.parametrize("sync", [False, True])
async def test_expire_racing_a_put_never_loses_the_puts_value(sync):
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        await db.put(b"k", b"old")
        put = asyncio.create_task(db.put(b"k", b"new", sync=True))
        found, _ = await asyncio.gather(db.expire(b"k", 30, sync=sync), put)
        assert found is True
        assert await db.get(b"k") == b"new"
        assert await db.ttl(b"k") in (30.0, math.inf)  # before the put or after it
        clock.advance(30)
        assert await db.get(b"k") in (b"new", None)
        if await db.ttl(b"k") == math.inf:
            assert await db.get(b"k") == b"new"


# -- compaction and the GC task drop expired entries --------------------------------------------


async def write_expiring(db: aiokv.DB, n: int, ttl: float, cf=None) -> None:
    for i in range(n):
        await db.put(b"e%04d" % i, b"x" * 20, ttl=ttl, cf=cf)
        await db.put(b"p%04d" % i, b"y" * 20, cf=cf)


async def test_compaction_drops_expired_entries_from_the_tables():
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        await write_expiring(db, 200, ttl=10)
        await db.compact_range()
        assert table_entries(db) == 400
        clock.advance(10)
        await db.compact_range()
        assert table_entries(db) == 200
        assert [k async for k, _ in db.scan()] == [b"p%04d" % i for i in range(200)]
        db.check()


async def test_compaction_drops_expired_entries_of_a_family_with_a_ttl():
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        s = await db.create_column_family("s", ttl=10)
        for i in range(100):
            await s.put(b"k%03d" % i, b"v")
        await s.compact_range()
        assert table_entries(db, s) == 100
        clock.advance(10)
        await s.compact_range()
        assert table_entries(db, s) == 0
        assert [kv async for kv in s.scan()] == []


async def wait_until(cond, rounds: int = 500) -> bool:
    for _ in range(rounds):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return cond()


async def test_the_gc_task_drops_expired_entries_with_no_write_at_all():
    clock = Clock()
    async with open_db(MemFileSystem(), clock, ttl_gc_interval=0.01) as db:
        await write_expiring(db, 100, ttl=10)
        await db.flush()
        assert table_entries(db) == 200
        seq = db._committer.last_seq
        clock.advance(10)
        assert await wait_until(lambda: db.stats()["ttl_gc_tasks"] > 0 and table_entries(db) == 100)
        assert db._committer.last_seq == seq  # nothing was written
        assert await db.get(b"e0000") is None
        assert await db.get(b"p0099") == b"y" * 20


async def test_collect_expired_drops_expired_entries_on_demand_and_counts_the_tables():
    clock = Clock()
    async with open_db(MemFileSystem(), clock) as db:
        await write_expiring(db, 100, ttl=10)
        await db.flush()
        await write_expiring(db, 100, ttl=10)  # overwrites, in a second table
        await db.flush()
        assert db.stats()["l0_tables"] == 2
        assert await db.collect_expired() == 0  # nothing expired yet
        clock.advance(10)
        assert await db.collect_expired() == 2
        assert db.stats()["ttl_gc_tasks"] == 2
        assert await db.collect_expired() == 0  # a second pass finds nothing to do
        assert await db.get(b"e0042") is None
        assert await db.get(b"p0042") == b"y" * 20
        await db.compact_range()
        assert table_entries(db) == 100
        db.check()


async def test_collect_expired_on_an_in_memory_database_does_nothing():
    clock = Clock()
    async with aiokv.open(None, clock=clock) as db:
        await db.put(b"k", b"v", ttl=1)
        clock.advance(1)
        assert await db.collect_expired() == 0
        assert await db.get(b"k") is None


async def test_an_expired_key_never_brings_back_an_older_value_from_a_deeper_level():
    fs, clock = MemFileSystem(), Clock()
    async with open_db(fs, clock, **TINY_LSM) as db:
        await db.put(b"k", b"v1")
        for i in range(100):  # neighbours, so the bottom table is not all about k
            await db.put(b"n%03d" % i, b"n")
        await db.compact_range()
        assert db.stats()["l6_tables"] >= 1
        await db.put(b"k", b"v2", ttl=1)
        await db.flush()
        clock.advance(1)
        assert await db.get(b"k") is None
        assert await db.collect_expired() >= 1
        assert await db.get(b"k") is None
        await db.compact_range()
        assert await db.get(b"k") is None
        assert await db.ttl(b"k") is None
        assert await db.expire(b"k", 10) is False
        assert [k async for k, _ in db.scan(end=b"m")] == []
        db.check()
    async with open_db(fs, clock, **TINY_LSM) as db:
        assert await db.get(b"k") is None
        assert await db.get(b"n050") == b"n"


async def test_the_gc_task_never_resurrects_an_older_value_either():
    clock = Clock()
    async with open_db(MemFileSystem(), clock, ttl_gc_interval=0.01) as db:
        await db.put(b"k", b"v1")
        await db.compact_range()
        await db.put(b"k", b"v2", ttl=1)
        await db.flush()
        clock.advance(1)
        assert await wait_until(lambda: db.stats()["ttl_gc_tasks"] > 0)
        assert await db.get(b"k") is None
        await db.compact_range()
        assert await db.get(b"k") is None
        assert table_entries(db) == 0
