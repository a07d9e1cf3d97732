"""Page codecs of the B+Tree file: meta pages, chains (catalog, free list, overflow) and nodes."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiokv.engine.btree.node_format import (
    CAPACITY,
    KEY_SPILLED,
    LEAF_BASE,
    MAX_CELL,
    MAX_KEY_INLINE,
    Branch,
    Leaf,
    Overflow,
    decode_node,
    encode_node,
    leaf_cell_size,
    value_spills,
)
from aiokv.engine.btree.page_format import (
    DATA_PER_PAGE,
    PAGE_SIZE,
    FamilyRecord,
    Meta,
    PageType,
    catalog_pages_needed,
    decode_catalog,
    decode_freelist,
    decode_meta,
    encode_catalog,
    encode_chain,
    encode_freelist,
    encode_meta,
    freelist_pages_needed,
    read_chain,
    seal_page,
)
from aiokv.errors import CorruptionError, UnsupportedFormatError

META = Meta(
    txn_id=7, page_count=100, catalog_root=5, freelist_head=9, checkpoint_seq=2**40, max_family_id=3
)


def _reseal(page: bytes, at: int, patch: bytes) -> bytes:
    """`page` with `patch` written at `at` and a checksum that checks again."""
    raw = page[:at] + patch + page[at + len(patch) :]
    _ck, ptype, flags, count, no = struct.unpack_from("<QBBHI", raw)
    return seal_page(ptype, flags, count, no, raw[16:])


# -- meta ----------------------------------------------------------------------------------------


def test_meta_round_trips_and_lies_at_txn_parity():
    page = encode_meta(META)
    assert len(page) == PAGE_SIZE
    assert decode_meta(page) == META
    assert struct.unpack_from("<I", page, 12)[0] == 1


@pytest.mark.parametrize("size", [0, 16, 4095])
def test_a_torn_meta_page_is_invalid(size):
    assert decode_meta(encode_meta(META)[:size]) is None


def test_a_meta_page_with_trailing_garbage_is_invalid():
    assert decode_meta(encode_meta(META) + b"\x00") is None


def test_a_zeroed_meta_page_is_invalid():
    assert decode_meta(bytes(PAGE_SIZE)) is None


def test_a_meta_page_with_a_wrong_magic_or_place_is_invalid():
    page = encode_meta(META)
    assert decode_meta(_reseal(page, 16, b"notaiokv")) is None
    assert decode_meta(_reseal(page, 12, b"\x00\x00\x00\x00")) is None


def test_a_node_page_is_not_a_meta_page():
    assert decode_meta(encode_node(Leaf([b"k"], [(1, b"v", 0)], 0), 1)) is None


def test_a_meta_page_of_another_page_size_is_unsupported():
    with pytest.raises(UnsupportedFormatError, match="8192"):
        decode_meta(_reseal(encode_meta(META), 28, struct.pack("<I", 8192)))


# -- chains --------------------------------------------------------------------------------------


def _records(n: int, options: int = 10) -> list[FamilyRecord]:
    return [
        FamilyRecord(i, f"family-{i}-é", bytes([i % 256]) * options, i + 2, i * 3) for i in range(n)
    ]


def test_a_catalog_spanning_pages_round_trips():
    records = _records(40, options=300)
    n = catalog_pages_needed(records)
    assert n > 2
    pages = [50 + 3 * i for i in range(n)][::-1]  # any page numbers, in any order
    file = dict(zip(pages, encode_catalog(records, pages), strict=True))
    assert decode_catalog(file.__getitem__, pages[0]) == (records, pages)


def test_an_empty_catalog_takes_no_page():
    assert catalog_pages_needed([]) == 0
    assert decode_catalog({}.__getitem__, 0) == ([], [])


def test_encoding_a_chain_into_the_wrong_number_of_pages_is_refused():
    with pytest.raises(ValueError, match="need 1 pages"):
        encode_catalog(_records(1), [3, 4])


def test_a_free_list_spanning_pages_round_trips():
    free = list(range(2, 3000, 2))
    n = freelist_pages_needed(free)
    assert n == 2
    file = dict(zip([9, 4], encode_freelist(free, [9, 4]), strict=True))
    assert decode_freelist(file.__getitem__, 9) == (free, [9, 4])
    assert freelist_pages_needed([]) == 0 and decode_freelist({}.__getitem__, 0) == ([], [])


def test_a_free_list_out_of_order_is_corruption():
    data = struct.pack("<3I", 2, 9, 5)
    file = dict(zip([4], encode_chain(PageType.FREELIST, data, [4]), strict=True))
    with pytest.raises(CorruptionError, match="ascending"):
        decode_freelist(file.__getitem__, 4, "f")


def test_a_catalog_with_bytes_after_its_records_is_corruption():
    data = encode_catalog(_records(1), [3])[0]
    (count,) = struct.unpack_from("<H", data, 10)
    raw = data[20 : 20 + count] + b"x"
    file = {3: encode_chain(PageType.CATALOG, raw, [3])[0]}
    with pytest.raises(CorruptionError, match="catalog") as info:
        decode_catalog(file.__getitem__, 3, "f")
    assert info.value.offset == 3 * PAGE_SIZE


def test_a_chain_that_loops_is_corruption():
    pages = encode_chain(PageType.OVERFLOW, bytes(DATA_PER_PAGE * 2), [5, 6])
    looped = _reseal(pages[1], 16, struct.pack("<I", 5))
    looped = _reseal(looped, 10, struct.pack("<H", DATA_PER_PAGE))
    file = {5: pages[0], 6: looped}
    with pytest.raises(CorruptionError, match="loops"):
        read_chain(file.__getitem__, 5, DATA_PER_PAGE * 2, PageType.OVERFLOW)


def test_a_chain_page_of_another_type_is_corruption():
    file = {5: encode_chain(PageType.CATALOG, b"abc", [5])[0]}
    with pytest.raises(CorruptionError, match="type"):
        read_chain(file.__getitem__, 5, 3, PageType.OVERFLOW)


def test_a_chain_shorter_than_its_ref_is_corruption():
    file = {5: encode_chain(PageType.OVERFLOW, b"abc", [5])[0]}
    with pytest.raises(CorruptionError, match="holds 3 bytes"):
        read_chain(file.__getitem__, 5, 4, PageType.OVERFLOW)


def test_a_chain_with_a_short_middle_page_is_corruption():
    pages = encode_chain(PageType.OVERFLOW, bytes(DATA_PER_PAGE + 10), [5, 6])
    short = _reseal(pages[0], 10, struct.pack("<H", 100))
    with pytest.raises(CorruptionError, match="holds 100 bytes"):
        read_chain({5: short, 6: pages[1]}.__getitem__, 5, DATA_PER_PAGE + 10, PageType.OVERFLOW)


# -- nodes ---------------------------------------------------------------------------------------

_kinds = st.sampled_from([1, 2, 4])
_cell = st.tuples(_kinds, st.binary(max_size=60), st.sampled_from([0, 0, 1, 2**63]))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.binary(min_size=1, max_size=40), _cell, max_size=60))
def test_a_leaf_round_trips(d):
    keys = sorted(d)
    cells = [d[k] for k in keys]
    size = LEAF_BASE + sum(map(leaf_cell_size, keys, cells))
    if size > PAGE_SIZE:
        return
    back = decode_node(3, encode_node(Leaf(keys, cells, 0), 3), {}.__getitem__)
    assert isinstance(back, Leaf)
    assert (back.keys, back.cells, back.size) == (keys, cells, size)


def test_a_leaf_with_spilled_keys_and_values_round_trips():
    keys = [b"a", b"k" * (MAX_KEY_INLINE + 1), b"z" * 2000]
    cells = [(1, Overflow(20, 5000), 7), (4, b"v", 9), (2, Overflow(21, 3000), 0)]
    file = dict(zip([30], encode_chain(PageType.OVERFLOW, keys[1], [30]), strict=True))
    file.update(zip([31], encode_chain(PageType.OVERFLOW, keys[2], [31]), strict=True))
    leaf = Leaf(keys, cells, 0, {keys[1]: 30, keys[2]: 31}, True)  # type: ignore[arg-type]
    page = encode_node(leaf, 3)
    assert page[9] == 1  # FLAG_SPILLS
    back = decode_node(3, page, file.__getitem__)
    assert isinstance(back, Leaf)
    assert (back.keys, back.cells, back.kref, back.big) == (keys, cells, leaf.kref, True)


def test_encoding_a_spilled_key_without_its_chain_is_refused():
    with pytest.raises(ValueError, match="key refs"):
        encode_node(Leaf([b"k" * 600], [(1, b"", 0)], 0), 3)


def test_a_branch_round_trips_and_spills_long_keys():
    keys = [b"b", b"m" * 700, b"x"]
    file = {40: encode_chain(PageType.OVERFLOW, keys[1], [40])[0]}
    page = encode_node(Branch(keys, [5, 6, 7, 8], 0, {keys[1]: 40}), 4)
    back = decode_node(4, page, file.__getitem__)
    assert isinstance(back, Branch)
    assert (back.keys, back.children, back.kref) == (keys, [5, 6, 7, 8], {keys[1]: 40})
    assert page[28 + 4 + 1] == KEY_SPILLED


def test_encoding_a_branch_with_a_wrong_number_of_children_is_refused():
    with pytest.raises(ValueError, match="children"):
        encode_node(Branch([b"k"], [1], 0), 3)


def test_value_spills_exactly_when_the_cell_would_pass_max_cell():
    fits = MAX_CELL - 5 - 1 - 8
    assert not value_spills(b"k", bytes(fits), 1)
    assert value_spills(b"k", bytes(fits + 1), 1)
    assert 4 * MAX_CELL <= CAPACITY


@pytest.mark.parametrize("size", [0, 100, PAGE_SIZE - 1, PAGE_SIZE + 1])
def test_a_node_page_of_the_wrong_size_is_corruption(size):
    page = encode_node(Leaf([b"k"], [(1, b"v", 0)], 0), 3)
    page = (page + bytes(2))[:size]
    with pytest.raises(CorruptionError) as info:
        decode_node(3, page, {}.__getitem__, "f")
    assert (info.value.path, info.value.offset) == ("f", 3 * PAGE_SIZE)


def test_every_flipped_byte_of_a_leaf_is_corruption():
    page = encode_node(Leaf([b"a", b"b"], [(1, b"x", 0), (4, b"y", 5)], 0), 3)
    for at in range(PAGE_SIZE):
        bad = page[:at] + bytes([page[at] ^ 1]) + page[at + 1 :]
        with pytest.raises(CorruptionError):
            decode_node(3, bad, {}.__getitem__)


def test_offsets_out_of_order_under_a_good_checksum_are_corruption():
    page = encode_node(Leaf([b"a", b"b"], [(1, b"x", 0), (1, b"y", 0)], 0), 3)
    # offsets start at 16 + 2 cell bytes; swap the ends of key 0 and value 0
    bad = _reseal(page, 20, struct.pack("<H", 40))
    with pytest.raises(CorruptionError, match="offsets"):
        decode_node(3, bad, {}.__getitem__)


def test_an_offset_past_the_page_under_a_good_checksum_is_corruption():
    page = encode_node(Leaf([b"a"], [(1, b"x", 0)], 0), 3)
    bad = _reseal(page, 17 + 4, struct.pack("<H", PAGE_SIZE + 1))
    with pytest.raises(CorruptionError, match="offsets"):
        decode_node(3, bad, {}.__getitem__)


@pytest.mark.parametrize("cell_byte", [0, 3, 0x21, 0x0F])
def test_an_unknown_cell_kind_under_a_good_checksum_is_corruption(cell_byte):
    page = encode_node(Leaf([b"a"], [(1, b"x", 0)], 0), 3)
    with pytest.raises(CorruptionError, match="cell byte"):
        decode_node(3, _reseal(page, 16, bytes([cell_byte])), {}.__getitem__)


def test_a_spilled_cell_on_a_page_without_the_spill_flag_is_corruption():
    leaf = Leaf([b"a"], [(1, Overflow(9, 2000), 0)], 0, None, True)  # type: ignore[list-item]
    page = encode_node(leaf, 3)
    with pytest.raises(CorruptionError, match="flag"):
        decode_node(3, _reseal(page, 9, b"\x00"), {}.__getitem__)


def test_a_huge_count_under_a_good_checksum_is_corruption():
    page = encode_node(Leaf([b"a"], [(1, b"x", 0)], 0), 3)
    with pytest.raises(CorruptionError, match="count"):
        decode_node(3, _reseal(page, 10, struct.pack("<H", 60000)), {}.__getitem__)


def test_a_leaf_that_does_not_fit_is_refused():
    keys = [bytes([i]) * 300 for i in range(1, 20)]
    with pytest.raises(ValueError, match="does not fit"):
        encode_node(Leaf(keys, [(1, b"v" * 300, 0)] * len(keys), 0), 3)
