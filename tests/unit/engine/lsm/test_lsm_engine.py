"""The LSM engine over its tables: flush, manifest, compaction, obsolete files, stalls."""

from __future__ import annotations

import asyncio
import random

import pytest

import aiokv
from aiokv.engine.memfs import CrashMode, MemFileSystem
from aiokv.errors import CorruptionError
from tests.tiny import TINY_LSM

PATH = "/db"
TINY = {**TINY_LSM, "wal_segment_size": 64 * 1024}


def names(fs: MemFileSystem, suffix: str) -> list[str]:
    return [n for n in fs.list_dir(PATH) if n.endswith(suffix)]


async def fill(db: aiokv.DB, n: int, seed: int = 1, vsize: int = 40) -> dict[bytes, bytes]:
    rng = random.Random(seed)
    want: dict[bytes, bytes] = {}
    for _ in range(n):
        k = f"k{rng.randrange(n):06d}".encode()
        v = rng.randbytes(vsize)
        await db.put(k, v)
        want[k] = v
    return want


async def test_flushed_data_survives_reopen_without_its_wal():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        want = await fill(db, 3000)
        await db.flush()
        assert db.stats()["flushes"] >= 1
    assert names(fs, ".sst")
    # The WAL segments that only held flushed data are gone; the store still has it all.
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        assert {k: v async for k, v in db.scan()} == want
        db.check()


async def test_compaction_builds_levels_and_a_full_compaction_leaves_one():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        want = await fill(db, 6000, vsize=60)
        await db.flush()
        db.check()
        await db.compact_range()
        stats = db.stats()
        levels = [lv for lv in range(7) if stats[f"l{lv}_tables"]]
        assert len(levels) == 1 and levels[0] > 0
        assert stats["compactions"] >= 1
        assert {k: v async for k, v in db.scan()} == want
        assert await db.get_many(list(want)) == list(want.values())
        db.check()
    live = {f"{n:06d}.sst" for n in db._engine.versions.current[0].numbers()}
    assert set(names(fs, ".sst")) == live  # obsolete inputs were deleted


async def test_full_compaction_drops_tombstones_and_shadowed_versions():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        for round_ in range(4):
            for i in range(500):
                await db.put(f"k{i:04d}", f"{round_}" * 50)
        for i in range(0, 500, 2):
            await db.delete(f"k{i:04d}")
        await db.delete_range(b"k0400", b"k0500")
        await db.compact_range()
        v = db._engine.versions.current[0]
        entries = sum(f.entries for _, f in v.files())
        assert entries == 200  # odd keys below k0400, one version each, no tombstone
        assert sum(f.tombstones for _, f in v.files()) == 0
        assert await db.get(b"k0001") == b"3" * 50
        assert await db.get(b"k0002") is None
        assert await db.get(b"k0401") is None


async def test_snapshot_keeps_its_versions_through_compaction():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        await fill(db, 2000)
        snap = db.snapshot()
        before = {k: v async for k, v in snap.scan()}
        await fill(db, 2000, seed=2)
        await db.delete_range(b"k0005", b"k0010")
        await db.compact_range()
        assert {k: v async for k, v in snap.scan()} == before
        assert await snap.get_many(list(before)) == list(before.values())
        snap.release()
        await db.compact_range()
        assert await db.get(b"k000700") is None


async def test_expired_entries_are_hidden_then_compacted_away():
    now = [1000.0]
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, clock=lambda: now[0], **TINY) as db:
        for i in range(400):
            await db.put(f"t{i:04d}", b"x" * 50, ttl=10)
            await db.put(f"p{i:04d}", b"y" * 50)
        await db.flush()
        assert await db.get(b"t0001") == b"x" * 50
        now[0] += 11
        assert await db.get(b"t0001") is None
        assert [k async for k, _ in db.scan(prefix=b"t")] == []
        await db.compact_range()
        v = db._engine.versions.current[0]
        assert sum(f.entries for _, f in v.files()) == 400


async def test_range_delete_hides_older_tables_and_survives_reopen():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        want = await fill(db, 3000)
        await db.flush()
        await db.delete_range(b"k000100", b"k002000")
        assert await db.get(b"k000500") is None
        await db.flush()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        got = {k: v async for k, v in db.scan()}
        assert got == {k: v for k, v in want.items() if not b"k000100" <= k < b"k002000"}
        await db.compact_range()
        assert {k: v async for k, v in db.scan()} == got


async def test_reverse_and_bounded_scans_cross_tables_and_memtables():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        want = await fill(db, 3000)
        await db.flush()
        await db.compact_range()
        extra = await fill(db, 300, seed=9)  # some in the memtable, over older tables
        want.update(extra)
        keys = sorted(want)
        lo, hi = keys[100], keys[900]
        assert [k async for k, _ in db.scan(lo, hi)] == keys[100:900]
        assert [k async for k, _ in db.scan(lo, hi, reverse=True)] == keys[100:900][::-1]
        assert [v async for _, v in db.scan(reverse=True)] == [want[k] for k in reversed(keys)]


async def test_orphan_table_left_by_a_crash_is_deleted_at_open():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        await fill(db, 1000)
        await db.flush()
    f = fs.create(f"{PATH}/999999.sst")
    f.append(b"half a table")
    f.close()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        assert len([kv async for kv in db.scan()]) > 0
    assert "999999.sst" not in fs.list_dir(PATH)


async def test_crash_image_during_flush_and_compaction_recovers_synced_writes():
    fs = MemFileSystem()
    rng = random.Random(5)
    images = []
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        synced: dict[bytes, bytes] = {}
        for i in range(3000):
            k = f"k{rng.randrange(1500):05d}".encode()
            v = rng.randbytes(30)
            sync = i % 50 == 0
            await db.put(k, v, sync=sync)
            synced[k] = v
            if sync:
                images.append((fs.crash_clone(rng.choice(list(CrashMode)), rng), dict(synced)))
    assert len(images) >= 50
    for image, durable in images[::5]:
        async with aiokv.open(PATH, fs=image, **TINY) as db:
            db.check()
            got = {k: v async for k, v in db.scan()}
            # Everything synced is there; later unsynced writes may or may not be.
            assert set(durable) <= set(got)


async def test_flipped_byte_in_a_table_is_reported_as_corruption():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, block_cache_size=0, **TINY) as db:
        await fill(db, 1500)
        await db.compact_range()
    sst = sorted(names(fs, ".sst"))[0]
    path = f"{PATH}/{sst}"
    data = bytearray(fs.read_file(path))
    rng = random.Random(3)
    for pos in sorted(rng.sample(range(len(data)), 40)):
        image = MemFileSystem()
        image.mkdir(PATH)
        for name in fs.list_dir(PATH):
            content = fs.read_file(f"{PATH}/{name}")
            if name == sst:
                content = bytes(data[:pos]) + bytes([data[pos] ^ 0x5A]) + bytes(data[pos + 1 :])
            w = image.create(f"{PATH}/{name}")
            w.append(content)
            w.close()
        with pytest.raises(CorruptionError) as err:
            async with aiokv.open(PATH, fs=image, block_cache_size=0, **TINY) as db:
                [kv async for kv in db.scan()]
        assert sst in str(err.value)


@pytest.mark.parametrize("in_process", [True, False])
async def test_compaction_on_disk_in_a_worker_process_or_the_loop(tmp_path, in_process):
    opts = {k: v for k, v in TINY.items() if k != "wal_segment_size"}
    async with aiokv.open(tmp_path / "db", compaction_process=in_process, **opts) as db:
        want = await fill(db, 4000, vsize=60)
        await db.delete_range(b"k000100", b"k000200")
        snap = db.snapshot()
        await fill(db, 1000, seed=4)
        await db.compact_range()
        assert db.stats()["compactions"] >= 1
        assert {k: v async for k, v in snap.scan()} == {
            k: v for k, v in want.items() if not b"k000100" <= k < b"k000200"
        }
        snap.release()
        db.check()
        worker = db._engine._worker
        assert (worker is not None) is in_process
    async with aiokv.open(tmp_path / "db", **opts) as db:
        db.check()
        assert await db.get(b"k000150") is None


async def test_close_during_a_worker_compaction_keeps_the_store_consistent(tmp_path):
    opts = {k: v for k, v in TINY.items() if k != "wal_segment_size"}
    async with aiokv.open(tmp_path / "db", **opts) as db:
        want = await fill(db, 6000, vsize=60)
        # Close right away: a merge in the worker may be running and is dropped.
    async with aiokv.open(tmp_path / "db", **opts) as db:
        assert {k: v async for k, v in db.scan()} == want
        db.check()
    # Background work may add tables until the close: compare with the final version.
    listed = {f"{n:06d}.sst" for n in db._engine.versions.current[0].numbers()}
    on_disk = {p.name for p in (tmp_path / "db").iterdir() if p.suffix == ".sst"}
    assert on_disk == listed


async def test_stats_count_cache_and_filter_outcomes():
    fs = MemFileSystem()
    async with aiokv.open(PATH, fs=fs, **TINY) as db:
        want = await fill(db, 3000)
        await db.compact_range()
        before = db.stats()
        for k in list(want)[:200]:
            assert await db.get(k) == want[k]
        for i in range(2000):
            assert await db.get(f"k{i:06d}x".encode()) is None  # absent, inside the range
        after = db.stats()
        assert after["filter_positive"] - before["filter_positive"] >= 200
        assert after["filter_useful"] - before["filter_useful"] > 1900
        hits = after["block_cache_hits"] - before["block_cache_hits"]
        misses = after["block_cache_misses"] - before["block_cache_misses"]
        assert hits + misses >= 200
        assert after["bytes_written"] > 0 and after["flushes"] >= 1


async def test_writers_slow_down_and_wait_but_never_fail_when_l0_piles_up():
    fs = MemFileSystem()
    opts = dict(TINY, l0_compaction_trigger=1, l0_slowdown_trigger=1, l0_stop_trigger=2)
    async with aiokv.open(PATH, fs=fs, max_write_buffer_number=2, **opts) as db:
        want: dict[bytes, bytes] = {}

        async def writer(w: int) -> None:
            for i in range(800):
                k = f"w{w}-{i:05d}".encode()
                await db.put(k, b"v" * 60, sync=i % 100 == 0)
                want[k] = b"v" * 60

        await asyncio.gather(*(writer(w) for w in range(4)))
        stats = db.stats()
        assert stats["stalls_slowdown"] + stats["stalls_stop"] > 0
        assert stats["stall_micros"] > 0
        assert {k: v async for k, v in db.scan()} == want
        db.check()
