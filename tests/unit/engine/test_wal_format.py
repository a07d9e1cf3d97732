"""WAL segment framing and the sans-IO WalReader: whole, byte at a time, with garbage and damage."""

from __future__ import annotations

import struct

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from aiokv.engine.batch_format import encode_op, encode_payload
from aiokv.engine.wal_format import (
    END,
    NEED_DATA,
    RECORD_HEADER,
    RECORD_MARK,
    SEGMENT_HEADER,
    SEGMENT_MAGIC,
    WAL_VERSION,
    RecordType,
    WalReader,
    WalRecord,
    encode_put_record,
    encode_record,
    encode_segment_header,
)
from aiokv.errors import CorruptionError, UnsupportedFormatError

PATH = "/db/000001.log"
HEADER = encode_segment_header(1)
BATCH = int(RecordType.BATCH)


def _put(seq: int, key: bytes = b"k", value: bytes = b"v") -> bytes:
    return encode_payload(seq, 1, [encode_op(1, 0, key, value)])


def _segment(*payloads: bytes, synced_to: list[int] | None = None) -> tuple[bytes, list[int]]:
    """A segment of one record per payload; returns its bytes and the record offsets."""
    data = HEADER
    offsets = []
    for i, payload in enumerate(payloads):
        offsets.append(len(data))
        data += encode_record(BATCH, synced_to[i] if synced_to else 32, payload)
    return data, offsets


def _drain(reader: WalReader, out: list[WalRecord]) -> object:
    while True:
        rec = reader.next_record()
        if rec is NEED_DATA or rec is END:
            return rec
        assert isinstance(rec, WalRecord)
        out.append(rec)


def _read(data: bytes, number: int | None = 1) -> tuple[list[WalRecord], int | None]:
    reader = WalReader(PATH, number)
    reader.feed(data)
    reader.feed_eof()
    out: list[WalRecord] = []
    assert _drain(reader, out) is END
    return out, reader.torn_at


def _read_bytewise(data: bytes) -> tuple[list[WalRecord], int | None]:
    reader = WalReader(PATH, 1)
    out: list[WalRecord] = []
    for i in range(len(data)):
        reader.feed(data[i : i + 1])
        assert _drain(reader, out) is NEED_DATA
    reader.feed_eof()
    assert _drain(reader, out) is END
    return out, reader.torn_at


def _flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :]


def _header(version: int = WAL_VERSION, number: int = 1, magic: bytes = SEGMENT_MAGIC) -> bytes:
    head = SEGMENT_HEADER.pack(magic, version, 0, number, 0)[:24]
    return head + struct.pack("<Q", xxhash.xxh3_64_intdigest(head))


# -- encoding -------------------------------------------------------------------------------------


def test_segment_header_layout():
    assert SEGMENT_HEADER.size == 32
    assert SEGMENT_HEADER.unpack(encode_segment_header(7))[:4] == (b"aiokvWAL", 1, 0, 7)
    assert encode_segment_header(7) == _header(number=7)


def test_record_layout():
    rec = encode_record(BATCH, 32, b"payload")
    mark, checksum, rtype, synced_to, length = RECORD_HEADER.unpack_from(rec)
    assert (mark, rtype, synced_to, length) == (RECORD_MARK, BATCH, 32, 7)
    assert checksum == xxhash.xxh3_64_intdigest(rec[12:])
    assert rec[RECORD_HEADER.size :] == b"payload"


@given(
    synced_to=st.integers(0, (1 << 64) - 1),
    seq=st.integers(0, (1 << 64) - 1),
    cf=st.integers(0, (1 << 32) - 1),
    key=st.binary(max_size=30),
    value=st.binary(max_size=30),
)
def test_put_fast_path_matches_the_general_encoder(synced_to, seq, cf, key, value):
    slow = encode_record(BATCH, synced_to, encode_payload(seq, 1, [encode_op(1, cf, key, value)]))
    assert encode_put_record(synced_to, seq, cf, key, value) == slow


# -- clean segments -------------------------------------------------------------------------------


def test_whole_segment_reads_back_every_record():
    data, offsets = _segment(_put(1), _put(2, b"x", b""), _put(3, b"", b"y" * 1000))
    records, torn_at = _read(data)
    assert torn_at is None
    assert [r.offset for r in records] == offsets
    assert [r.payload for r in records] == [_put(1), _put(2, b"x", b""), _put(3, b"", b"y" * 1000)]
    assert all(r.type == BATCH and r.synced_to == 32 for r in records)


def test_segment_fed_one_byte_at_a_time_reads_the_same_records():
    data, _ = _segment(_put(1), _put(2), _put(3, b"key", b"value" * 10))
    assert _read_bytewise(data) == _read(data)


def test_a_record_is_returned_as_soon_as_its_last_byte_arrives():
    data, _ = _segment(_put(1))
    reader = WalReader(PATH, 1)
    reader.feed(data[:-1])
    assert reader.next_record() is NEED_DATA
    reader.feed(data[-1:])
    rec = reader.next_record()
    assert isinstance(rec, WalRecord) and rec.payload == _put(1)
    assert reader.next_record() is NEED_DATA  # more may come until feed_eof


def test_header_only_segment_ends_cleanly():
    assert _read(HEADER) == ([], None)


def test_valid_end_is_the_end_of_the_last_good_record():
    data, _ = _segment(_put(1), _put(2))
    reader = WalReader(PATH, 1)
    reader.feed(data + b"junk")
    reader.feed_eof()
    assert _drain(reader, []) is END
    assert (reader.valid_end, reader.torn_at) == (len(data), len(data))


def test_next_record_after_end_keeps_returning_end():
    reader = WalReader(PATH, 1)
    reader.feed(HEADER)
    reader.feed_eof()
    assert reader.next_record() is END
    assert reader.next_record() is END


def test_feed_after_feed_eof_raises():
    reader = WalReader(PATH, 1)
    reader.feed(HEADER)
    reader.feed_eof()
    with pytest.raises(RuntimeError):
        reader.feed(b"x")


def test_number_none_accepts_any_segment_number():
    data = encode_segment_header(99) + encode_record(BATCH, 32, _put(1))
    records, torn_at = _read(data, number=None)
    assert (len(records), torn_at) == (1, None)


# -- torn tails -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"\x00" * 100, RECORD_MARK, RECORD_MARK + b"\x01" * 10, b"\xff" * 30],
    ids=["zero", "zeros", "mark", "partial-header", "ones"],
)
def test_trailing_garbage_is_a_torn_tail_at_its_start(garbage):
    data, _ = _segment(_put(1), _put(2))
    for read in (_read, _read_bytewise):
        records, torn_at = read(data + garbage)
        assert torn_at == len(data)
        assert len(records) == 2


def test_a_cut_last_record_is_a_torn_tail_at_its_start():
    data, offsets = _segment(_put(1), _put(2, b"key", b"value"))
    for size in range(offsets[1] + 1, len(data)):
        records, torn_at = _read(data[:size])
        assert (len(records), torn_at) == (1, offsets[1])


def test_bad_checksum_in_the_last_record_is_a_torn_tail():
    data, offsets = _segment(_put(1), _put(2))
    records, torn_at = _read(_flip(data, len(data) - 1))
    assert (len(records), torn_at) == (1, offsets[1])


def test_bad_length_at_end_is_ignored():
    data, offsets = _segment(_put(1), _put(2))
    bad = bytearray(data)
    struct.pack_into("<I", bad, offsets[1] + 21, 1 << 20)  # length runs far past the end
    records, torn_at = _read(bytes(bad))
    assert (len(records), torn_at) == (1, offsets[1])


@pytest.mark.parametrize("size", range(SEGMENT_HEADER.size))
def test_short_header_is_a_torn_header(size):
    assert _read(HEADER[:size]) == ([], 0)


def test_exactly_32_bad_header_bytes_are_a_torn_header():
    assert _read(b"\x00" * 32) == ([], 0)
    assert _read(_flip(HEADER, 30)) == ([], 0)


def test_bad_record_not_vouched_for_is_a_torn_tail_at_its_offset():
    # Record 1 is damaged; record 2 was written before record 1 was synced (synced_to = 32).
    data, offsets = _segment(_put(1), _put(2), synced_to=[32, 32])
    records, torn_at = _read(_flip(data, offsets[0] + 30))
    assert (records, torn_at) == ([], offsets[0])


def test_a_later_synced_to_equal_to_the_bad_offset_does_not_vouch_for_it():
    data, offsets = _segment(_put(1), _put(2), _put(3), synced_to=[32, 32, 0])
    data = data[: offsets[2]] + encode_record(BATCH, offsets[1], _put(3))
    records, torn_at = _read(_flip(data, offsets[1] + 30))
    assert ([r.offset for r in records], torn_at) == ([offsets[0]], offsets[1])


# -- corruption -----------------------------------------------------------------------------------


def test_bad_record_vouched_for_by_a_later_record_is_corruption_naming_file_and_offset():
    data, offsets = _segment(_put(1), _put(2), synced_to=[32, 0])
    data = data[: offsets[1]] + encode_record(BATCH, offsets[1], _put(2))  # 1 was synced
    with pytest.raises(CorruptionError) as info:
        _read(_flip(data, offsets[0] + 30))
    assert (info.value.path, info.value.offset) == (PATH, offsets[0])
    assert PATH in str(info.value) and f"offset {offsets[0]}" in str(info.value)


def test_synced_to_one_byte_into_the_bad_record_is_corruption():
    data, offsets = _segment(_put(1), _put(2), synced_to=[32, 33])
    with pytest.raises(CorruptionError) as info:
        _read(_flip(data, offsets[0] + 30))
    assert info.value.offset == offsets[0]


def test_a_vouched_for_record_with_its_mark_gone_is_corruption():
    data, offsets = _segment(_put(1), _put(2), synced_to=[32, 0])
    data = data[: offsets[1]] + encode_record(BATCH, offsets[1], _put(2))
    with pytest.raises(CorruptionError) as info:
        _read(_flip(data, offsets[0]))
    assert info.value.offset == offsets[0]


def test_corruption_is_only_judged_at_eof():
    data, offsets = _segment(_put(1), _put(2), synced_to=[32, 0])
    data = _flip(data[: offsets[1]] + encode_record(BATCH, offsets[1], _put(2)), offsets[0] + 30)
    reader = WalReader(PATH, 1)
    reader.feed(data)
    assert reader.next_record() is NEED_DATA  # what follows decides, so it waits
    reader.feed_eof()
    with pytest.raises(CorruptionError):
        reader.next_record()


def test_bad_header_followed_by_records_is_corruption_at_offset_0():
    data, _ = _segment(_put(1))
    for at in (0, 8, 16, 24):
        with pytest.raises(CorruptionError) as info:
            _read(_flip(data, at))
        assert info.value.offset == 0


def test_wrong_magic_with_a_good_checksum_is_corruption():
    data = _header(magic=b"leveldb!") + encode_record(BATCH, 32, _put(1))
    with pytest.raises(CorruptionError):
        _read(data)


def test_wrong_segment_number_is_corruption_at_offset_0():
    data = encode_segment_header(2) + encode_record(BATCH, 32, _put(1))
    with pytest.raises(CorruptionError, match="header names segment 2") as info:
        _read(data, number=1)
    assert (info.value.path, info.value.offset) == (PATH, 0)


def test_unknown_record_type_with_a_good_checksum_is_corruption():
    data = HEADER + encode_record(BATCH, 32, _put(1)) + encode_record(7, 32, b"")
    with pytest.raises(CorruptionError) as info:
        _read(data)
    assert info.value.offset == len(HEADER) + len(encode_record(BATCH, 32, _put(1)))


def test_decreasing_synced_to_is_corruption():
    data, offsets = _segment(_put(1), _put(2), synced_to=[40, 39])
    with pytest.raises(CorruptionError) as info:
        _read(data)
    assert info.value.offset == offsets[1]


# -- versions -------------------------------------------------------------------------------------


@pytest.mark.parametrize("tail", [b"", b"more bytes"])
def test_newer_version_raises_unsupported_format_error(tail):
    with pytest.raises(UnsupportedFormatError, match=f"{PATH}.*version 2"):
        _read(_header(version=WAL_VERSION + 1) + tail)


def test_newer_version_fed_one_byte_at_a_time_raises_unsupported_format_error():
    data = _header(version=WAL_VERSION + 1)
    reader = WalReader(PATH, 1)
    reader.feed(data[:-1])
    assert reader.next_record() is NEED_DATA
    reader.feed(data[-1:])
    with pytest.raises(UnsupportedFormatError):
        reader.next_record()


# -- known issues ---------------------------------------------------------------------------------


def test_record_inside_a_torn_value_does_not_vouch_for_it():
    fake = encode_record(BATCH, (1 << 64) - 1, b"")  # a value that looks like a WAL record
    data, offsets = _segment(_put(1), _put(2, b"k", fake + b"tail of the value"))
    records, torn_at = _read(data[:-5])  # power cut: the last record is torn inside its value
    assert (len(records), torn_at) == (1, offsets[1])
