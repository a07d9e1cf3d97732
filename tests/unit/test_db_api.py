"""The public awaitable API: behaviour of each entry point on a working database."""

from __future__ import annotations

import gc

import pytest

import aiokv
from aiokv.engine.memfs import CrashMode, MemFileSystem


@pytest.fixture
async def db():
    async with aiokv.open(None) as d:
        yield d


async def test_put_then_get_returns_the_value(db):
    await db.put(b"k", b"v")
    assert await db.get(b"k") == b"v"
    assert await db.get(b"missing") is None


async def test_str_keys_and_values_are_utf8_encoded(db):
    await db.put("clé", "välue")
    assert await db.get("clé".encode()) == "välue".encode()
    assert await db.get("clé") == "välue".encode()


async def test_bytearray_and_memoryview_are_accepted(db):
    await db.put(bytearray(b"k"), memoryview(b"v"))
    assert await db.get(b"k") == b"v"


async def test_overwrite_returns_newest(db):
    await db.put(b"k", b"1")
    await db.put(b"k", b"2")
    assert await db.get(b"k") == b"2"


async def test_delete_hides_the_key(db):
    await db.put(b"k", b"v")
    await db.delete(b"k")
    assert await db.get(b"k") is None
    await db.delete(b"never-there")  # not an error


async def test_empty_value_is_a_value_not_a_miss(db):
    await db.put(b"k", b"")
    assert await db.get(b"k") == b""


async def test_get_many_keeps_order_and_reports_misses(db):
    await db.put_many({b"a": b"1", b"c": b"3"})
    assert await db.get_many([b"a", b"b", b"c", "a"]) == [b"1", None, b"3", b"1"]
    assert await db.get_many(iter([b"c"])) == [b"3"]
    assert await db.get_many([]) == []


async def test_put_many_accepts_pairs(db):
    await db.put_many([(b"x", b"1"), ("y", "2")])
    assert await db.get_many([b"x", b"y"]) == [b"1", b"2"]


async def test_delete_range_deletes_half_open_range(db):
    for k in (b"a", b"b", b"c", b"d"):
        await db.put(k, k)
    await db.delete_range(b"b", b"d")
    assert await db.get_many([b"a", b"b", b"c", b"d"]) == [b"a", None, None, b"d"]
    await db.put(b"c", b"again")  # a write after the range delete is visible
    assert await db.get(b"c") == b"again"


async def test_delete_range_with_equal_bounds_deletes_nothing(db):
    await db.put(b"a", b"1")
    await db.delete_range(b"a", b"a")
    assert await db.get(b"a") == b"1"


async def test_scan_forward_reverse_bounds_and_prefix(db):
    keys = [b"a", b"b1", b"b2", b"b3", b"c"]
    await db.put_many({k: k.upper() for k in keys})
    assert [k async for k, _ in db.scan()] == keys
    assert [k async for k, _ in db.scan(reverse=True)] == keys[::-1]
    assert [k async for k, _ in db.scan(b"b1", b"b3")] == [b"b1", b"b2"]
    assert [k async for k, _ in db.scan(b"b1", b"b3", reverse=True)] == [b"b2", b"b1"]
    assert [k async for k, _ in db.scan(prefix=b"b")] == [b"b1", b"b2", b"b3"]
    assert [k async for k, _ in db.scan(prefix=b"b", start=b"b2")] == [b"b2", b"b3"]
    assert await db.scan(prefix=b"b", reverse=True).__anext__() == (b"b3", b"B3")
    assert [k async for k, _ in db.scan(b"z", b"a")] == []


async def test_scan_prefix_of_ff_bytes_reaches_the_end(db):
    await db.put_many({b"\xff\x01": b"1", b"\xff\xff\x02": b"2", b"\xfe": b"0"})
    assert [k async for k, _ in db.scan(prefix=b"\xff")] == [b"\xff\x01", b"\xff\xff\x02"]


async def test_scan_skips_deleted_keys_and_spans_many_chunks(db):
    await db.put_many({f"k{i:05d}": b"v" for i in range(1000)})
    await db.delete_range(b"k00100", b"k00900")
    got = [k async for k, _ in db.scan()]
    assert len(got) == 200
    assert got == sorted(got)


async def test_scan_reads_at_its_own_snapshot(db):
    await db.put_many({b"a": b"1", b"b": b"1", b"c": b"1"})
    it = db.scan()
    await db.put(b"b", b"2")
    await db.put(b"bb", b"new")
    await db.delete(b"c")
    assert [kv async for kv in it] == [(b"a", b"1"), (b"b", b"1"), (b"c", b"1")]


async def test_snapshot_gives_repeatable_reads(db):
    await db.put(b"k", b"old")
    with db.snapshot() as snap:
        await db.put(b"k", b"new")
        await db.put(b"later", b"x")
        await db.delete_range(b"a", b"z")
        assert await snap.get(b"k") == b"old"
        assert await db.get(b"k", snapshot=snap) == b"old"
        assert await snap.get(b"later") is None
        assert await snap.get_many([b"k", b"later"]) == [b"old", None]
        assert [kv async for kv in snap.scan()] == [(b"k", b"old")]
    assert await db.get(b"k") is None
    with pytest.raises(aiokv.ClosedError):
        await db.get(b"k", snapshot=snap)


async def test_scan_keeps_reading_after_its_snapshot_is_released(db):
    await db.put_many({f"k{i:04d}": b"old" for i in range(600)})
    snap = db.snapshot()
    it = snap.scan()
    first = await it.__anext__()
    snap.release()
    await db.put_many({f"k{i:04d}": b"new" for i in range(600)})
    rest = [v async for _, v in it]
    assert first[1] == b"old"
    assert set(rest) == {b"old"}


async def test_batch_commits_on_clean_exit(db):
    async with db.batch() as b:
        b.put(b"a", b"1")
        b.put(b"b", b"2")
        b.delete(b"a")
        assert len(b) == 3
    assert await db.get_many([b"a", b"b"]) == [None, b"2"]


async def test_batch_is_discarded_when_the_block_raises(db):
    with pytest.raises(RuntimeError):
        async with db.batch() as b:
            b.put(b"a", b"1")
            raise RuntimeError("boom")
    assert await db.get(b"a") is None


async def test_batch_cannot_be_committed_twice(db):
    b = db.batch()
    b.put(b"a", b"1")
    await b.commit()
    with pytest.raises(aiokv.ClosedError):
        await b.commit()
    with pytest.raises(aiokv.ClosedError):
        b.put(b"b", b"2")


async def test_later_op_in_a_batch_wins(db):
    async with db.batch() as b:
        b.put(b"k", b"1")
        b.put(b"k", b"2")
    assert await db.get(b"k") == b"2"


@pytest.mark.parametrize("mode", [{}, {"sync": True}, {"buffered": True}])
async def test_every_durability_mode_is_readable_at_once(db, mode):
    await db.put(b"k", b"v", **mode)
    async with db.batch(**mode) as b:
        b.put(b"b", b"1")
    assert await db.get_many([b"k", b"b"]) == [b"v", b"1"]


async def test_ttl_hides_the_value_once_expired():
    now = [1000.0]
    async with aiokv.open(None, clock=lambda: now[0]) as db:
        await db.put(b"s", b"session", ttl=30)
        assert await db.get(b"s") == b"session"
        now[0] += 29.9
        assert await db.get(b"s") == b"session"
        now[0] += 0.2
        assert await db.get(b"s") is None
        assert await db.get_many([b"s"]) == [None]
        assert [k async for k, _ in db.scan()] == []


async def test_default_column_family_handle(db):
    cf = db.column_family("default")
    await db.put(b"k", b"v", cf=cf)
    assert await db.get(b"k", cf=cf) == b"v"
    assert db.list_column_families() == ["default"]
    with pytest.raises(aiokv.ColumnFamilyError):
        db.column_family("sessions")


async def test_open_is_awaitable_and_aclose_idempotent():
    db = await aiokv.open(None)
    await db.put(b"k", b"v")
    await db.aclose()
    await db.aclose()
    await db.close()
    assert db.closed


async def test_reopen_after_clean_close_keeps_every_write(tmp_path):
    async with aiokv.open(tmp_path / "db") as db:
        await db.put(b"plain", b"1")
        await db.put(b"buffered", b"2", buffered=True)
        await db.put(b"synced", b"3", sync=True)
        await db.delete_range(b"x", b"y")
        async with db.batch() as b:
            b.put(b"batched", b"4")
    async with aiokv.open(tmp_path / "db") as db:
        got = [kv async for kv in db.scan()]
    assert got == [(b"batched", b"4"), (b"buffered", b"2"), (b"plain", b"1"), (b"synced", b"3")]


async def test_clean_close_survives_a_power_cut():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        for i in range(100):
            await db.put(f"k{i}", b"v", buffered=i % 2 == 0)
    image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    async with aiokv.open("/db", fs=image) as db:
        assert len([k async for k, _ in db.scan()]) == 100


async def test_segments_rotate_and_all_replay():
    fs = MemFileSystem()
    opts = {"fs": fs, "wal_segment_size": 64 * 1024}
    async with aiokv.open("/db", **opts) as db:
        for i in range(2000):
            await db.put(f"k{i:05d}", b"x" * 100, sync=i % 100 == 0)
    logs = [n for n in fs.list_dir("/db") if n.endswith(".log")]
    assert len(logs) > 3
    async with aiokv.open("/db", **opts) as db:
        assert len([k async for k, _ in db.scan()]) == 2000
        db.check()


async def test_unclosed_database_warns_and_releases_its_lock(tmp_path):
    db = await aiokv.open(tmp_path / "db")
    with pytest.warns(ResourceWarning, match="was not closed"):
        del db
        gc.collect()
    async with aiokv.open(tmp_path / "db") as again:  # the LOCK was released
        assert await again.get(b"k") is None
