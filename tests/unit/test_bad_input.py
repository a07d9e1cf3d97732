"""Bad input gets a clear aiokv error and changes nothing."""

from __future__ import annotations

import errno
import json

import pytest

import aiokv
from aiokv.engine.memfs import MemFileSystem

SMALL = {"max_key_size": 8, "max_value_size": 16}


async def state(db: aiokv.DB) -> list[tuple[bytes, bytes]]:
    return [kv async for kv in db.scan()]


@pytest.fixture
async def db():
    async with aiokv.open(None, **SMALL) as d:
        await d.put(b"keep", b"this")
        yield d


BAD_PUTS = [
    pytest.param((123, b"v"), {}, aiokv.InvalidTypeError, "key must be bytes or str", id="int-key"),
    pytest.param((b"k", None), {}, aiokv.InvalidTypeError, "value must be", id="none-value"),
    pytest.param((b"", b"v"), {}, aiokv.InvalidArgumentError, "1 to 8 bytes", id="empty-key"),
    pytest.param((b"k" * 9, b"v"), {}, aiokv.InvalidArgumentError, "1 to 8 bytes", id="long-key"),
    pytest.param((b"k", b"v" * 17), {}, aiokv.InvalidArgumentError, "limit of 16", id="big-value"),
    pytest.param(("\ud800", b"v"), {}, aiokv.InvalidArgumentError, "UTF-8", id="surrogate"),
    pytest.param((b"k", b"v"), {"ttl": 0}, aiokv.InvalidArgumentError, "ttl", id="zero-ttl"),
    pytest.param((b"k", b"v"), {"ttl": "1"}, aiokv.InvalidTypeError, "ttl", id="str-ttl"),
    pytest.param((b"k", b"v"), {"ttl": float("nan")}, aiokv.InvalidArgumentError, "ttl", id="nan"),
    pytest.param((b"k", b"v"), {"sync": "yes"}, aiokv.InvalidTypeError, "sync", id="str-sync"),
    pytest.param(
        (b"k", b"v"),
        {"sync": True, "buffered": True},
        aiokv.InvalidArgumentError,
        "not both",
        id="sync-and-buffered",
    ),
    pytest.param((b"k", b"v"), {"cf": "default"}, aiokv.InvalidTypeError, "ColumnFamily", id="cf"),
]


@pytest.mark.parametrize(("args", "kwargs", "error", "words"), BAD_PUTS)
async def test_bad_put_raises_and_changes_nothing(db, args, kwargs, error, words):
    before = await state(db)
    with pytest.raises(error, match=words):
        await db.put(*args, **kwargs)
    assert await state(db) == before


@pytest.mark.parametrize("key", [None, 1.5, ["k"], {"k": 1}, b"", b"123456789"])
async def test_bad_get_key_raises(db, key):
    with pytest.raises(aiokv.InvalidArgumentError):
        await db.get(key)
    with pytest.raises(aiokv.InvalidArgumentError):
        await db.get_many([b"keep", key])


async def test_get_many_refuses_a_single_key(db):
    with pytest.raises(aiokv.InvalidTypeError, match="iterable of keys"):
        await db.get_many(b"keep")


async def test_bad_op_in_a_batch_leaves_batch_and_store_unchanged(db):
    before = await state(db)
    b = db.batch()
    b.put(b"a", b"1")
    with pytest.raises(aiokv.InvalidArgumentError):
        b.put(b"b", b"x" * 100)
    with pytest.raises(aiokv.InvalidArgumentError, match="start <= end"):
        b.delete_range(b"z", b"a")
    assert len(b) == 1
    assert await state(db) == before
    await b.commit()
    assert await db.get(b"a") == b"1"


async def test_bad_arguments_to_delete_and_scan(db):
    before = await state(db)
    with pytest.raises(aiokv.InvalidArgumentError):
        await db.delete(b"")
    with pytest.raises(aiokv.InvalidArgumentError):
        await db.delete_range(b"b", b"a")
    with pytest.raises(aiokv.InvalidTypeError):
        db.scan(start=5)
    with pytest.raises(aiokv.InvalidTypeError):
        db.scan(reverse="yes")
    with pytest.raises(aiokv.InvalidTypeError):
        await db.write("not a batch")
    with pytest.raises(aiokv.InvalidTypeError):
        await db.put_many([b"only-one-element"])
    assert await state(db) == before


async def test_snapshot_of_another_database_is_refused(db):
    async with aiokv.open(None) as other:
        with other.snapshot() as snap, pytest.raises(aiokv.InvalidArgumentError, match="another"):
            await db.get(b"keep", snapshot=snap)


async def test_use_after_close_raises_closed_error():
    db = await aiokv.open(None)
    it = db.scan()
    await db.aclose()
    for call in (
        lambda: db.get(b"k"),
        lambda: db.get_many([b"k"]),
        lambda: db.put(b"k", b"v"),
        lambda: db.delete(b"k"),
        lambda: it.__anext__(),
    ):
        with pytest.raises(aiokv.ClosedError, match="closed"):
            await call()
    with pytest.raises(aiokv.ClosedError):
        db.snapshot()
    with pytest.raises(aiokv.ClosedError):
        db.batch()


async def test_writes_to_a_poisoned_database_raise_background_error():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        await db.put(b"ok", b"1", sync=True)

        def fail(op: str, path: str) -> None:
            if op == "sync":
                raise OSError(errno.EIO, "injected")

        fs.fault = fail
        with pytest.raises(aiokv.StorageIOError):
            await db.put(b"lost", b"2", sync=True)
        fs.fault = None
        for call in (lambda: db.put(b"k", b"v"), lambda: db.get(b"ok")):
            with pytest.raises(aiokv.BackgroundError, match="poisoned"):
                await call()
    async with aiokv.open("/db", fs=fs) as db:
        assert await db.get(b"ok") == b"1"
        assert await db.get(b"lost") is None


@pytest.mark.parametrize(
    ("options", "error", "words"),
    [
        ({"no_such_option": 1}, aiokv.InvalidArgumentError, "unknown option"),
        ({"max_key_size": 0}, aiokv.InvalidArgumentError, "out of range"),
        ({"max_key_size": "8"}, aiokv.InvalidTypeError, "must be an int"),
        ({"create_if_missing": 1}, aiokv.InvalidTypeError, "must be a bool"),
        ({"buffered_flush_ms": -1}, aiokv.InvalidArgumentError, "buffered_flush_ms"),
        ({"clock": 3}, aiokv.InvalidTypeError, "callable"),
        ({"fs": object()}, aiokv.InvalidTypeError, "FileSystem"),
        ({"write_buffer_size": 1}, aiokv.InvalidArgumentError, "out of range"),
        ({"block_cache_size": -1}, aiokv.InvalidArgumentError, "out of range"),
        ({"bloom_bits_per_key": 1.5}, aiokv.InvalidTypeError, "must be an int"),
        ({"filter": "cuckoo"}, aiokv.InvalidArgumentError, "filter must be one of"),
        ({"filter": ["bloom"]}, aiokv.InvalidArgumentError, "filter must be one of"),
        ({"compaction": "universal"}, aiokv.InvalidArgumentError, "compaction must be one of"),
        ({"compaction_process": "yes"}, aiokv.InvalidTypeError, "must be a bool"),
        ({"l0_slowdown_trigger": 2, "l0_compaction_trigger": 4}, aiokv.InvalidArgumentError, "l0_"),
    ],
)
def test_bad_options_are_refused(options, error, words):
    with pytest.raises(error, match=words):
        aiokv.open(None, **options)


def test_bad_engine_and_path_types_are_refused():
    with pytest.raises(aiokv.InvalidArgumentError, match="engine"):
        aiokv.open(None, engine="btree-someday")
    with pytest.raises(aiokv.InvalidTypeError, match="path"):
        aiokv.open(42)
    with pytest.raises(aiokv.InvalidArgumentError, match="non-empty"):
        aiokv.open("")


async def test_path_that_is_a_file_is_refused(tmp_path):
    target = tmp_path / "a-file"
    target.write_bytes(b"not a database")
    with pytest.raises(aiokv.InvalidArgumentError, match="is a file"):
        await aiokv.open(target)
    assert target.read_bytes() == b"not a database"


async def test_missing_directory_without_create_is_refused(tmp_path):
    with pytest.raises(aiokv.InvalidArgumentError, match="does not exist"):
        await aiokv.open(tmp_path / "nope", create_if_missing=False)
    assert not (tmp_path / "nope").exists()


async def test_foreign_non_empty_directory_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(aiokv.InvalidArgumentError, match="holds no aiokv store"):
        await aiokv.open(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LOCK", "notes.txt"]


async def test_error_if_exists(tmp_path):
    async with aiokv.open(tmp_path / "db"):
        pass
    with pytest.raises(aiokv.InvalidArgumentError, match="already holds"):
        await aiokv.open(tmp_path / "db", error_if_exists=True)


async def test_second_open_of_one_path_fails_clearly(tmp_path):
    async with aiokv.open(tmp_path / "db") as db:
        await db.put(b"k", b"v")
        with pytest.raises(aiokv.LockedError, match="in use"):
            await aiokv.open(tmp_path / "db")
        assert await db.get(b"k") == b"v"


async def test_directory_of_a_newer_format_version_is_refused(tmp_path):
    from aiokv.engine import identity

    async with aiokv.open(tmp_path / "db") as db:
        await db.put(b"k", b"v", sync=True)
    path = tmp_path / "db" / "IDENTITY"
    fields = json.loads(path.read_bytes())
    fields["format_version"] = identity.FORMAT_VERSION + 1
    fields["checksum"] = identity._checksum(fields)
    path.write_bytes(json.dumps(fields).encode())
    before = sorted((p.name, p.read_bytes()) for p in (tmp_path / "db").iterdir())
    with pytest.raises(aiokv.UnsupportedFormatError, match="upgrade aiokv"):
        await aiokv.open(tmp_path / "db")
    assert sorted((p.name, p.read_bytes()) for p in (tmp_path / "db").iterdir()) == before


async def test_wal_segment_of_a_newer_version_is_refused(tmp_path):
    from aiokv.engine.wal_format import encode_segment_header

    async with aiokv.open(tmp_path / "db") as db:
        await db.put(b"k", b"v")
    seg = tmp_path / "db" / "000001.log"
    data = bytearray(seg.read_bytes())
    newer = bytearray(encode_segment_header(1))
    newer[8] = 99  # version field
    import xxhash

    newer[24:32] = xxhash.xxh3_64_intdigest(bytes(newer[:24])).to_bytes(8, "little")
    data[:32] = newer
    seg.write_bytes(bytes(data))
    with pytest.raises(aiokv.UnsupportedFormatError, match="WAL format version 99"):
        await aiokv.open(tmp_path / "db")


async def test_engine_mismatch_is_refused(tmp_path, monkeypatch):
    from aiokv.engine import identity

    async with aiokv.open(tmp_path / "db"):
        pass
    path = tmp_path / "db" / "IDENTITY"
    path.write_bytes(identity.encode_identity("btree", "0" * 32))
    with pytest.raises(aiokv.InvalidArgumentError, match="engine='btree'"):
        await aiokv.open(tmp_path / "db")


async def test_bad_compact_range_flush_and_stats_calls_change_nothing():
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        await db.put(b"a", b"1")
        before = await state(db)
        with pytest.raises(aiokv.InvalidTypeError):
            await db.compact_range(3, None)
        with pytest.raises(aiokv.InvalidArgumentError, match="start is after end"):
            await db.compact_range(b"z", b"a")
        assert await state(db) == before
        assert db.stats()["flushes"] == 0  # nothing was flushed by the refused calls
    for call in (db.compact_range, db.flush):
        with pytest.raises(aiokv.ClosedError):
            await call()
    with pytest.raises(aiokv.ClosedError):
        db.stats()


async def test_a_store_written_before_tables_existed_opens_and_keeps_its_data():
    # An issue-2 directory: LOCK, IDENTITY and WAL segments, no CURRENT, no manifest, no table.
    fs = MemFileSystem()
    async with aiokv.open("/db", fs=fs) as db:
        await db.put_many({b"a": b"1", b"b": b"2"}, sync=True)
    for name in fs.list_dir("/db"):
        if name.startswith(("CURRENT", "MANIFEST-")):
            fs.remove(f"/db/{name}")
    assert not [n for n in fs.list_dir("/db") if n.endswith(".sst")]
    async with aiokv.open("/db", fs=fs) as db:
        assert await state(db) == [(b"a", b"1"), (b"b", b"2")]
        await db.flush()
    async with aiokv.open("/db", fs=fs) as db:
        assert await state(db) == [(b"a", b"1"), (b"b", b"2")]
