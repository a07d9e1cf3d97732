"""The Ribbon filter's own rules: its shape, its columns, its equations and its bad headers."""

from __future__ import annotations

import pytest
import xxhash

import aiokv.engine.lsm.ribbon as ribbon
from aiokv.engine.lsm.filter import FILTER_RIBBON, FilterFormatError, finish_sync
from aiokv.engine.lsm.ribbon import (
    HEADER,
    MAX_COLUMNS,
    RIBBON_VERSION,
    WIDTH,
    RibbonBuilder,
    decode_ribbon,
    shape,
)


def build(bits: int, keys: list[bytes]) -> tuple[bytes, RibbonBuilder]:
    b = RibbonBuilder(bits)
    b.add_keys(keys)
    return finish_sync(b), b


def with_header(data: bytes, **fields: int) -> bytes:
    names = ("kind", "version", "r", "reserved", "row_blocks", "partial")
    values = dict(zip(names, HEADER.unpack_from(data), strict=True))
    values.update(fields)
    return HEADER.pack(*values.values()) + data[HEADER.size :]


def columns(data: bytes) -> list[int]:
    """Each column as one int: bit i is row i."""
    _, _, r, _, row_blocks, partial = HEADER.unpack_from(data)
    at = HEADER.size
    sizes = [8 * row_blocks] * r + ([8 * partial] if partial else [])
    out = []
    for size in sizes:
        out.append(int.from_bytes(data[at : at + size], "little"))
        at += size
    return out


def test_header_holds_id_version_and_shape():
    data, _ = build(7, [b"k%d" % i for i in range(1000)])
    kind, version, r, reserved, row_blocks, partial = HEADER.unpack_from(data)
    assert (kind, version, reserved) == (FILTER_RIBBON, RIBBON_VERSION, 0)
    assert (row_blocks, r * row_blocks + partial) == shape(1000, 7)
    assert 0 < partial < row_blocks  # 7 bits a key over ~1.02 rows a key: a partial column
    assert len(data) == HEADER.size + 8 * (r * row_blocks + partial)


def test_an_empty_set_has_no_rows():
    data, _ = build(7, [])
    assert HEADER.unpack_from(data) == (FILTER_RIBBON, RIBBON_VERSION, 0, 0, 0, 0)
    assert len(data) == HEADER.size


def test_a_tiny_set_still_gets_two_row_blocks_and_full_columns():
    data, _ = build(7, [b"only"])
    _, _, r, _, row_blocks, partial = HEADER.unpack_from(data)
    assert row_blocks == 2  # 128 rows: one full window
    assert r * 64 * row_blocks + 64 * partial >= 6 * 128


@pytest.mark.parametrize("n", [1, 10, 1000, 100_000, 1_000_000])
@pytest.mark.parametrize("bits", [1, 7, 10, 32])
def test_the_shape_spends_the_bits_asked_for_on_big_sets(n, bits):
    row_blocks, words = shape(n, bits)
    assert 64 * row_blocks >= n + WIDTH - 1  # more rows than keys, and one window
    if n >= 100_000:
        assert bits <= words * 64 / n < bits * 1.01


def test_every_key_satisfies_its_equation_in_every_column():
    keys = [b"key%d" % i for i in range(3000)]
    data, _ = build(7, keys)
    row_blocks = HEADER.unpack_from(data)[4]
    starts = 64 * row_blocks - (WIDTH - 1)
    for key in keys:
        h = xxhash.xxh3_128_intdigest(key)
        u = h % starts
        for col in columns(data):
            assert ((col >> u) & (h | 1)).bit_count() % 2 == 0


def test_the_partial_column_is_zero_below_its_rows():
    data, _ = build(7, [b"key%d" % i for i in range(3000)])
    _, _, r, _, _, partial = HEADER.unpack_from(data)
    assert columns(data)[r].bit_length() <= 64 * partial


def test_a_key_that_breaks_one_equation_is_absent():
    data = bytearray(build(7, [b"alpha"])[0])
    # 128 rows give one start, 0, and every coefficient has its bit 0 set: flipping row 0 of
    # column 0 flips alpha's parity there.
    assert HEADER.unpack_from(data)[4] == 2
    data[HEADER.size] ^= 1
    assert not decode_ribbon(bytes(data)).may_contain(b"alpha")


def test_duplicate_keys_are_not_dependent_rows():
    keys = [b"key%d" % i for i in range(20_000)]
    data, b = build(7, keys + keys[::3] + keys[:50])
    assert b.grows == 0
    assert all(map(decode_ribbon(data).may_contain, keys))


def test_dependent_rows_grow_the_table_and_still_keep_every_key(monkeypatch):
    # 1000 keys squeezed into 128 rows are dependent; the builder grows the table MAX_GROWS
    # times (to 384 rows: still too few), then keeps the dependent rows: no false negative.
    keys = [b"key%d" % i for i in range(1000)]
    monkeypatch.setattr(ribbon, "shape", lambda n, bits: (2, 14))
    data, b = build(7, keys)
    assert b.grows == ribbon.MAX_GROWS
    assert HEADER.unpack_from(data)[4] == 2 + ribbon.MAX_GROWS
    assert all(map(decode_ribbon(data).may_contain, keys))


def test_bits_per_key_from_1_to_32_give_1_to_about_32_columns():
    keys = [b"key%d" % i for i in range(2000)]
    last = 0
    for bits in range(1, 33):
        data, _ = build(bits, keys)
        f = decode_ribbon(data)
        assert 1 <= f.columns <= MAX_COLUMNS
        assert f.columns >= last
        last = f.columns
        assert all(map(f.may_contain, keys[::7]))


def test_a_bloom_filter_is_not_a_ribbon_filter():
    data, _ = build(7, [b"a"])
    with pytest.raises(FilterFormatError, match="not ribbon"):
        decode_ribbon(with_header(data, kind=1))


def test_a_short_header_is_a_format_error():
    for size in range(HEADER.size):
        with pytest.raises(FilterFormatError, match="shorter"):
            decode_ribbon(bytes(size))


@pytest.mark.parametrize(
    "fields",
    [
        {"reserved": 1},
        {"row_blocks": 1},  # fewer rows than one 128-row window
        {"partial": 2},  # partial must stay below row_blocks (2 here)
        {"r": 0, "partial": 0},  # rows but no column
        {"r": 65},  # more columns than free rows can fill
        {"row_blocks": 0},  # empty, but with columns and bytes
    ],
)
def test_a_bad_shape_is_a_format_error(fields):
    data, _ = build(7, [b"a"])
    with pytest.raises(FilterFormatError):
        decode_ribbon(with_header(data, **fields))


def test_an_empty_filter_with_a_column_is_a_format_error():
    with pytest.raises(FilterFormatError):
        decode_ribbon(HEADER.pack(FILTER_RIBBON, RIBBON_VERSION, 1, 0, 0, 0))
