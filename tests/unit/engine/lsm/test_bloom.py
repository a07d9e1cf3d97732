"""The blocked Bloom filter's own rules: its header, its sizing, its probes and its bad headers."""

from __future__ import annotations

import pytest
import xxhash

from aiokv.engine.lsm.bloom import (
    BLOCK_BYTES,
    BLOOM_VERSION,
    HEADER,
    BloomBuilder,
    decode_bloom,
    probe_table,
    probes_for,
)
from aiokv.engine.lsm.filter import FILTER_BLOOM, FilterFormatError, finish_sync


def build(bits: int, keys: list[bytes]) -> bytes:
    b = BloomBuilder(bits)
    b.add_keys(keys)
    return finish_sync(b)


def with_header(data: bytes, **fields: int) -> bytes:
    names = ("kind", "version", "probes_a", "probes_b", "blocks")
    values = dict(zip(names, HEADER.unpack_from(data), strict=True))
    values.update(fields)
    return HEADER.pack(*values.values()) + data[HEADER.size :]


def test_header_holds_id_version_probes_and_block_count():
    data = build(10, [b"k%d" % i for i in range(1000)])
    kind, version, pa, pb, blocks = HEADER.unpack_from(data)
    assert (kind, version, (pa, pb)) == (FILTER_BLOOM, BLOOM_VERSION, probes_for(10))
    assert blocks == -(-1000 * 10 // 512)
    assert len(data) == HEADER.size + BLOCK_BYTES * blocks


def test_an_empty_set_has_no_blocks():
    data = build(10, [])
    assert HEADER.unpack_from(data)[4] == 0
    assert len(data) == HEADER.size


@pytest.mark.parametrize("bits", range(1, 33))
def test_probes_fit_the_table_and_grow_with_bits_per_key(bits):
    pa, pb = probes_for(bits)
    assert 1 <= pa <= 7
    assert 0 <= pb <= pa
    if bits > 1:
        assert sum(probes_for(bits - 1)) <= pa + pb


def test_a_probe_table_entry_sets_the_documented_bits():
    for v in (0, 1, 0x3FFF, 12345):
        g = xxhash.xxh3_64_intdigest(v.to_bytes(2, "little"))
        for p in range(8):
            assert probe_table(p)[v] == sum({1 << ((g >> 9 * j) & 511) for j in range(p)})


def test_a_key_sets_its_mask_in_the_documented_block():
    b = build(10, [b"alpha"])  # one block: every key lands in it
    h = xxhash.xxh3_64_intdigest(b"alpha")
    pa, pb = probes_for(10)
    mask = probe_table(pa)[h & 0x3FFF] | probe_table(pb)[(h >> 14) & 0x3FFF]
    assert int.from_bytes(b[HEADER.size :], "little") == mask


def test_a_key_is_absent_when_one_bit_of_its_mask_is_clear():
    data = bytearray(build(10, [b"alpha"]))
    h = xxhash.xxh3_64_intdigest(b"alpha")
    bit = (probe_table(probes_for(10)[0])[h & 0x3FFF]).bit_length() - 1
    data[HEADER.size + bit // 8] ^= 1 << bit % 8
    assert not decode_bloom(bytes(data)).may_contain(b"alpha")


def test_zero_blocks_with_bytes_after_is_a_format_error():
    with pytest.raises(FilterFormatError):
        decode_bloom(with_header(build(10, [b"a"]), blocks=0))


@pytest.mark.parametrize(("pa", "pb"), [(0, 0), (8, 0), (2, 3), (1, 9)])
def test_bad_probe_counts_are_a_format_error(pa, pb):
    with pytest.raises(FilterFormatError, match="probe"):
        decode_bloom(with_header(build(10, [b"a"]), probes_a=pa, probes_b=pb))


@pytest.mark.parametrize("blocks", [2, 1 << 20, (1 << 32) - 1])
def test_a_block_count_that_disagrees_with_the_size_is_a_format_error(blocks):
    with pytest.raises(FilterFormatError):
        decode_bloom(with_header(build(10, [b"a"]), blocks=blocks))


def test_a_ribbon_filter_is_not_a_bloom_filter():
    with pytest.raises(FilterFormatError, match="not bloom"):
        decode_bloom(with_header(build(10, [b"a"]), kind=2))


def test_a_short_header_is_a_format_error():
    for size in range(HEADER.size):
        with pytest.raises(FilterFormatError, match="shorter"):
            decode_bloom(bytes(size))


@pytest.mark.parametrize(("pa", "pb"), [(1, 0), (7, 7), (4, 2)])
def test_every_valid_probe_count_decodes(pa, pb):
    f = decode_bloom(with_header(build(10, [b"a"]), probes_a=pa, probes_b=pb))
    assert f.probes == pa + pb


def test_a_table_with_fewer_probes_sets_a_subset_of_the_bits():
    # PROBES[p][v] uses the first p positions of the same hash: the tables nest.
    for p in range(1, 8):
        assert all(a & b == a for a, b in zip(probe_table(p - 1), probe_table(p), strict=True))
