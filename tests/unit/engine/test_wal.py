"""The WAL on a FileSystem (WalWriter, read_segment, list_segments) and WAL recovery at open."""

from __future__ import annotations

import struct

import pytest
import xxhash

import aiokv
from aiokv.engine.batch_format import encode_op, encode_payload
from aiokv.engine.fs import join
from aiokv.engine.memfs import CrashMode, MemFileSystem
from aiokv.engine.wal import WalWriter, list_segments, read_segment, segment_name
from aiokv.engine.wal_format import (
    RECORD_HEADER,
    SEGMENT_HEADER,
    RecordType,
    encode_record,
)
from aiokv.errors import CorruptionError, UnsupportedFormatError

DIR = "/db"
SEG1 = "/db/000001.log"
BATCH = int(RecordType.BATCH)


def _fs() -> MemFileSystem:
    fs = MemFileSystem()
    fs.mkdir(DIR)
    return fs


def _put(seq: int, key: bytes = b"k", value: bytes = b"v") -> bytes:
    return encode_payload(seq, 1, [encode_op(1, 0, key, value)])


def _rewrite(fs: MemFileSystem, path: str, data: bytes) -> None:
    """Gives the file at `path` (made if missing) the content `data`, all of it durable."""
    if not fs.exists(path):
        fs.create(path).close()
        fs.sync_dir(DIR)
    f = fs.open_append(path)
    f.truncate(0)
    f.append(data)
    f.sync()
    f.close()


def _flip(fs: MemFileSystem, path: str, at: int) -> None:
    data = bytearray(fs.read_file(path))
    data[at] ^= 0x10
    _rewrite(fs, path, bytes(data))


# -- segment names --------------------------------------------------------------------------------


def test_segment_name_is_the_number_zero_padded_to_six_digits():
    assert segment_name(1) == "000001.log"
    assert segment_name(1234567) == "1234567.log"


def test_list_segments_ignores_other_files_and_sorts_by_number():
    fs = _fs()
    names = ["000010.log", "1000000.log", "000002.log", "IDENTITY", "LOCK", "000003.log.tmp",
             "00004.log", "000005.sst", "abcdef.log", "x000006.log"]  # fmt: skip
    for name in names:
        fs.create(join(DIR, name)).close()
    assert list_segments(fs, DIR) == [2, 10, 1000000]


def test_list_segments_of_an_empty_directory_is_empty():
    assert list_segments(_fs(), DIR) == []


# -- WalWriter and read_segment -------------------------------------------------------------------


def test_writer_and_read_segment_round_trip():
    fs = _fs()
    wal = WalWriter.create(fs, DIR, 1)
    wal.append(BATCH, _put(1))
    wal.append(BATCH, _put(2))
    wal.mark_synced(wal.sync())
    synced = wal.size
    wal.append(BATCH, _put(3, b"key", b"value"))
    wal.close()
    replay = read_segment(fs, DIR, 1)
    assert (replay.number, replay.path, replay.torn_at) == (1, SEG1, None)
    assert [r.payload for r in replay.records] == [_put(1), _put(2), _put(3, b"key", b"value")]
    assert [r.synced_to for r in replay.records] == [32, 32, synced]
    assert wal.size == len(fs.read_file(SEG1))


def test_create_makes_the_header_and_the_directory_entry_durable():
    fs = _fs()
    WalWriter.create(fs, DIR, 1).close()
    image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    assert list_segments(image, DIR) == [1]
    assert len(image.read_file(SEG1)) == SEGMENT_HEADER.size
    assert read_segment(image, DIR, 1).records == []


def test_a_crash_keeps_synced_records_and_loses_the_rest():
    fs = _fs()
    wal = WalWriter.create(fs, DIR, 1)
    wal.append(BATCH, _put(1))
    wal.mark_synced(wal.sync())
    wal.append(BATCH, _put(2))
    wal.close()
    replay = read_segment(fs.crash_clone(CrashMode.DROP_UNSYNCED), DIR, 1)
    assert ([r.payload for r in replay.records], replay.torn_at) == ([_put(1)], None)


def test_mark_synced_never_moves_synced_to_back():
    fs = _fs()
    wal = WalWriter.create(fs, DIR, 1)
    wal.append(BATCH, _put(1))
    wal.mark_synced(wal.sync())
    wal.mark_synced(40)
    assert wal.synced_to == wal.size
    wal.close()


def test_truncate_cuts_off_a_record():
    fs = _fs()
    wal = WalWriter.create(fs, DIR, 1)
    wal.append(BATCH, _put(1))
    start = wal.size
    wal.append(BATCH, _put(2))
    wal.truncate(start)
    wal.close()
    replay = read_segment(fs, DIR, 1)
    assert ([r.payload for r in replay.records], replay.torn_at) == ([_put(1)], None)


def test_read_segment_reports_a_torn_tail():
    fs = _fs()
    wal = WalWriter.create(fs, DIR, 1)
    wal.append(BATCH, _put(1))
    end = wal.size
    wal.append(BATCH, _put(2))
    wal.close()
    _rewrite(fs, SEG1, fs.read_file(SEG1)[:-3])
    replay = read_segment(fs, DIR, 1)
    assert (len(replay.records), replay.torn_at) == (1, end)


# -- recovery at open -----------------------------------------------------------------------------


async def _two_synced_puts(fs: MemFileSystem) -> list[int]:
    """Writes a and b, each in its own synced record; returns the two record offsets."""
    async with aiokv.open(DIR, fs=fs) as db:
        await db.put(b"a", b"1", sync=True)
        await db.put(b"b", b"2", sync=True)
    return [r.offset for r in read_segment(fs, DIR, 1).records]


async def test_flipped_byte_in_a_synced_region_fails_open_naming_file_and_offset():
    fs = MemFileSystem()
    first, _second = await _two_synced_puts(fs)
    _flip(fs, SEG1, first + RECORD_HEADER.size + 2)
    with pytest.raises(CorruptionError) as info:
        await aiokv.open(DIR, fs=fs)
    assert (info.value.path, info.value.offset) == (SEG1, first)
    assert SEG1 in str(info.value)


async def test_torn_tail_opens_and_a_second_reopen_finds_the_same_state():
    fs = MemFileSystem()
    _first, second = await _two_synced_puts(fs)
    _rewrite(fs, SEG1, fs.read_file(SEG1)[:-3])
    async with aiokv.open(DIR, fs=fs) as db:
        assert await db.get_many([b"a", b"b"]) == [b"1", None]
    assert len(fs.read_file(SEG1)) == second  # the torn tail was cut off
    assert list_segments(fs, DIR) == [1, 2]
    async with aiokv.open(DIR, fs=fs) as db:
        assert await db.get_many([b"a", b"b"]) == [b"1", None]
        await db.put(b"c", b"3")
    assert len(fs.read_file(SEG1)) == second
    async with aiokv.open(DIR, fs=fs) as db:
        assert await db.get_many([b"a", b"b", b"c"]) == [b"1", None, b"3"]


async def test_cut_of_a_torn_tail_is_durable():
    fs = MemFileSystem()
    _first, second = await _two_synced_puts(fs)
    _rewrite(fs, SEG1, fs.read_file(SEG1) + b"\x00garbage")
    async with aiokv.open(DIR, fs=fs) as db:
        image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    assert len(image.read_file(SEG1)) == len(fs.read_file(SEG1)) > second
    async with aiokv.open(DIR, fs=image) as db:
        assert await db.get_many([b"a", b"b"]) == [b"1", b"2"]


async def test_segment_with_a_torn_header_is_removed_at_open():
    fs = MemFileSystem()
    await _two_synced_puts(fs)
    _rewrite(fs, join(DIR, "000002.log"), b"aiokvW")
    async with aiokv.open(DIR, fs=fs) as db:
        assert await db.get_many([b"a", b"b"]) == [b"1", b"2"]
    assert list_segments(fs, DIR) == [1, 3]  # 2 was removed; its number is not reused


async def test_damage_in_a_sealed_segment_fails_open_even_when_not_vouched_for():
    fs = MemFileSystem()
    _first, second = await _two_synced_puts(fs)
    async with aiokv.open(DIR, fs=fs):
        pass  # segment 1 is sealed now; 2 is the last
    _rewrite(fs, SEG1, fs.read_file(SEG1)[:-3])
    with pytest.raises(CorruptionError, match="sealed") as info:
        await aiokv.open(DIR, fs=fs)
    assert (info.value.path, info.value.offset) == (SEG1, second)


async def test_segment_of_a_newer_wal_version_fails_open_with_unsupported_format():
    fs = MemFileSystem()
    await _two_synced_puts(fs)
    data = bytearray(fs.read_file(SEG1))
    struct.pack_into("<I", data, 8, 2)
    struct.pack_into("<Q", data, 24, xxhash.xxh3_64_intdigest(bytes(data[:24])))
    _rewrite(fs, SEG1, bytes(data))
    with pytest.raises(UnsupportedFormatError, match="version 2"):
        await aiokv.open(DIR, fs=fs)


async def test_good_record_with_an_undecodable_payload_fails_open():
    fs = MemFileSystem()
    await _two_synced_puts(fs)
    data = fs.read_file(SEG1)
    _rewrite(fs, SEG1, data + encode_record(BATCH, len(data), _put(3) + b"x"))
    with pytest.raises(CorruptionError, match="after the last") as info:
        await aiokv.open(DIR, fs=fs)
    assert (info.value.path, info.value.offset) == (SEG1, len(data))


async def test_gap_in_sequence_numbers_fails_open():
    fs = MemFileSystem()
    await _two_synced_puts(fs)
    data = fs.read_file(SEG1)
    _rewrite(fs, SEG1, data + encode_record(BATCH, len(data), _put(4)))
    with pytest.raises(CorruptionError, match="sequence 4 follows 2"):
        await aiokv.open(DIR, fs=fs)


async def test_failed_open_releases_the_lock():
    fs = MemFileSystem()
    first, _second = await _two_synced_puts(fs)
    good = fs.read_file(SEG1)
    _flip(fs, SEG1, first + RECORD_HEADER.size + 2)
    with pytest.raises(CorruptionError):
        await aiokv.open(DIR, fs=fs)
    _rewrite(fs, SEG1, good)
    async with aiokv.open(DIR, fs=fs) as db:
        assert await db.get(b"b") == b"2"


async def test_value_that_looks_like_a_record_does_not_block_recovery_of_a_torn_tail():
    fs = MemFileSystem()
    fake = encode_record(BATCH, (1 << 64) - 1, b"")
    async with aiokv.open(DIR, fs=fs) as db:
        await db.put(b"a", b"1", sync=True)
        await db.put(b"b", fake + b"rest of the value")
    _rewrite(fs, SEG1, fs.read_file(SEG1)[:-5])  # what a power cut can leave
    async with aiokv.open(DIR, fs=fs) as db:
        assert await db.get_many([b"a", b"b"]) == [b"1", None]


async def test_recovery_syncs_the_last_segment_before_starting_the_next():
    fs = MemFileSystem()
    async with aiokv.open(DIR, fs=fs) as db:
        await db.put(b"a", b"1", sync=True)
    # A process crash leaves a default-durability write in the OS cache, never synced.
    end = len(fs.read_file(SEG1))
    f = fs.open_append(SEG1)
    f.append(encode_record(BATCH, end, _put(2, b"b", b"2")))
    f.close()
    async with aiokv.open(DIR, fs=fs) as db:  # the restarted process replays b
        await db.put(b"c", b"3", sync=True)  # acknowledged as durable against power loss
    image = fs.crash_clone(CrashMode.DROP_UNSYNCED)  # power cut: b was never synced
    async with aiokv.open(DIR, fs=image) as db:
        assert await db.get(b"c") == b"3"
