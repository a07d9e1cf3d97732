"""The B+Tree engine through the public API: checkpoints into the trees, reopen and power
cuts, snapshots that outlive checkpoints, families in one file, TTL removal, merges folded at
checkpoint, page reuse, and the meta pages' torn-write fallback."""

from __future__ import annotations

import pytest

import aiokv
from aiokv.engine.btree.page_format import PAGE_SIZE
from aiokv.engine.btree.pagefile import PAGES_FILE
from aiokv.engine.memfs import CrashMode, MemFileSystem
from aiokv.errors import CorruptionError, InvalidArgumentError
from aiokv.merge import Int64Add

PATH = "/db"
SMALL = {"write_buffer_size": 64 * 1024}  # checkpoints every few hundred puts


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def opening(fs: MemFileSystem, **kw):
    return aiokv.open(PATH, engine="btree", fs=fs, **{**SMALL, **kw})


def key(i: int) -> bytes:
    return b"key%06d" % i


async def test_checkpointed_data_survives_reopen_and_a_power_cut():
    fs = MemFileSystem()
    async with opening(fs) as db:
        for i in range(3000):
            await db.put(key(i), b"v%d" % i)
        await db.delete(key(7))
        await db.flush()
        assert db.stats()["flushes"] >= 1
        await db.put(b"late", b"synced", sync=True)
        db.check()
        image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    for store in (fs, image):
        async with opening(store) as db:
            assert await db.get(key(2999)) == b"v2999"
            assert await db.get(key(7)) is None
            assert await db.get(b"late") == b"synced"
            assert len([k async for k, _ in db.scan()]) == 3000
            db.check()


async def test_a_snapshot_reads_its_own_state_across_checkpoints():
    fs = MemFileSystem()
    async with opening(fs) as db:
        for i in range(1000):
            await db.put(key(i), b"old")
        await db.flush()
        snap = db.snapshot()
        await db.delete_range(key(0), key(500))
        for i in range(500, 1000):
            await db.put(key(i), b"new")
        await db.flush()  # the snapshot's tree pages must not be reused under it
        for i in range(2000, 3000):
            await db.put(key(i), b"more")
        await db.flush()
        assert await snap.get(key(10)) == b"old"
        assert await snap.get(key(900)) == b"old"
        assert await snap.get(key(2500)) is None
        assert [v async for _, v in snap.scan()] == [b"old"] * 1000
        assert await db.get(key(10)) is None
        assert await db.get(key(900)) == b"new"
        snap.release()
        db.check()


async def test_range_tombstone_hides_older_tree_entries_but_not_later_puts():
    fs = MemFileSystem()
    async with opening(fs) as db:
        for i in range(100):
            await db.put(key(i), b"a")
        await db.flush()
        await db.delete_range(key(10), key(20))
        await db.put(key(15), b"b")
        assert await db.get(key(12)) is None
        assert await db.get(key(15)) == b"b"
        await db.flush()
        assert await db.get(key(12)) is None
        assert await db.get(key(15)) == b"b"
        assert len([k async for k, _ in db.scan()]) == 91


async def test_overwrites_reuse_freed_pages_instead_of_growing_the_file():
    fs = MemFileSystem()
    async with opening(fs) as db:
        for i in range(2000):
            await db.put(key(i), b"x" * 50)
        await db.flush()
        size = db.stats()["btree_pages"]
        for round_ in range(5):
            for i in range(2000):
                await db.put(key(i), b"%d" % round_ * 50)
            await db.flush()
        # Each checkpoint rewrites every leaf; without reuse the file would grow 5-fold.
        assert db.stats()["btree_pages"] < 2.5 * size
        db.check()


async def test_families_live_in_one_file_and_a_dropped_one_frees_its_pages():
    fs = MemFileSystem()
    async with opening(fs) as db:
        users = await db.create_column_family("users")
        for i in range(2000):
            await users.put(key(i), b"u" * 40)
            await db.put(key(i), b"d")
        await db.flush()
        async with db.batch() as b:
            b.put(b"x", b"1", cf=users)
            b.put(b"x", b"2")
    async with opening(fs) as db:
        users = db.column_family("users")
        assert await users.get(key(5)) == b"u" * 40
        assert await users.get(b"x") == b"1" and await db.get(b"x") == b"2"
        free_before = db.stats()["btree_free_pages"]
        await db.drop_column_family("users")
        await db.flush()
        assert db.stats()["btree_free_pages"] > free_before
        db.check()
    async with opening(fs) as db:
        assert db.list_column_families() == ["default"]
        db.check()


async def test_expired_entries_are_hidden_at_once_and_removed_by_the_sweep():
    fs = MemFileSystem()
    clock = Clock()
    async with opening(fs, clock=clock) as db:
        for i in range(500):
            await db.put(key(i), b"v", ttl=10 if i % 2 else None)
        await db.flush()
        clock.now += 11
        assert await db.get(key(1)) is None
        assert await db.get(key(2)) == b"v"
        assert await db.collect_expired() == 250
        assert len([k async for k, _ in db.scan()]) == 250
        assert await db.collect_expired() == 0
        db.check()


async def test_merges_fold_at_checkpoint_and_keep_counting_after_reopen():
    fs = MemFileSystem()
    async with opening(fs, merge_operator=Int64Add()) as db:
        for i in range(600):
            await db.merge(b"hits", b"1")
            await db.merge(key(i % 7), b"2")
        await db.flush()
        await db.merge(b"hits", b"+5")
        assert await db.get(b"hits") == b"605"
    async with opening(fs, merge_operator=Int64Add()) as db:
        assert await db.get(b"hits") == b"605"
        assert await db.get(key(0)) == b"%d" % (2 * 86)
        db.check()


async def test_a_torn_newest_meta_page_falls_back_to_the_previous_checkpoint():
    fs = MemFileSystem()
    async with opening(fs) as db:
        await db.put(b"a", b"1")
        await db.flush()
        await db.put(b"b", b"2")

        async def keep_segments(log_number: int) -> None:
            pass  # the power cut comes before the commit deletes the WAL it covers

        db._engine._delete_segments_below = keep_segments
        await db.flush()
        txn = db.stats()["btree_txn_id"]
    data = bytearray(fs.read_file(f"{PATH}/{PAGES_FILE}"))
    slot = txn % 2
    data[slot * PAGE_SIZE + 100] ^= 0xFF  # the newest meta page fails its checksum
    f = fs.create(f"{PATH}/{PAGES_FILE}")
    f.append(bytes(data))
    f.sync()
    f.close()
    async with opening(fs) as db:
        assert await db.get(b"a") == b"1"  # the older checkpoint, then the WAL's replay
        assert await db.get(b"b") == b"2"
        db.check()


async def test_both_meta_pages_corrupt_is_a_corruption_error_naming_the_file():
    fs = MemFileSystem()
    async with opening(fs) as db:
        await db.put(b"a", b"1")
    data = bytearray(fs.read_file(f"{PATH}/{PAGES_FILE}"))
    for slot in (0, 1):
        data[slot * PAGE_SIZE + 20] ^= 0xFF
    f = fs.create(f"{PATH}/{PAGES_FILE}")
    f.append(bytes(data))
    f.sync()
    f.close()
    with pytest.raises(CorruptionError, match=PAGES_FILE):
        async with opening(fs):
            pass


async def test_a_store_opens_only_with_the_engine_that_made_it():
    fs = MemFileSystem()
    async with opening(fs) as db:
        await db.put(b"a", b"1")
    with pytest.raises(InvalidArgumentError, match="'btree' store"):
        async with aiokv.open(PATH, fs=fs):
            pass


async def test_in_memory_btree_store_serves_the_same_api():
    async with aiokv.open(None, engine="btree") as db:
        await db.put(b"a", b"1")
        cf = await db.create_column_family("c")
        await cf.put(b"a", b"2")
        assert await db.get(b"a") == b"1" and await cf.get(b"a") == b"2"
        await db.flush()
        db.check()


async def test_compact_range_gives_the_space_of_deleted_keys_back():
    fs = MemFileSystem()
    async with opening(fs) as db:
        for i in range(4000):
            await db.put(key(i), b"v" * 80)
        await db.flush()
        full = len(fs.read_file(f"{PATH}/{PAGES_FILE}"))
        await db.delete_range(key(0), key(3600))  # the leaves of 90% of the keys go free
        await db.compact_range()
        small = len(fs.read_file(f"{PATH}/{PAGES_FILE}"))
        assert small < full / 3
        assert db.stats()["btree_pages"] * PAGE_SIZE == small
        assert [k async for k, _ in db.scan()] == [key(i) for i in range(3600, 4000)]
        db.check()
    async with opening(fs) as db:
        assert await db.get(key(3999)) == b"v" * 80
        db.check()


async def test_compact_range_keeps_pages_a_snapshot_still_reads():
    fs = MemFileSystem()
    async with opening(fs) as db:
        for i in range(2000):
            await db.put(key(i), b"v" * 80)
        await db.flush()
        with db.snapshot() as snap:
            await db.delete_range(key(0), key(2000))
            await db.compact_range()
            assert len([k async for k, _ in snap.scan()]) == 2000
            db.check()
        assert [k async for k, _ in db.scan()] == []
        await db.compact_range()  # nothing pins the old pages now
        assert db.stats()["btree_pages"] < 10
        db.check()


async def test_families_named_at_open_are_in_the_file_before_open_returns():
    fs = MemFileSystem()
    async with opening(fs, column_families={"made_at_open": {}}) as db:
        await db.column_family("made_at_open").put(b"k", b"v", sync=True)
        image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    async with opening(image) as db:
        assert "made_at_open" in db.list_column_families()
        assert await db.column_family("made_at_open").get(b"k") == b"v"
        db.check()


async def test_a_commit_that_ends_with_unused_pages_keeps_the_file_as_long_as_its_count():
    fs = MemFileSystem()
    async with opening(fs) as db:
        for i in range(3000):
            await db.put(key(i), b"v" * 60)
        await db.flush()
        await db.delete_range(key(0), key(3000))
        await db.flush()
        pages = db.stats()["btree_pages"]
        image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    assert len(image.read_file(f"{PATH}/{PAGES_FILE}")) >= pages * PAGE_SIZE
    async with opening(image) as db:
        assert [k async for k, _ in db.scan()] == []
        db.check()


async def test_the_catalog_counts_the_keys_of_each_tree_across_reopen():
    fs = MemFileSystem()
    async with opening(fs) as db:
        other = await db.create_column_family("other")
        for i in range(1500):
            await db.put(key(i), b"v")
            if i % 3 == 0:
                await other.put(key(i), b"w")
        await db.delete_range(key(0), key(100))
        await db.delete(key(700))
        await db.put(key(5), b"back")  # after the range: present again
        await db.flush()
        assert db.stats()["btree_keys"] == 1500 - 100 - 1 + 1
        assert db.stats(cf=other)["btree_keys"] == 500
    async with opening(fs) as db:
        assert db.stats()["btree_keys"] == len([k async for k, _ in db.scan()])
        assert db.stats(cf=db.column_family("other"))["btree_keys"] == 500


@pytest.mark.parametrize("engine", ["BTREE", "b+tree", "", None, 1])
async def test_an_unknown_engine_is_refused_and_creates_nothing(engine):
    fs = MemFileSystem()
    with pytest.raises(InvalidArgumentError, match="engine must be one of"):
        async with aiokv.open(PATH, engine=engine, fs=fs):
            pass
    assert not fs.exists(PATH)
