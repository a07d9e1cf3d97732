"""Merge operators through the public API: refused input writes nothing, a failing operator
breaks only the reads of its key, batches stay atomic, hot keys are folded at write time but
never across a live snapshot, merges persist, and every built-in works end to end through
memtables, tables, scans and snapshots."""

from __future__ import annotations

import asyncio
import math

import orjson
import pytest

import aiokv
from aiokv.engine.memfs import MemFileSystem
from aiokv.merge import Int64Add, JsonMergePatch, Max, Min, StringAppend
from tests.tiny import TINY_LSM

PATH = "/db"


class Boom(Exception):
    """What the test operators raise: a type of their own, so a test can tell it apart."""


class Concat:
    """A user operator: concatenation, with no partial_merge; it raises on the operand b"bad"."""

    name = "test.concat"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        if b"bad" in operands:
            raise Boom(f"cannot merge into {key!r}")
        return b"".join([existing or b"", *operands])


class Picky(Concat):
    """A user operator whose check_operand refuses, with its own exception type."""

    name = "test.picky"

    def check_operand(self, operand: bytes) -> None:
        if operand.startswith(b"!"):
            raise Boom("no bangs")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def dump(db: aiokv.DB, *cfs: aiokv.ColumnFamily) -> tuple[int, list[list[tuple]]]:
    """What a refused call must leave as it was: the last sequence number and every scan."""
    scans = [[kv async for kv in db.scan()]]
    for cf in cfs:
        scans.append([kv async for kv in cf.scan()])
    return db._committer.last_seq, scans


def write_stats(db: aiokv.DB) -> dict[str, int]:
    """The counters a write can move (reads move the cache and filter ones)."""
    keep = ("flushes", "bytes_written", "compactions", "merge_failures", "l0_tables")
    return {k: v for k, v in db.stats().items() if k in keep}


async def scan(cf: aiokv.DB | aiokv.ColumnFamily, **kw) -> list[tuple[bytes, bytes]]:
    return [kv async for kv in cf.scan(**kw)]


# -- refused merges write nothing ---------------------------------------------------------------


async def test_merge_without_an_operator_is_refused_and_writes_nothing():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs) as db:
        plain = await db.create_column_family("plain")
        await db.put(b"k", b"v")
        before = await dump(db, plain)
        with pytest.raises(aiokv.InvalidArgumentError, match="no merge operator"):
            await db.merge(b"k", b"1")
        with pytest.raises(aiokv.InvalidArgumentError, match="no merge operator"):
            await plain.merge(b"k", b"1", sync=True)
        batch = db.batch()
        batch.put(b"x", b"y")
        with pytest.raises(aiokv.InvalidArgumentError, match="no merge operator"):
            batch.merge(b"k", b"1", cf=plain)
        assert len(batch) == 1  # the refused op left the batch as it was
        batch.discard()
        assert await dump(db, plain) == before
    async with aiokv.open(PATH, fs=fs) as db:
        assert await scan(db) == [(b"k", b"v")]


@pytest.mark.parametrize("operand", [b"x", b"1.5", b" 1", b"1" * 21, b"", b"--1"])
async def test_a_bad_int64_operand_raises_and_writes_nothing(operand):
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=Int64Add()) as db:
        await db.merge(b"n", b"5")
        await db.flush()
        await db.merge(b"n", b"2")
        before, stats = await dump(db), write_stats(db)
        with pytest.raises(aiokv.InvalidArgumentError, match="Int64Add operands"):
            await db.merge(b"n", operand)
        with pytest.raises(aiokv.InvalidArgumentError, match="Int64Add operands"):
            await db.merge(b"n", operand, sync=True)
        with pytest.raises(aiokv.InvalidArgumentError, match="Int64Add operands"):
            async with db.batch() as b:
                b.put(b"other", b"1")
                b.merge(b"n", operand)
        assert await dump(db) == before
        assert await db.get(b"n") == b"7"
        assert write_stats(db) == stats
    async with aiokv.open(PATH, fs=fs, merge_operator=Int64Add()) as db:
        assert await scan(db) == [(b"n", b"7")]


async def test_a_user_check_operand_refuses_with_its_own_exception_and_writes_nothing():
    async with aiokv.open(None, merge_operator=Picky()) as db:
        await db.merge(b"k", b"a")
        before = await dump(db)
        with pytest.raises(Boom, match="no bangs"):
            await db.merge(b"k", b"!b")
        with pytest.raises(Boom, match="no bangs"):
            db.batch().merge(b"k", b"!b")
        assert await dump(db) == before
        await db.merge(b"k", b"c")
        assert await db.get(b"k") == b"ac"


# -- an operator that raises ----------------------------------------------------------------------


async def test_a_raising_operator_fails_the_reads_of_its_key_and_changes_nothing():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=Concat()) as db:
        await db.put(b"k", b"base")
        await db.merge(b"k", b"bad")
        await db.merge(b"other", b"fine")
        seq = db._committer.last_seq
        for _ in range(2):  # a failed read leaves nothing behind: the next one fails alike
            with pytest.raises(Boom):
                await db.get(b"k")
        with pytest.raises(Boom):
            await db.get_many([b"other", b"k"])
        with pytest.raises(Boom):
            await scan(db)
        with pytest.raises(Boom):
            await db.ttl(b"k")
        with pytest.raises(Boom):
            await db.expire(b"k", 10)
        with pytest.raises(Boom):  # the queued path: the committer reports it and goes on
            await db.expire(b"k", 10, sync=True)
        assert db._committer.last_seq == seq
        await db.put(b"other2", b"ok", sync=True)
        assert await db.get(b"other") == b"fine"

        await db.flush()  # the flush writes the chain unfolded and counts the failure
        assert db.stats()["merge_failures"] == 1
        with pytest.raises(Boom):
            await db.get(b"k")
        await db.compact_range()  # so does the compaction
        assert db.stats()["merge_failures"] == 2
        with pytest.raises(Boom):
            await db.get(b"k")
        assert await db.get(b"other") == b"fine"
        db.check()
    async with aiokv.open(PATH, fs=fs, merge_operator=Concat()) as db:
        with pytest.raises(Boom):
            await db.get(b"k")
        await db.put(b"k", b"fresh")  # a put replaces the broken chain
        assert await db.get(b"k") == b"fresh"
        await db.merge(b"k", b"+1")
        assert await db.get(b"k") == b"fresh+1"
        await db.compact_range()
        assert await scan(db) == [(b"k", b"fresh+1"), (b"other", b"fine"), (b"other2", b"ok")]


async def test_a_write_time_fold_that_raises_keeps_the_chain_and_counts_the_failure():
    async with aiokv.open(None, merge_operator=Concat()) as db:
        await db.merge(b"k", b"bad")
        for _ in range(100):
            await db.merge(b"k", b"x")
        assert db.stats()["merge_failures"] >= 1
        with pytest.raises(Boom):
            await db.get(b"k")
        await db.delete(b"k")
        assert await db.get(b"k") is None


# -- batches --------------------------------------------------------------------------------------


async def test_a_cross_family_batch_with_merges_and_puts_lands_whole_across_a_crash():
    fs = MemFileSystem()
    opts = {"column_families": {"counters": {"merge_operator": Int64Add()}}}
    async with aiokv.open(PATH, fs=fs, **opts) as db:
        counters = db.column_family("counters")
        await counters.merge(b"orders", b"10", sync=True)
        async with db.batch(sync=True) as b:
            b.put(b"order:1", b"{...}")
            b.merge(b"orders", b"1", cf=counters)
            b.merge(b"orders", b"1", cf=counters)
        image = fs.crash_clone()
    async with aiokv.open(PATH, fs=image, **opts) as db:
        assert await db.get(b"order:1") == b"{...}"
        assert await db.column_family("counters").get(b"orders") == b"12"


async def test_a_batch_that_fails_midway_writes_none_of_its_merges():
    async with aiokv.open(None, column_families={"c": {"merge_operator": Int64Add()}}) as db:
        c = db.column_family("c")
        await c.merge(b"n", b"1")
        before = await dump(db, c)
        with pytest.raises(aiokv.InvalidArgumentError):
            async with db.batch() as b:
                b.merge(b"n", b"1", cf=c)
                b.put(b"k", b"v")
                b.merge(b"n", b"one", cf=c)
        assert await dump(db, c) == before
        assert await c.get(b"n") == b"1"


async def test_a_put_then_merges_in_one_batch_apply_in_order():
    async with aiokv.open(None, merge_operator=StringAppend(b",")) as db:
        await db.put(b"k", b"old")
        async with db.batch() as b:
            b.merge(b"k", b"lost")
            b.put(b"k", b"a")
            b.merge(b"k", b"b")
            b.merge(b"k", b"c")
        assert await db.get(b"k") == b"a,b,c"


# -- write-time folding ---------------------------------------------------------------------------


def chain_length(db: aiokv.DB, key: bytes, cfid: int = 0) -> int:
    """How many versions of `key` the active memtable keeps (the newest and its history)."""
    mem = db._engine.mems[cfid]
    return (key in mem.table) + len(mem.history.get(key, ()))


async def test_more_than_64_operands_in_the_memtable_are_folded_at_write_time():
    async with aiokv.open(None, merge_operator=Int64Add()) as db:
        await db.put(b"hits", b"1000")
        for _ in range(200):
            await db.merge(b"hits", b"1")
        assert chain_length(db, b"hits") <= 65
        assert await db.get(b"hits") == b"1200"
        db.check()


async def test_a_long_chain_is_folded_onto_a_base_that_sits_in_a_table():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=Int64Add()) as db:
        await db.put(b"hits", b"1000")
        await db.flush()
        for _ in range(200):
            await db.merge(b"hits", b"1")
        assert chain_length(db, b"hits") <= 65
        assert await db.get(b"hits") == b"1200"
        await db.compact_range()
        assert await db.get(b"hits") == b"1200"


async def test_no_fold_crosses_a_live_snapshot():
    async with aiokv.open(None, merge_operator=Int64Add()) as db:
        for _ in range(10):
            await db.merge(b"hits", b"1")
        snap = db.snapshot()
        for _ in range(200):
            await db.merge(b"hits", b"1")
        assert chain_length(db, b"hits") == 210  # every operand kept while the snapshot lives
        assert await db.get(b"hits", snapshot=snap) == b"10"
        assert await scan(db, snapshot=snap) == [(b"hits", b"10")]
        assert await db.get(b"hits") == b"210"
        snap.release()
        for _ in range(5):
            await db.merge(b"hits", b"1")
        assert chain_length(db, b"hits") < 210  # folded once the snapshot is gone
        assert await db.get(b"hits") == b"215"
        db.check()


# The write-time fold must keep what fold() keeps apart: a base with a TTL that has not
# expired, and the operands of an operator without partial_merge.


async def test_a_write_time_fold_keeps_a_base_that_has_a_ttl():
    async with aiokv.open(None, merge_operator=Int64Add()) as db:
        await db.put(b"hits", b"1000", ttl=100)
        for _ in range(70):
            await db.merge(b"hits", b"1")
        assert await db.get(b"hits") == b"1070"


async def test_a_write_time_fold_keeps_every_operand_of_an_operator_without_partial_merge():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=Concat()) as db:
        await db.put(b"k", b"B", ttl=100)
        await db.flush()  # the base sits safe in a table; the operands are in the memtable
        for _ in range(70):
            await db.merge(b"k", b"x")
        assert await db.get(b"k") == b"B" + b"x" * 70


async def test_a_session_family_with_a_ttl_keeps_its_session_through_many_patches():
    async with aiokv.open(None) as db:
        sessions = await db.create_column_family(
            "sessions", ttl=3600, merge_operator=JsonMergePatch()
        )
        await sessions.put(b"s1", b'{"user": "ada"}')
        for i in range(70):
            await sessions.merge(b"s1", b'{"clicks": %d}' % i)
        assert orjson.loads(await sessions.get(b"s1")) == {"user": "ada", "clicks": 69}


# -- persistence ----------------------------------------------------------------------------------


async def test_merges_survive_reopen_from_the_memtable_the_tables_and_both():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=Int64Add(), **TINY_LSM) as db:
        await db.merge(b"wal-only", b"3")
        await db.put(b"split", b"100")
        await db.flush()
        await db.merge(b"split", b"-1")
        for i in range(500):  # enough to flush and compact a few times
            await db.merge(b"hot", b"2")
            await db.put(b"pad%04d" % i, b"p" * 40)
    async with aiokv.open(PATH, fs=fs, merge_operator=Int64Add(), **TINY_LSM) as db:
        assert await db.get_many([b"wal-only", b"split", b"hot"]) == [b"3", b"99", b"1000"]
        await db.compact_range()
        assert await db.get_many([b"wal-only", b"split", b"hot"]) == [b"3", b"99", b"1000"]
    async with aiokv.open(PATH, fs=fs) as db:  # the built-in comes back by its persisted name
        assert await db.get(b"hot") == b"1000"


async def test_a_synced_merge_survives_a_power_cut():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=StringAppend(b";")) as db:
        await db.put(b"k", b"a", sync=True)
        await db.flush()
        await db.merge(b"k", b"b", sync=True)
        await db.merge(b"k", b"c", sync=True)
        image = fs.crash_clone()
    async with aiokv.open(PATH, fs=image, merge_operator=StringAppend(b";")) as db:
        assert await db.get(b"k") == b"a;b;c"


# -- the built-ins end to end ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "base", "operands", "want"),
    [
        (Int64Add(), b"40", [b"1", b"+2", b"-10", b"17"], b"50"),
        (StringAppend(b", "), b"a", [b"b", b"c", b"d"], b"a, b, c, d"),
        (StringAppend(b""), None, [b"x", b"y", b"z"], b"xyz"),
        (Max(), b"m", [b"a", b"z", b"ab", b"y"], b"z"),
        (Min(), b"m", [b"n", b"b", b"ba", b"c"], b"b"),
        (Max(), None, [b"9", b"10"], b"9"),  # bytewise: b"9" > b"10"
    ],
)
async def test_each_builtin_reads_the_same_through_memtable_flush_and_compaction(
    op, base, operands, want
):
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=op) as db:
        if base is not None:
            await db.put(b"k", base)
        await db.merge(b"k", operands[0])
        await db.flush()
        for x in operands[1:]:
            await db.merge(b"k", x)
        assert await db.get(b"k") == want
        await db.flush()
        assert await db.get(b"k") == want
        await db.compact_range()
        assert await db.get(b"k") == want
        assert await scan(db) == [(b"k", want)]
    async with aiokv.open(PATH, fs=fs) as db:
        assert await db.get(b"k") == want


async def test_json_merge_patch_sessions_end_to_end():
    fs, clock = MemFileSystem(), Clock()
    async with aiokv.open(PATH, fs=fs, clock=clock) as db:
        sessions = await db.create_column_family(
            "sessions", ttl=3600, merge_operator=JsonMergePatch()
        )
        await sessions.put(b"s1", b'{"user": "ada", "cart": {"apple": 2, "pear": 1}}')
        await sessions.merge(b"s1", b'{"cart": {"pear": null, "plum": 5}}')
        await db.flush()
        await sessions.merge(b"s1", b'{"theme": "dark"}')
        await sessions.merge(b"s1", b'{"cart": {"apple": 3}}')
        want = {"user": "ada", "cart": {"apple": 3, "plum": 5}, "theme": "dark"}
        assert orjson.loads(await sessions.get(b"s1")) == want
        clock.now += 600
        assert await sessions.ttl(b"s1") == 3000.0  # merging does not extend the session
        await sessions.compact_range()
        assert orjson.loads(await sessions.get(b"s1")) == want
        assert await sessions.ttl(b"s1") == 3000.0
    async with aiokv.open(PATH, fs=fs, clock=clock) as db:
        sessions = db.column_family("sessions")
        assert orjson.loads(await sessions.get(b"s1")) == want
        clock.now += 3000
        # The base expired; the patches carry no expiry and now apply to nothing (merge_fold:
        # what a read sees does not depend on whether a flush or compaction folded them).
        left = {"cart": {"apple": 3, "plum": 5}, "theme": "dark"}
        assert orjson.loads(await sessions.get(b"s1")) == left
        await sessions.compact_range()
        assert orjson.loads(await sessions.get(b"s1")) == left


async def test_a_bad_json_patch_is_refused_and_writes_nothing():
    async with aiokv.open(None, merge_operator=JsonMergePatch()) as db:
        await db.put(b"s", b'{"a": 1}')
        before = await dump(db)
        with pytest.raises(aiokv.InvalidArgumentError, match="not JSON"):
            await db.merge(b"s", b"{'a': 2}")
        assert await dump(db) == before


# -- scans and snapshots --------------------------------------------------------------------------


async def test_scans_return_merged_values_across_memtable_and_tables_both_ways():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=StringAppend(b"+")) as db:
        await db.put(b"a", b"A")
        await db.merge(b"b", b"1")
        await db.put(b"c", b"C")
        await db.flush()
        await db.compact_range()  # a bottom level
        await db.merge(b"a", b"x")
        await db.merge(b"d", b"only")
        await db.flush()  # an L0 table over it
        await db.merge(b"a", b"y")  # and the memtable over both
        await db.merge(b"b", b"2")
        await db.delete(b"c")
        await db.merge(b"c", b"reborn")
        want = [(b"a", b"A+x+y"), (b"b", b"1+2"), (b"c", b"reborn"), (b"d", b"only")]
        assert await scan(db) == want
        assert await scan(db, reverse=True) == want[::-1]
        assert await scan(db, start=b"b", end=b"d") == want[1:3]
        assert await scan(db, start=b"b", end=b"d", reverse=True) == want[2:0:-1]
        assert await db.get_many([k for k, _ in want]) == [v for _, v in want]


async def test_a_snapshot_reads_the_merged_value_as_of_the_snapshot():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=Int64Add(), **TINY_LSM) as db:
        await db.put(b"n", b"100")
        await db.merge(b"n", b"1")
        await db.flush()
        await db.merge(b"n", b"2")
        await db.merge(b"m", b"7")
        snap = db.snapshot()
        await db.merge(b"n", b"4")
        await db.merge(b"m", b"1")
        await db.merge(b"fresh", b"1")
        await db.flush()
        for i in range(400):  # enough writes to flush and compact under the snapshot
            await db.merge(b"n", b"1")
            await db.put(b"pad%04d" % i, b"p" * 40)
        await db.compact_range()
        assert await db.get(b"n", snapshot=snap) == b"103"
        assert await db.get_many([b"m", b"fresh"], snapshot=snap) == [b"7", None]
        assert await scan(snap, end=b"o") == [(b"m", b"7"), (b"n", b"103")]
        assert await scan(snap, end=b"o", reverse=True) == [(b"n", b"103"), (b"m", b"7")]
        assert await db.get_many([b"n", b"m", b"fresh"]) == [b"507", b"8", b"1"]
        snap.release()
        await db.compact_range()
        assert await db.get(b"n") == b"507"
        db.check()


async def test_merges_into_a_family_keep_the_base_expiry_and_start_over_once_it_expired():
    clock = Clock()
    async with aiokv.open(PATH, fs=MemFileSystem(), clock=clock, merge_operator=Int64Add()) as db:
        await db.put(b"n", b"10", ttl=60)
        await db.merge(b"n", b"5")
        assert await db.ttl(b"n") == 60.0
        await db.flush()
        assert (await db.get(b"n"), await db.ttl(b"n")) == (b"15", 60.0)
        clock.now += 60
        # docs/merge.md, "TTL": the flush kept the operand apart from its live base, so once
        # the base expires the operand merges onto nothing, and the result has no expiry.
        assert await db.get(b"n") == b"5"
        await db.merge(b"n", b"1")
        assert (await db.get(b"n"), await db.ttl(b"n")) == (b"6", math.inf)


async def test_concurrent_merges_from_many_tasks_all_count():
    async with aiokv.open(PATH, fs=MemFileSystem(), merge_operator=Int64Add()) as db:

        async def bump(n: int) -> None:
            for _ in range(n):
                await db.merge(b"hits", b"1", sync=True)

        await asyncio.gather(*(bump(25) for _ in range(8)))
        assert await db.get(b"hits") == b"200"
