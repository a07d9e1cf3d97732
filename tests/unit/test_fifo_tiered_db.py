"""FIFO and tiered compaction through the public API: a FIFO family stays within its size and
drops whole tables past its ttl, a tiered family uses only L0 and L6, compact_range respects
each style, and every family keeps its style across reopen."""

from __future__ import annotations

import asyncio

import pytest

import aiokv
from aiokv.engine.memfs import MemFileSystem
from tests.tiny import TINY_LSM

PATH = "/db"
FIFO_MAX = 64 * 1024
BUFFER = TINY_LSM["write_buffer_size"]
VALUE = b"v" * 40


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def table_bytes(db: aiokv.DB, cf: aiokv.ColumnFamily) -> int:
    s = db.stats(cf=cf)
    return sum(s[f"l{lv}_bytes"] for lv in range(7))


def tables_per_level(db: aiokv.DB, cf: aiokv.ColumnFamily) -> list[int]:
    s = db.stats(cf=cf)
    return [s[f"l{lv}_tables"] for lv in range(7)]


async def wait_until(cond, rounds: int = 500) -> bool:
    """Waits (bounded) for the background tasks to make `cond` true."""
    for _ in range(rounds):
        if cond():
            return True
        await asyncio.sleep(0.01)
    return cond()


def key(i: int) -> bytes:
    return b"k%06d" % i


# -- FIFO -----------------------------------------------------------------------------------------


async def test_a_fifo_family_stays_within_its_size_while_ten_times_that_is_written():
    async with aiokv.open(PATH, fs=MemFileSystem(), **TINY_LSM) as db:
        logs = await db.create_column_family(
            "logs", compaction="fifo", max_table_files_size=FIFO_MAX
        )
        n = 10 * FIFO_MAX // len(VALUE)
        largest = 0
        for i in range(n):
            await logs.put(key(i), VALUE)
            if i % 50 == 0:
                largest = max(largest, table_bytes(db, logs))
        # The bound is soft by one table at most: the newest one is never dropped by size.
        assert largest <= FIFO_MAX + BUFFER
        await db.flush()
        assert await wait_until(lambda: table_bytes(db, logs) <= FIFO_MAX)
        s = db.stats(cf=logs)
        assert s["fifo_drops"] > 0
        assert s["compactions"] == 0  # FIFO never rewrites a table
        assert tables_per_level(db, logs)[1:] == [0] * 6
        assert await logs.get(key(0)) is None  # the oldest writes went with their tables
        assert await logs.get(key(n - 1)) == VALUE  # the newest are all there
        newest = [k async for k, _ in logs.scan(start=key(n - 100))]
        assert newest == [key(i) for i in range(n - 100, n)]
        db.check()


async def test_a_fifo_size_bound_leaves_the_other_families_alone():
    async with aiokv.open(PATH, fs=MemFileSystem(), **TINY_LSM) as db:
        logs = await db.create_column_family(
            "logs", compaction="fifo", max_table_files_size=FIFO_MAX
        )
        for i in range(500):
            await db.put(key(i), VALUE)
        for i in range(10 * FIFO_MAX // len(VALUE)):
            await logs.put(key(i), VALUE)
        await db.flush()
        assert await wait_until(lambda: table_bytes(db, logs) <= FIFO_MAX)
        assert [await db.get(key(i)) for i in range(0, 500, 50)] == [VALUE] * 10


async def write_and_flush(cf: aiokv.ColumnFamily, db: aiokv.DB, lo: int, hi: int) -> None:
    for i in range(lo, hi):
        await cf.put(key(i), VALUE)
    await db.flush()


async def test_collect_expired_drops_whole_fifo_tables_past_the_family_ttl():
    clock = Clock()
    async with aiokv.open(PATH, fs=MemFileSystem(), clock=clock, **TINY_LSM) as db:
        logs = await db.create_column_family("logs", compaction="fifo", ttl=60)
        await write_and_flush(logs, db, 0, 100)
        clock.now += 30
        await write_and_flush(logs, db, 100, 200)
        assert tables_per_level(db, logs)[0] == 2
        assert await db.collect_expired() == 0
        clock.now += 30  # the first table is 60 s old, the second 30 s
        assert await logs.get(key(0)) is None  # reads hide the values at once
        assert await db.collect_expired() == 1
        assert tables_per_level(db, logs)[0] == 1
        assert db.stats()["fifo_drops"] == 1
        assert await logs.get(key(150)) == VALUE
        clock.now += 30
        # The compaction loop, woken by the last flush, may be queued for the compaction lock
        # and take the drop first: then this call finds nothing left to do.
        assert await db.collect_expired() in (0, 1)
        assert tables_per_level(db, logs) == [0] * 7
        assert db.stats()["fifo_drops"] == 2
        assert [kv async for kv in logs.scan()] == []
        assert await logs.get(key(150)) is None


async def test_the_compaction_loop_drops_fifo_tables_past_their_ttl():
    clock = Clock()
    async with aiokv.open(PATH, fs=MemFileSystem(), clock=clock, **TINY_LSM) as db:
        logs = await db.create_column_family("logs", compaction="fifo", ttl=60)
        await write_and_flush(logs, db, 0, 100)
        clock.now += 60
        await write_and_flush(logs, db, 100, 110)  # a flush wakes the compaction loop
        assert await wait_until(lambda: tables_per_level(db, logs)[0] == 1)
        assert db.stats()["fifo_drops"] == 1
        assert await logs.get(key(0)) is None
        assert await logs.get(key(105)) == VALUE


async def test_the_gc_task_drops_fifo_tables_past_their_ttl_with_no_write():
    clock = Clock()
    opts = {**TINY_LSM, "ttl_gc_interval": 0.01}
    async with aiokv.open(PATH, fs=MemFileSystem(), clock=clock, **opts) as db:
        logs = await db.create_column_family("logs", compaction="fifo", ttl=60)
        await write_and_flush(logs, db, 0, 100)
        # The flush woke the compaction loop, which would drop the table itself if it saw the
        # clock advanced: let its pass (no work yet) run first, so that the GC does the drop.
        assert await wait_until(lambda: not db._engine._compact_wanted.is_set())
        seq = db._committer.last_seq
        clock.now += 60
        assert await wait_until(lambda: tables_per_level(db, logs)[0] == 0)
        assert db.stats()["ttl_gc_tasks"] >= 1
        assert db._committer.last_seq == seq
        assert await logs.get(key(0)) is None


async def test_a_fifo_ttl_drops_tables_even_of_keys_written_with_a_longer_ttl():
    clock = Clock()
    async with aiokv.open(PATH, fs=MemFileSystem(), clock=clock) as db:
        logs = await db.create_column_family("logs", compaction="fifo", ttl=60)
        await logs.put(b"k", b"v", ttl=3600)  # its own ttl: reads keep it past the family's
        await db.flush()
        clock.now += 60
        assert await logs.get(b"k") == b"v"
        assert await db.collect_expired() == 1  # FIFO drops whole tables by their age
        assert await logs.get(b"k") is None


async def test_a_fifo_tables_age_survives_reopen():
    fs, clock = MemFileSystem(), Clock()
    async with aiokv.open(PATH, fs=fs, clock=clock) as db:
        logs = await db.create_column_family("logs", compaction="fifo", ttl=60)
        await write_and_flush(logs, db, 0, 50)
    clock.now += 30
    async with aiokv.open(PATH, fs=fs, clock=clock) as db:
        logs = db.column_family("logs")
        assert await db.collect_expired() == 0
        assert await logs.get(key(10)) == VALUE
        clock.now += 30  # 60 s after the table was written, not after the reopen
        assert await db.collect_expired() == 1
        assert tables_per_level(db, logs) == [0] * 7


async def test_compact_range_on_a_fifo_family_only_flushes():
    async with aiokv.open(PATH, fs=MemFileSystem(), **TINY_LSM) as db:
        logs = await db.create_column_family(
            "logs", compaction="fifo", max_table_files_size=FIFO_MAX
        )
        for round_ in range(3):
            for i in range(20):
                await logs.put(key(i), b"r%d" % round_)
            await logs.compact_range()
            assert len(db._engine.mems[logs.id].table) == 0  # the memtable went to a table
            assert tables_per_level(db, logs) == [round_ + 1, 0, 0, 0, 0, 0, 0]
        s = db.stats(cf=logs)
        assert (s["compactions"], s["trivial_moves"], s["fifo_drops"]) == (0, 0, 0)
        assert await logs.get(key(5)) == b"r2"


# -- tiered ---------------------------------------------------------------------------------------


async def test_a_tiered_family_uses_only_l0_and_l6_and_keeps_every_value():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        t = await db.create_column_family("t", compaction="tiered")
        want: dict[bytes, bytes] = {}
        for i in range(6000):
            k = key(i * 7919 % 2000)  # overwrites, in no particular order
            want[k] = b"%d" % i
            await t.put(k, want[k])
            if i % 500 == 0:
                assert tables_per_level(db, t)[1:6] == [0] * 5
        await db.flush()
        s = db.stats(cf=t)
        assert s["flushes"] > 10 and s["compactions"] > 0
        assert tables_per_level(db, t)[1:6] == [0] * 5
        assert await t.get_many(sorted(want)) == [want[k] for k in sorted(want)]
        assert [kv async for kv in t.scan()] == sorted(want.items())
        await t.compact_range()  # everything into one run, on L6
        assert tables_per_level(db, t)[:6] == [0] * 6
        assert [kv async for kv in t.scan(reverse=True)] == sorted(want.items(), reverse=True)
        db.check()
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        t = db.column_family("t")
        assert [kv async for kv in t.scan()] == sorted(want.items())


async def test_a_tiered_family_drops_deleted_and_expired_keys_when_it_merges_into_l6():
    clock = Clock()
    async with aiokv.open(PATH, fs=MemFileSystem(), clock=clock, **TINY_LSM) as db:
        t = await db.create_column_family("t", compaction="tiered")
        for i in range(300):
            await t.put(key(i), VALUE, ttl=10 if i % 3 == 0 else None)
        await t.compact_range()
        for i in range(1, 300, 3):
            await t.delete(key(i))
        clock.now += 10
        await t.compact_range()
        entries = sum(f.entries for _, f in db._engine.versions.current[t.id].files())
        assert entries == 100
        assert [k async for k, _ in t.scan()] == [key(i) for i in range(2, 300, 3)]


async def test_the_gc_of_a_tiered_family_rewrites_in_place_and_keeps_to_l0_and_l6():
    clock = Clock()
    async with aiokv.open(PATH, fs=MemFileSystem(), clock=clock, **TINY_LSM) as db:
        t = await db.create_column_family("t", compaction="tiered")
        for r in range(6):
            for i in range(200 * r, 200 * r + 200):
                await t.put(key(i), VALUE, ttl=10 if i % 2 else None)
            await db.flush()
        clock.now += 10
        assert await db.collect_expired() >= 1
        assert await db.collect_expired() == 0
        assert tables_per_level(db, t)[1:6] == [0] * 5
        await t.compact_range()
        assert sum(f.entries for _, f in db._engine.versions.current[t.id].files()) == 600
        assert [k async for k, _ in t.scan()] == [key(i) for i in range(0, 1200, 2)]
        db.check()


# -- styles persist -------------------------------------------------------------------------------


async def test_reopen_keeps_each_familys_compaction_style():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        await db.create_column_family("f", compaction="fifo", max_table_files_size=FIFO_MAX)
        await db.create_column_family("t", compaction="tiered")
        await db.create_column_family("l")
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        styles = {
            name: db._engine.families[db.column_family(name).id].opts.compaction
            for name in ("default", "f", "t", "l")
        }
        assert styles == {"default": "leveled", "f": "fifo", "t": "tiered", "l": "leveled"}
        f, t = db.column_family("f"), db.column_family("t")
        for i in range(10 * FIFO_MAX // len(VALUE)):
            await f.put(key(i), VALUE)
            if i % 3 == 0:
                await t.put(key(i % 3000), VALUE)
        await db.flush()
        assert await wait_until(lambda: table_bytes(db, f) <= FIFO_MAX)  # still FIFO
        assert db.stats(cf=f)["fifo_drops"] > 0
        assert tables_per_level(db, t)[1:6] == [0] * 5  # still tiered
        assert await t.get(key(2997)) == VALUE


@pytest.mark.parametrize("style", ["fifo", "tiered"])
async def test_a_family_cannot_be_reopened_with_another_style_and_is_left_as_it_was(style):
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs) as db:
        c = await db.create_column_family("c", compaction=style)
        await c.put(b"k", b"v")
    with pytest.raises(aiokv.ColumnFamilyError, match=f"created with compaction='{style}'"):
        await aiokv.open(PATH, fs=fs, column_families={"c": {"compaction": "leveled"}})
    async with aiokv.open(PATH, fs=fs) as db:
        c = db.column_family("c")
        assert db._engine.families[c.id].opts.compaction == style
        assert await c.get(b"k") == b"v"
