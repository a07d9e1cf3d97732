"""Group commit: one record and one fsync serve many writers; cancellation never half-applies."""

from __future__ import annotations

import asyncio

import aiokv
from aiokv.engine.memfs import CrashMode, MemFileSystem
from aiokv.engine.wal import read_segment


async def test_concurrent_sync_writers_share_one_fsync():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        before = fs.sync_count
        await asyncio.gather(*(db.put(f"k{i}", b"v", sync=True) for i in range(100)))
        assert fs.sync_count - before == 1
        assert len(await db.get_many([f"k{i}" for i in range(100)])) == 100
        image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    async with aiokv.open("/db", fs=image) as db:
        assert None not in await db.get_many([f"k{i}" for i in range(100)])


async def test_group_is_one_wal_record_in_sequence_order():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        await asyncio.gather(*(db.put(f"k{i}", f"{i}", sync=True) for i in range(10)))
    replay = read_segment(fs, "/db", 1)
    assert len(replay.records) == 1


async def test_default_writes_behind_a_sync_group_wait_and_keep_order():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        synced = asyncio.ensure_future(db.put(b"k", b"synced", sync=True))
        await asyncio.sleep(0)  # the sync group is in flight now
        await db.put(b"k", b"later")  # must not overtake the sync write
        await synced
        assert await db.get(b"k") == b"later"
    async with aiokv.open("/db", fs=fs) as db:
        assert await db.get(b"k") == b"later"


async def test_writer_cancelled_before_its_group_is_taken_is_not_applied():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        first = asyncio.ensure_future(db.put(b"a", b"1", sync=True))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(db.put(b"b", b"2", sync=True))
        await asyncio.sleep(0)  # second is queued behind the group in flight
        second.cancel()
        await first
        await asyncio.gather(second, return_exceptions=True)
        assert second.cancelled()
        assert await db.get(b"b") is None
        await db.put(b"c", b"3", sync=True)
    async with aiokv.open("/db", fs=fs) as db:
        assert await db.get_many([b"a", b"b", b"c"]) == [b"1", None, b"3"]


async def test_buffered_writes_reach_the_wal_before_the_next_write():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs, buffered_flush_ms=60_000) as db:
        await db.put(b"a", b"1", buffered=True)
        await db.put(b"b", b"2", buffered=True)
        assert len(read_segment(fs, "/db", 1).records) == 0  # still in memory
        await db.put(b"c", b"3", sync=True)
        image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    async with aiokv.open("/db", fs=image) as db:
        assert await db.get_many([b"a", b"b", b"c"]) == [b"1", b"2", b"3"]


async def test_buffered_writes_reach_the_os_within_the_flush_interval():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs, buffered_flush_ms=1) as db:
        await db.put(b"a", b"1", buffered=True)
        for _ in range(1000):  # bounded: the timer fires after 1 ms of loop time
            if read_segment(fs, "/db", 1).records:
                break
            await asyncio.sleep(0.005)
        assert len(read_segment(fs, "/db", 1).records) == 1


async def test_empty_sync_batch_makes_earlier_writes_durable():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        await db.put(b"a", b"1")
        await db.put(b"b", b"2", buffered=True)
        async with db.batch(sync=True):
            pass
        image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    async with aiokv.open("/db", fs=image) as db:
        assert await db.get_many([b"a", b"b"]) == [b"1", b"2"]


async def test_wal_sync_during_a_segment_rotation_neither_fails_nor_loses_writes():
    # A flush syncs the WAL directly (commit.py, sync_wal) and may meet a rotation that is
    # sealing and closing the very segment it would sync.
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        await db.put(b"a", b"1")
        committer = db._engine.committer
        assert committer.wal is not None
        for i in range(20):
            await db.put(b"k%d" % i, b"v")
            rotation = asyncio.ensure_future(committer._rotate(committer.wal))
            await asyncio.sleep(0)  # the seal is in the pool now
            await committer.sync_wal()
            await rotation
        assert committer.error is None
        await db.put(b"b", b"2")  # not poisoned
        image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    async with aiokv.open("/db", fs=image) as db:
        assert await db.get_many([b"a", b"k19"]) == [b"1", b"v"]
