"""The contract of snapshots: repeatable reads of every kind, scans at their snapshot, through
flushes and compactions, across families; a released snapshot refuses reads."""

from __future__ import annotations

import pytest

import aiokv
from tests.conformance.harness import scan


async def test_snapshot_isolation(store):
    await store.put_many({b"a": b"1", b"b": b"1"})
    snap = store.snapshot()
    await store.put(b"a", b"2")
    await store.delete(b"b")
    await store.put(b"c", b"new")
    assert await snap.get(b"a") == b"1"
    assert await snap.get(b"b") == b"1"
    assert await snap.get(b"c") is None
    assert [kv async for kv in snap.scan()] == [(b"a", b"1"), (b"b", b"1")]
    snap.release()
    assert await scan(store) == [(b"a", b"2"), (b"c", b"new")]


async def test_a_snapshot_reads_the_same_by_every_read_call(store):
    await store.put_many({b"k%02d" % i: b"old" for i in range(20)})
    with store.snapshot() as snap:
        await store.delete_range(b"k05", b"k15")
        await store.put_many({b"k%02d" % i: b"new" for i in range(0, 20, 3)})
        old = [(b"k%02d" % i, b"old") for i in range(20)]
        assert await store.get(b"k10", snapshot=snap) == b"old"
        assert await snap.get_many([b"k00", b"k10"]) == [b"old", b"old"]
        assert await store.get_many([b"k00", b"k10"], snapshot=snap) == [b"old", b"old"]
        assert await scan(store, snapshot=snap) == old
        assert await scan(snap, reverse=True) == old[::-1]
        assert await scan(snap, b"k03", b"k07") == old[3:7]
        assert await scan(snap, prefix=b"k1", reverse=True) == old[10:][::-1]
        assert await store.get(b"k10") is None
        assert await store.get(b"k09") == b"new"


async def test_repeated_reads_at_a_snapshot_agree_through_flush_and_compaction(store):
    for i in range(400):
        await store.put(b"k%04d" % i, b"v1")
    snap = store.snapshot()
    before = await scan(snap)
    for i in range(0, 400, 2):
        await store.put(b"k%04d" % i, b"v2")
    await store.delete_range(b"k0100", b"k0300")
    await store.flush()
    assert await scan(snap) == before
    await store.compact_range()
    assert await scan(snap) == before
    assert await snap.get(b"k0200") == b"v1"
    snap.release()
    await store.compact_range()
    got = await scan(store)
    assert len(got) == 200
    assert got[0] == (b"k0000", b"v2") and got[1] == (b"k0001", b"v1")


async def test_snapshots_taken_at_different_times_each_keep_their_view(store):
    snaps = []
    for i in range(5):
        await store.put(b"k", b"%d" % i)
        await store.put(b"n%d" % i, b"x")
        snaps.append(store.snapshot())
    await store.delete(b"k")
    for i, snap in enumerate(snaps):
        assert await snap.get(b"k") == b"%d" % i
        assert [k for k, _ in await scan(snap, prefix=b"n")] == [b"n%d" % j for j in range(i + 1)]
    for snap in snaps:
        snap.release()
    assert await store.get(b"k") is None


async def test_a_snapshot_sees_a_batch_whole_or_not_at_all(store):
    await store.put(b"a", b"0")
    snap = store.snapshot()
    async with store.batch() as b:
        b.put(b"a", b"1")
        b.put(b"b", b"1")
    after = store.snapshot()
    assert await snap.get_many([b"a", b"b"]) == [b"0", None]
    assert await after.get_many([b"a", b"b"]) == [b"1", b"1"]
    snap.release()
    after.release()


async def test_a_released_snapshot_refuses_reads(store):
    await store.put(b"k", b"v")
    snap = store.snapshot()
    snap.release()
    snap.release()  # idempotent
    with pytest.raises(aiokv.ClosedError):
        await snap.get(b"k")
    with pytest.raises(aiokv.ClosedError):
        await store.get(b"k", snapshot=snap)
    assert await store.get(b"k") == b"v"


async def test_a_snapshot_covers_every_family(store):
    other = await store.create_column_family("other")
    await store.put(b"k", b"d1")
    await other.put(b"k", b"o1")
    snap = store.snapshot()
    async with store.batch() as b:
        b.put(b"k", b"d2")
        b.put(b"k", b"o2", cf=other)
    await other.put(b"new", b"x")
    assert await snap.get(b"k", cf=other) == b"o1"
    assert await other.get(b"k", snapshot=snap) == b"o1"
    assert await scan(other, snapshot=snap) == [(b"k", b"o1")]
    assert await scan(snap, cf=other) == [(b"k", b"o1")]
    assert await snap.get(b"k") == b"d1"
    assert await scan(other) == [(b"k", b"o2"), (b"new", b"x")]
    later = await store.create_column_family("later")
    await later.put(b"k", b"v")
    assert await later.get(b"k", snapshot=snap) is None  # the family did not exist at snap
    snap.release()
