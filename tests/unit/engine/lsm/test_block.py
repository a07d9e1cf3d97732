"""Data and index blocks: encode/decode round trips, flags, checksums and malformed bytes."""

from __future__ import annotations

import random
import struct

import pytest

from aiokv.engine.lsm.block import (
    DATA_TRAILER,
    FIXED_KEYS,
    FIXED_VALUES,
    HAS_EXPIRIES,
    PLAIN,
    BlockFormatError,
    checksum_ok,
    decode_block,
    decode_index,
    encode_block,
    encode_entries,
    encode_index,
    seal,
)

DELETE, PUT, MERGE, PUT_EXPIRING = 0, 1, 2, 4


def _flags(raw: bytes) -> int:
    return DATA_TRAILER.unpack_from(raw, len(raw) - 13)[1]


def _random_columns(rng: random.Random, n: int):
    keys = sorted({rng.randbytes(rng.randint(1, 24)) for _ in range(n)})
    kinds = bytes(rng.choice([DELETE, PUT, MERGE, PUT_EXPIRING]) for _ in keys)
    values = [b"" if k == DELETE else rng.randbytes(rng.randint(0, 300)) for k in kinds]
    expiries = [rng.randint(1, 1 << 63) if k == PUT_EXPIRING else 0 for k in kinds]
    seqs = [rng.randint(1, (1 << 64) - 1) for _ in keys]
    return keys, seqs, kinds, expiries, values


def test_random_blocks_round_trip():
    rng = random.Random(1)
    for n in (1, 2, 7, 100):
        keys, seqs, kinds, expiries, values = _random_columns(rng, n)
        b = decode_block(encode_entries(keys, seqs, kinds, expiries, values))
        assert list(b.keys) == keys
        assert list(b.seqs) == seqs
        assert bytes(b.kinds) == kinds
        assert b.values() == values
        assert [b.value(i) for i in range(len(keys))] == values
        want = [(k, v, s, e) for k, v, s, e in zip(kinds, values, seqs, expiries, strict=True)]
        assert [b.entry(i) for i in range(len(keys))] == want


def test_fixed_length_keys_and_values_decode_through_the_struct_shortcut():
    keys = [b"%04d" % i for i in range(50)]
    values = [b"v" * 10] * 50
    raw = encode_entries(keys, range(50, 0, -1), bytes([PUT]) * 50, None, values)
    assert _flags(raw) == PLAIN | FIXED_KEYS | FIXED_VALUES
    b = decode_block(raw)
    assert list(b.keys) == keys
    assert b.values() == values
    assert b.values(3, 7) == values[3:7]
    assert b.plain


def test_values_of_a_range_match_the_slice_of_all_values():
    keys = [b"a", b"b", b"c", b"d"]
    values = [b"1", b"22", b"", b"4444"]
    b = decode_block(encode_entries(keys, [4, 3, 2, 1], bytes([PUT]) * 4, None, values))
    for start in range(5):
        for stop in range(6):
            assert b.values(start, stop) == values[start:stop]
    assert b.values(2) == values[2:]


def test_flags_say_exactly_what_holds():
    put2 = bytes([PUT, PUT])
    assert _flags(encode_entries([b"a", b"b"], [1, 1], put2, None, [b"x", b"yy"])) == (
        PLAIN | FIXED_KEYS
    )
    assert _flags(encode_entries([b"a", b"bb"], [1, 1], put2, None, [b"x", b"y"])) == (
        PLAIN | FIXED_VALUES
    )
    assert _flags(encode_entries([b"a", b"a"], [2, 1], put2, None, [b"x", b"yy"])) == FIXED_KEYS
    mixed = bytes([PUT, MERGE])
    assert _flags(encode_entries([b"a", b"b"], [1, 1], mixed, None, [b"x", b"yy"])) == FIXED_KEYS
    exp = bytes([PUT, PUT_EXPIRING])
    raw = encode_entries([b"a", b"bc"], [1, 1], exp, [0, 9], [b"x", b"yy"])
    assert _flags(raw) == HAS_EXPIRIES
    assert list(decode_block(raw).expiries or []) == [0, 9]


def test_a_block_without_expiring_entries_has_no_expiries_array():
    raw = encode_entries([b"a"], [1], bytes([PUT]), [0], [b"x"])
    assert decode_block(raw).expiries is None
    assert decode_block(raw).entry(0) == (PUT, b"x", 1, 0)


def test_a_value_larger_than_any_block_target_round_trips():
    big = bytes(range(256)) * 5000
    b = decode_block(encode_entries([b"k" * 70000], [7], bytes([PUT]), None, [big]))
    assert list(b.keys) == [b"k" * 70000]
    assert b.value(0) == big


def test_empty_values_round_trip():
    b = decode_block(encode_entries([b"a", b"b"], [1, 1], bytes([PUT, DELETE]), None, [b"", b""]))
    assert b.values() == [b"", b""]
    assert b.entry(1) == (DELETE, b"", 1, 0)


def test_nbytes_counts_the_raw_block_and_the_keys():
    small = decode_block(encode_entries([b"a"], [1], bytes([PUT]), None, [b"x"]))
    keys = [b"%08d" % i for i in range(100)]
    big = decode_block(encode_entries(keys, [1] * 100, bytes([PUT]) * 100, None, [b"v"] * 100))
    assert small.nbytes >= small.raw_size
    assert big.nbytes >= big.raw_size + sum(map(len, keys)) + 100 * 33
    assert len(big) == 100


def test_checksum_detects_every_flipped_bit_cut_and_appended_byte():
    raw = encode_entries([b"ab", b"cd"], [2, 1], bytes([PUT, PUT_EXPIRING]), [0, 5], [b"x", b"y"])
    assert checksum_ok(raw)
    for at in range(len(raw)):
        for bit in range(8):
            bad = bytearray(raw)
            bad[at] ^= 1 << bit
            assert not checksum_ok(bytes(bad)), (at, bit)
    for size in range(len(raw)):
        assert not checksum_ok(raw[:size])
    assert not checksum_ok(raw + b"\x00")


def _resealed(body: bytes) -> bytes:
    return seal(body)


def test_unknown_flags_are_a_format_error():
    raw = encode_entries([b"a"], [1], bytes([PUT]), None, [b"x"])
    body = bytearray(raw[:-8])
    body[-1] |= 0x80
    with pytest.raises(BlockFormatError, match="flags"):
        decode_block(_resealed(bytes(body)))


def test_a_count_too_large_for_the_block_is_a_format_error():
    raw = encode_entries([b"a"], [1], bytes([PUT]), None, [b"x"])
    body = bytearray(raw[:-8])
    struct.pack_into("<I", body, len(body) - 5, 1000)
    with pytest.raises(BlockFormatError, match="do not fit"):
        decode_block(_resealed(bytes(body)))


def test_offsets_that_do_not_span_the_block_are_a_format_error():
    raw = encode_entries([b"a", b"bb"], [1, 1], bytes([PUT, PUT]), None, [b"x", b"y"])
    body = bytearray(raw[:-8])
    at = 3 + 2  # offsets start after the keys and values
    struct.pack_into("<I", body, at, 1)  # offsets[0] must be 0
    with pytest.raises(BlockFormatError, match="offsets"):
        decode_block(_resealed(bytes(body)))


def test_a_fixed_keys_flag_the_offsets_contradict_is_a_format_error():
    raw = encode_entries([b"a", b"bb"], [1, 1], bytes([PUT, PUT]), None, [b"x", b"y"])
    body = bytearray(raw[:-8])
    body[-1] |= FIXED_KEYS
    with pytest.raises(BlockFormatError, match="FIXED_KEYS"):
        decode_block(_resealed(bytes(body)))
    raw2 = encode_entries([b"a", b"b"], [1, 1], bytes([PUT, PUT]), None, [b"x", b"yy"])
    body = bytearray(raw2[:-8])
    body[-1] |= FIXED_VALUES
    with pytest.raises(BlockFormatError, match="FIXED_VALUES"):
        decode_block(_resealed(bytes(body)))


def test_blocks_shorter_than_their_trailer_are_a_format_error():
    for size in range(17):
        with pytest.raises(BlockFormatError):
            decode_block(bytes(size))


def test_encode_entries_gives_absent_expiries_as_zero():
    raw = encode_entries([b"a"], [1], bytes([PUT_EXPIRING]), None, [b"x"])
    assert decode_block(raw).entry(0) == (PUT_EXPIRING, b"x", 1, 0)


def test_encode_block_refuses_put_expiring_entries_without_expiries():
    with pytest.raises(ValueError, match="expiries"):
        encode_block(b"a", b"x", [1], [1], bytes(8), bytes([PUT_EXPIRING]), None, True)


# -- index -----------------------------------------------------------------------------------


def test_index_round_trips_including_repeated_and_empty():
    keys = [b"a", b"k", b"k", b"zz" * 300]
    offsets = [0, 100, 4200, 9000, 12000]
    assert decode_index(encode_index(keys, offsets)) == (tuple(keys), offsets)
    assert decode_index(encode_index([], [0])) == ((), [0])


def test_index_needs_one_more_offset_than_keys():
    with pytest.raises(ValueError):
        encode_index([b"a"], [0])


def test_index_with_offsets_out_of_order_is_a_format_error():
    raw = encode_index([b"a", b"b"], [0, 50, 40])
    with pytest.raises(BlockFormatError, match="increase"):
        decode_index(raw)


def test_index_too_short_or_overfull_is_a_format_error():
    raw = encode_index([b"a"], [0, 10])
    for size in range(24):
        with pytest.raises(BlockFormatError):
            decode_index(raw[:size])
    body = bytearray(raw[:-8])
    struct.pack_into("<I", body, len(body) - 4, 99)
    with pytest.raises(BlockFormatError, match="do not fit"):
        decode_index(seal(bytes(body)))
