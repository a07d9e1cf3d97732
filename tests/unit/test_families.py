"""Column families through the public API: create, use, persist, drop, atomic batches."""

from __future__ import annotations

import pytest

import aiokv
from aiokv.engine.memfs import MemFileSystem
from aiokv.merge import Int64Add, StringAppend
from tests.tiny import TINY_LSM

PATH = "/db"


def tables(fs: MemFileSystem) -> set[str]:
    return {n for n in fs.list_dir(PATH) if n.endswith(".sst")}


async def test_families_hold_separate_keyspaces():
    async with aiokv.open(None) as db:
        users = await db.create_column_family("users")
        await db.put(b"k", b"default")
        await users.put(b"k", b"users")
        assert await db.get(b"k") == b"default"
        assert await users.get(b"k") == b"users"
        assert await db.get(b"k", cf=users) == b"users"
        await users.delete(b"k")
        assert await db.get(b"k") == b"default"
        assert [kv async for kv in users.scan()] == []
        assert db.list_column_families() == ["default", "users"]


async def test_a_range_delete_in_one_family_leaves_the_others_alone():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        other = await db.create_column_family("other")
        for i in range(50):
            await db.put(b"k%03d" % i, b"d")
            await other.put(b"k%03d" % i, b"o")
        await other.delete_range(b"k000", b"k999")
        assert [k async for k, _ in other.scan()] == []
        assert len([k async for k, _ in db.scan()]) == 50
        await db.flush()
        assert await db.get(b"k010") == b"d"
        assert await other.get(b"k010") is None


async def test_families_and_their_options_survive_reopen():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        c = await db.create_column_family(
            "counters", merge_operator=Int64Add(), block_size=512, compaction="tiered"
        )
        for _ in range(5):
            await c.merge(b"hits", b"2")
        await db.create_column_family("logs", compaction="fifo", ttl=60)
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        assert db.list_column_families() == ["default", "counters", "logs"]
        c = db.column_family("counters")
        assert await c.get(b"hits") == b"10"  # the built-in operator came back by its name
        fam = db._engine.families[c.id]
        assert (fam.opts.compaction, fam.opts.block_size) == ("tiered", 512)
        assert db._engine.families[db.column_family("logs").id].opts.ttl == 60.0


async def test_a_cross_family_batch_is_atomic_and_lands_whole():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs) as db:
        a = await db.create_column_family("a")
        b = await db.create_column_family("b")
        async with db.batch(sync=True) as batch:
            batch.put(b"x", b"1", cf=a)
            batch.put(b"y", b"2", cf=b)
            batch.put(b"z", b"3")
        image = fs.crash_clone()
    async with aiokv.open(PATH, fs=image) as db:
        a, b = db.column_family("a"), db.column_family("b")
        assert (await a.get(b"x"), await b.get(b"y"), await db.get(b"z")) == (b"1", b"2", b"3")


async def test_a_flush_of_one_family_keeps_the_wal_another_family_still_needs():
    fs = MemFileSystem()
    opts = {**TINY_LSM, "wal_segment_size": 64 * 1024}
    async with aiokv.open(PATH, fs=fs, **opts) as db:
        quiet = await db.create_column_family("quiet", write_buffer_size=1 << 20)
        await quiet.put(b"only", b"in the wal", sync=True)
        for i in range(3000):  # many flushes of the default family, and WAL rotations
            await db.put(b"k%05d" % i, b"v" * 40)
        assert db.stats()["flushes"] > 3
        await db.put(b"last", b"synced", sync=True)
        image = fs.crash_clone()
    async with aiokv.open(PATH, fs=image, **opts) as db:
        assert await db.column_family("quiet").get(b"only") == b"in the wal"
        assert await db.get(b"k02999") == b"v" * 40
        assert await db.get(b"last") == b"synced"


async def test_replay_does_not_apply_twice_what_one_family_flushed():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, merge_operator=Int64Add()) as db:
        other = await db.create_column_family("other")
        await db.merge(b"n", b"1")
        await other.put(b"a", b"b")
        await db.flush()  # both flushed: the WAL segment may stay, the tables hold it
        await db.merge(b"n", b"1", sync=True)
        image = fs.crash_clone()
    async with aiokv.open(PATH, fs=image, merge_operator=Int64Add()) as db:
        assert await db.get(b"n") == b"2"


async def test_dropping_a_family_frees_its_files_and_its_id_is_never_reused():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        before = tables(fs)
        tmp = await db.create_column_family("tmp")
        for i in range(2000):
            await tmp.put(b"k%05d" % i, b"v" * 40)
        await db.flush()
        assert tables(fs) - before
        old_id = tmp.id
        await db.drop_column_family(tmp)
        assert tables(fs) == before
        with pytest.raises(aiokv.ColumnFamilyError, match="does not exist"):
            await tmp.get(b"k00001")
        again = await db.create_column_family("tmp")
        assert again.id > old_id
        assert await again.get(b"k00001") is None
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        assert await db.column_family("tmp").get(b"k00001") is None  # old WAL ops skipped
        assert db.column_family("tmp").id == again.id


async def test_open_creates_the_families_column_families_names():
    async with aiokv.open(
        None, column_families={"s": {"merge_operator": StringAppend(b"|")}}
    ) as db:
        s = db.column_family("s")
        await s.merge(b"k", b"a")
        await s.merge(b"k", b"b")
        assert await s.get(b"k") == b"a|b"


async def test_reopening_with_another_compaction_style_or_operator_fails_clearly():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs) as db:
        await db.create_column_family("c", merge_operator=Int64Add())
    with pytest.raises(aiokv.ColumnFamilyError, match="created with merge operator"):
        await aiokv.open(PATH, fs=fs, column_families={"c": {"merge_operator": StringAppend()}})
    with pytest.raises(aiokv.ColumnFamilyError, match="created with compaction='leveled'"):
        await aiokv.open(PATH, fs=fs, compaction="fifo")
    async with aiokv.open(PATH, fs=fs) as db:  # and the failed opens changed nothing
        assert db.list_column_families() == ["default", "c"]


class Custom:
    name = "my.counter"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        return str(int(existing or b"0") + len(operands)).encode()


async def test_a_family_with_a_user_operator_needs_it_at_open():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs) as db:
        c = await db.create_column_family("c", merge_operator=Custom())
        await c.merge(b"k", b"x")
    with pytest.raises(aiokv.ColumnFamilyError, match="pass it when opening"):
        await aiokv.open(PATH, fs=fs)
    async with aiokv.open(PATH, fs=fs, column_families={"c": {"merge_operator": Custom()}}) as db:
        assert await db.column_family("c").get(b"k") == b"1"


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda db: db.create_column_family(""), aiokv.InvalidArgumentError, "1 to 255"),
        (lambda db: db.create_column_family(3), aiokv.InvalidTypeError, "is a str"),
        (lambda db: db.create_column_family("x", nope=1), aiokv.InvalidArgumentError, "unknown"),
        (
            lambda db: db.create_column_family("x", compaction="lsm"),
            aiokv.InvalidArgumentError,
            "compaction must be one of",
        ),
        (
            lambda db: db.create_column_family("x", merge_operator=object()),
            aiokv.InvalidTypeError,
            "merge",
        ),
        (lambda db: db.create_column_family("default"), aiokv.ColumnFamilyError, "exists"),
        (lambda db: db.drop_column_family("default"), aiokv.ColumnFamilyError, "cannot be"),
        (lambda db: db.drop_column_family("nope"), aiokv.ColumnFamilyError, "does not exist"),
    ],
)
async def test_bad_family_calls_are_refused_and_change_nothing(call, error, match):
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs) as db:
        await db.create_column_family("kept")
        with pytest.raises(error, match=match):
            await call(db)
        assert db.list_column_families() == ["default", "kept"]
    async with aiokv.open(PATH, fs=fs) as db:
        assert db.list_column_families() == ["default", "kept"]


async def test_a_handle_of_another_database_is_refused():
    async with aiokv.open(None) as one, aiokv.open(None) as two:
        c = await one.create_column_family("c")
        with pytest.raises(aiokv.InvalidArgumentError, match="another database"):
            await two.get(b"k", cf=c)
        with pytest.raises(aiokv.ColumnFamilyError, match="does not exist"):
            two.column_family("c")


async def test_each_family_compacts_with_its_own_style():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY_LSM) as db:
        t = await db.create_column_family("t", compaction="tiered")
        for i in range(3000):
            await db.put(b"k%05d" % (i * 7 % 3000), b"v" * 40)
            await t.put(b"k%05d" % (i * 7 % 3000), b"v" * 40)
        await db.flush()
        await db.compact_range()
        await db.compact_range(cf=t)
        d, s = db.stats(), db.stats(cf=t)
        assert d["l6_tables"] and s["l6_tables"]
        assert not any(s[f"l{lv}_tables"] for lv in range(1, 6))  # tiered: L0 and L6 only
        assert await t.get(b"k00007") == b"v" * 40
        db.check()


async def test_a_quiet_family_does_not_pin_the_wal_forever():
    fs = MemFileSystem()
    opts = {**TINY_LSM, "wal_segment_size": 64 * 1024}
    async with aiokv.open(PATH, fs=fs, **opts) as db:
        quiet = await db.create_column_family("quiet", write_buffer_size=1 << 20)
        await quiet.put(b"only", b"one write", sync=True)
        for i in range(20_000):  # dozens of segments of default-family writes
            await db.put(b"k%06d" % (i % 4000), b"v" * 40)
        logs = [n for n in fs.list_dir(PATH) if n.endswith(".log")]
        assert len(logs) <= 12, logs  # the quiet family was flushed to let them go
        assert db.stats(cf=quiet)["l0_tables"] >= 1
    async with aiokv.open(PATH, fs=fs, **opts) as db:
        assert await db.column_family("quiet").get(b"only") == b"one write"
