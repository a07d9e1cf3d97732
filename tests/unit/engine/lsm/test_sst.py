"""SstWriter and Table: round trips, lookups at snapshots, filters, range tombstones, damage."""

from __future__ import annotations

import mmap
import random
import struct
from collections.abc import Generator
from itertools import pairwise

import pytest
import xxhash

from aiokv.engine.lsm.block import Block
from aiokv.engine.lsm.sst_props import FOOTER, FOOTER_CHECKED
from aiokv.engine.lsm.sst_reader import Table
from aiokv.engine.lsm.sst_writer import MAX_KEY_SIZE, SstWriter, finish_sync
from aiokv.errors import CorruptionError, UnsupportedFormatError

DELETE, PUT, MERGE, PUT_EXPIRING = 0, 1, 2, 4
PATH = "db/000007.sst"
Row = tuple[bytes, int, int, int, bytes]  # key, seq, kind, expiry, value


# -- a fake filter: the exact set of keys, length-prefixed --------------------------------------


class SetFilterBuilder:
    kind = 1

    def __init__(self) -> None:
        self.added: list[bytes] = []
        self.steps = 0

    def add_keys(self, keys: list[bytes]) -> None:
        self.added += keys

    def finish(self) -> Generator[None, None, bytes]:
        for _ in range(3):
            self.steps += 1
            yield
        return b"".join(struct.pack("<I", len(k)) + k for k in self.added)


class SetFilter:
    def __init__(self, payload: bytes) -> None:
        self.keys = set()
        pos = 0
        while pos < len(payload):
            (n,) = struct.unpack_from("<I", payload, pos)
            self.keys.add(payload[pos + 4 : pos + 4 + n])
            pos += 4 + n

    def may_contain(self, key: bytes) -> bool:
        return key in self.keys


class YesFilter:
    def may_contain(self, key: bytes) -> bool:
        return True


# -- helpers --------------------------------------------------------------------------------


def _build(
    rows: list[Row],
    rdels: list[tuple[bytes, bytes, int]] = (),  # type: ignore[assignment]
    *,
    block_size: int = 4096,
    slice_size: int = 1000,
    filter_builder: SetFilterBuilder | None = None,
) -> tuple[bytes, SstWriter]:
    w = SstWriter(block_size, filter_builder)
    parts = []
    for i in range(0, len(rows), slice_size):
        keys, seqs, kinds, exps, values = (
            list(c) for c in zip(*rows[i : i + slice_size], strict=True)
        )
        w.add_many(keys, seqs, kinds, exps, values)
        parts.append(w.take())
    for rd in rdels:
        w.add_range_del(*rd)
    parts.append(finish_sync(w))
    return b"".join(parts), w


def _open(data: bytes, decode_filter=SetFilter) -> Table:
    return Table.open(7, PATH, data, decode_filter)


def _all_rows(t: Table) -> list[Row]:
    out = []
    for i in range(t.block_count):
        b = t.read_block(i)
        for j, key in enumerate(b.keys):
            kind, value, seq, exp = b.entry(j)
            out.append((key, seq, kind, exp, value))
    return out


def _random_rows(rng: random.Random, nkeys: int, max_versions: int) -> list[Row]:
    rows = []
    seq = 1
    for key in sorted({rng.randbytes(rng.randint(1, 20)) for _ in range(nkeys)}):
        versions = []
        for _ in range(rng.randint(1, max_versions)):
            kind = rng.choice([DELETE, PUT, PUT, MERGE, PUT_EXPIRING])
            value = b"" if kind == DELETE else rng.randbytes(rng.choice([0, 5, 50, 500]))
            exp = rng.randint(1, 1 << 50) if kind == PUT_EXPIRING else 0
            versions.append((key, seq, kind, exp, value))
            seq += rng.randint(1, 3)
        rows += reversed(versions)  # newest first
    return rows


def _model_get(rows: list[Row], key: bytes, seq: int | None):
    for k, s, kind, exp, value in rows:
        if k == key and (seq is None or s <= seq):
            return (kind, value, s, exp)
    return None


class _Cache:
    """A block cache stand-in that counts reads."""

    def __init__(self, t: Table) -> None:
        self.t = t
        self.blocks: dict[int, Block] = {}
        self.reads = 0

    def __call__(self, i: int) -> Block:
        if i not in self.blocks:
            self.reads += 1
            self.blocks[i] = self.t.read_block(i)
        return self.blocks[i]


# -- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("block_size", [1, 64, 512, 4096])
def test_random_entries_with_many_versions_round_trip(block_size):
    rows = _random_rows(random.Random(block_size), 300, 6)
    data, w = _build(rows, block_size=block_size, slice_size=97)
    t = _open(data)
    assert _all_rows(t) == rows
    assert t.block_count == w.properties.data_blocks
    assert w.entries == len(rows) == t.properties.entries


def test_every_get_at_every_seq_matches_the_model():
    rng = random.Random(5)
    rows = _random_rows(rng, 120, 5)
    t = _open(_build(rows, block_size=200, slice_size=33)[0])
    cache = _Cache(t)
    max_seq = max(r[1] for r in rows)
    for key in sorted({r[0] for r in rows}):
        for seq in [None, 0, *range(1, max_seq + 2, 7)]:
            assert t.get(key, seq, cache) == _model_get(rows, key, seq), (key, seq)


def test_absent_keys_are_none():
    rows = [(b"b", 1, PUT, 0, b"x"), (b"d", 2, PUT, 0, b"y")]
    t = _open(_build(rows)[0])
    for key in (b"a", b"c", b"bb", b"e", b"\x00", b"\xff" * 10):
        assert t.get(key, None, t.read_block) is None


def test_versions_spanning_blocks_are_found_at_every_snapshot():
    key = b"counter"
    rows = [(b"a", 500, PUT, 0, b"first")]
    rows += [(key, s, PUT if s % 2 else MERGE, 0, b"v%d" % s) for s in range(300, 0, -1)]
    rows += [(b"z", 400, DELETE, 0, b"")]
    data, _ = _build(rows, block_size=128, slice_size=41)
    t = _open(data)
    assert t.index_keys.count(key) > 5  # the versions span many blocks
    assert list(t.index_keys) == sorted(t.index_keys)
    for seq in [None, *range(0, 305)]:
        assert t.get(key, seq, _Cache(t)) == _model_get(rows, key, seq), seq


def test_keys_and_values_bigger_than_a_block_round_trip():
    rows = [
        (b"a" * 5000, 3, PUT, 0, b"small"),
        (b"b", 2, PUT, 0, bytes(range(256)) * 4096),  # 1 MiB value
        (b"c" * MAX_KEY_SIZE, 1, PUT, 0, b""),
        (b"d", 1, PUT, 0, b"x"),
    ]
    data, _ = _build(rows, block_size=4096)
    t = _open(data)
    assert _all_rows(t) == rows
    assert t.block_count == 4  # each of the first three reaches the target alone
    assert t.get(b"b", None, t.read_block) == (PUT, rows[1][4], 2, 0)


def test_empty_values_round_trip():
    rows = [(b"a", 2, PUT, 0, b""), (b"b", 1, MERGE, 0, b""), (b"c", 1, DELETE, 0, b"")]
    t = _open(_build(rows)[0])
    assert _all_rows(t) == rows
    assert t.get(b"a", None, t.read_block) == (PUT, b"", 2, 0)


def test_slicing_does_not_change_the_bytes():
    rows = _random_rows(random.Random(9), 200, 4)
    whole, _ = _build(rows, block_size=300, slice_size=len(rows))
    for slice_size in (1, 2, 7, 64):
        assert _build(rows, block_size=300, slice_size=slice_size)[0] == whole, slice_size


def test_kinds_as_bytes_and_absent_expiries_give_the_same_table():
    rows = [(b"a", 3, PUT, 0, b"x"), (b"b", 2, DELETE, 0, b""), (b"c", 1, MERGE, 0, b"m")]
    expected, _ = _build(rows)
    w = SstWriter()
    w.add_many([b"a", b"b", b"c"], [3, 2, 1], bytes([PUT, DELETE, MERGE]), None, [b"x", b"", b"m"])
    assert finish_sync(w) == expected


def test_blocks_are_cut_once_they_reach_the_target():
    rows = [(b"%03d" % i, 1, PUT, 0, b"v" * 20) for i in range(100)]  # 3 + 20 + 17 = 40 each
    t = _open(_build(rows, block_size=217)[0])  # 17 + 5 * 40 = 217: five entries a block
    assert [len(t.read_block(i)) for i in range(t.block_count)] == [5] * 20
    t = _open(_build(rows, block_size=218)[0])  # one byte more: six
    assert [len(t.read_block(i)) for i in range(t.block_count)] == [6] * 16 + [4]


def test_take_returns_finished_blocks_in_pieces_that_add_up():
    rows = [(b"%05d" % i, 1, PUT, 0, b"v" * 100) for i in range(1000)]
    w = SstWriter(1024)
    pieces = []
    sizes = []
    for i in range(0, 1000, 100):
        chunk = rows[i : i + 100]
        w.add_many(*(list(c) for c in zip(*chunk, strict=True)))
        pieces.append(w.take())
        sizes.append(w.estimated_size)
        assert w.take() == b""
    pieces.append(finish_sync(w))
    data = b"".join(pieces)
    assert sizes == sorted(sizes)
    assert sizes[-1] <= len(data) < sizes[-1] * 1.05
    assert _all_rows(_open(data)) == rows


def test_block_plain_flag_marks_put_only_blocks_without_repeats():
    rows = [(b"a", 2, PUT, 0, b"x"), (b"b", 2, PUT, 0, b"y")]
    assert _open(_build(rows)[0]).read_block(0).plain
    rows = [(b"a", 2, PUT, 0, b"x"), (b"a", 1, PUT, 0, b"y")]
    assert not _open(_build(rows)[0]).read_block(0).plain
    rows = [(b"a", 2, PUT, 0, b"x"), (b"b", 1, PUT_EXPIRING, 9, b"y")]
    assert not _open(_build(rows)[0]).read_block(0).plain


def test_table_reads_from_an_mmap(tmp_path):
    rows = _random_rows(random.Random(3), 50, 3)
    data, _ = _build(rows, block_size=256)
    path = tmp_path / "000007.sst"
    path.write_bytes(data)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        t = _open(m)  # type: ignore[arg-type]
        assert _all_rows(t) == rows
        del t


def test_block_index_for_is_the_first_block_whose_last_key_is_not_smaller():
    rows = [(b"%03d" % i, 1, PUT, 0, b"v" * 40) for i in range(0, 100, 2)]
    t = _open(_build(rows, block_size=200)[0])
    for key in (b"", b"000", b"001", b"050", b"051", b"098", b"099", b"zzz"):
        i = t.block_index_for(key)
        assert all(k < key for k in t.index_keys[:i])
        assert i == t.block_count or t.index_keys[i] >= key
    assert t.block_index_for(b"zzz") == t.block_count
    with pytest.raises(IndexError):
        t.read_block(t.block_count)
    with pytest.raises(IndexError):
        t.read_block(-1)


# -- properties ---------------------------------------------------------------------------------


def test_properties_count_and_bound_the_entries():
    rows = [
        (b"b", 9, PUT, 0, b"vv"),
        (b"b", 8, DELETE, 0, b""),
        (b"c", 7, MERGE, 0, b"m"),
        (b"d", 6, PUT_EXPIRING, 5000, b"e"),
        (b"e", 5, PUT_EXPIRING, 3000, b"e"),
    ]
    data, w = _build(rows, [(b"a", b"bb", 12), (b"x", b"y", 2)], filter_builder=SetFilterBuilder())
    p = _open(data).properties
    assert p == w.properties
    assert (p.entries, p.tombstones, p.range_dels, p.merges, p.expiring) == (5, 3, 2, 1, 2)
    assert (p.smallest_seq, p.largest_seq) == (2, 12)
    assert (p.smallest_expiry, p.largest_expiry) == (3000, 5000)
    assert (p.raw_key_bytes, p.raw_value_bytes) == (5, 5)
    assert (p.smallest, p.largest) == (b"a", b"y")
    assert (p.point_smallest, p.point_largest) == (b"b", b"e")
    assert p.filter_kind == 1
    assert p.block_size == 4096


def test_properties_without_expiring_entries_have_zero_expiries():
    p = _build([(b"a", 1, PUT, 0, b"x")])[1].properties
    assert (p.smallest_expiry, p.largest_expiry, p.filter_kind) == (0, 0, 0)


def test_properties_before_finish_are_an_error():
    w = SstWriter()
    w.add(b"a", 1, PUT, 0, b"x")
    with pytest.raises(RuntimeError):
        _ = w.properties


# -- range tombstones ---------------------------------------------------------------------------


def test_range_dels_round_trip_sorted_and_widen_the_file_range():
    rows = [(b"m", 5, PUT, 0, b"x")]
    rdels = [(b"q", b"z", 3), (b"c", b"f", 4), (b"c", b"d", 9), (b"c", b"e", 4)]
    data, w = _build(rows, rdels)
    t = _open(data)
    assert t.range_dels == [(b"c", b"d", 9), (b"c", b"e", 4), (b"c", b"f", 4), (b"q", b"z", 3)]
    assert (t.smallest, t.largest) == (b"c", b"z")
    assert (w.properties.point_smallest, w.properties.point_largest) == (b"m", b"m")
    assert t.tombstone_seq(b"c") == 9
    assert t.tombstone_seq(b"dd") == 4
    assert t.tombstone_seq(b"c", 8) == 4
    assert t.tombstone_seq(b"f") == 0
    assert t.tombstone_seq(b"y") == 3
    assert t.tombstone_seq(b"z") == 0


def test_a_table_of_range_tombstones_only_is_valid():
    data, w = _build([], [(b"a", b"k", 7)], filter_builder=SetFilterBuilder())
    t = _open(data)
    assert t.block_count == 0 and t.index_keys == ()
    assert t.range_dels == [(b"a", b"k", 7)]
    assert (t.smallest, t.largest) == (b"a", b"k")
    assert w.properties.entries == 0 and w.properties.tombstones == 1
    assert w.properties.filter_kind == 0 and t.filter is None
    for key in (b"a", b"b", b"\x00", b"\x01", b"zz"):
        assert t.get(key, None, t.read_block) is None


def test_a_range_del_may_end_one_byte_past_the_longest_key():
    end = b"k" * MAX_KEY_SIZE + b"\x00"
    t = _open(_build([], [(b"a", end, 3)])[0])
    assert t.range_dels == [(b"a", end, 3)]
    with pytest.raises(ValueError):
        SstWriter().add_range_del(b"a", end + b"\x00", 3)


def test_a_table_with_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one"):
        finish_sync(SstWriter())


@pytest.mark.parametrize(
    "rd", [(b"b", b"a", 1), (b"a", b"a", 1), (b"", b"a", 1), (b"a", b"b", 0), (b"a", b"b", 1 << 64)]
)
def test_bad_range_dels_are_refused(rd):
    with pytest.raises(ValueError):
        SstWriter().add_range_del(*rd)


# -- filters ------------------------------------------------------------------------------------


def test_the_filter_gets_each_distinct_key_once_across_slices():
    rows = [(b"a", 3, PUT, 0, b"")] + [(b"b", s, PUT, 0, b"") for s in range(20, 0, -1)]
    rows += [(b"c", 2, PUT, 0, b""), (b"c", 1, PUT, 0, b""), (b"d", 1, PUT, 0, b"")]
    for slice_size in (1, 2, 3, 5, 100):
        fb = SetFilterBuilder()
        _build(rows, filter_builder=fb, slice_size=slice_size)
        assert fb.added == [b"a", b"b", b"c", b"d"], slice_size


def test_finish_yields_while_the_filter_builder_works():
    fb = SetFilterBuilder()
    w = SstWriter(filter_builder=fb)
    w.add(b"a", 1, PUT, 0, b"x")
    gen = w.finish()
    yields = 0
    with pytest.raises(StopIteration):
        while True:
            next(gen)
            yields += 1
    assert yields == fb.steps == 3


def test_get_asks_the_filter_only_for_keys_in_range_and_counts_its_answers():
    rows = [(b"b", 1, PUT, 0, b"x"), (b"d", 1, PUT, 0, b"y")]
    t = _open(_build(rows, filter_builder=SetFilterBuilder())[0])
    cache = _Cache(t)
    assert t.get(b"a", None, cache) is None  # out of range: the filter is not asked
    assert t.get(b"c", None, cache) is None  # the filter says no: no block read
    assert (t.filter_checked, t.filter_useful, cache.reads) == (1, 1, 0)
    assert t.get(b"d", None, cache) == (PUT, b"y", 1, 0)
    assert (t.filter_checked, t.filter_useful, cache.reads) == (2, 1, 1)


def test_a_filter_false_positive_reads_the_block_and_finds_nothing():
    rows = [(b"b", 1, PUT, 0, b"x"), (b"d", 1, PUT, 0, b"y")]
    t = _open(_build(rows, filter_builder=SetFilterBuilder())[0], lambda payload: YesFilter())
    assert t.get(b"c", None, t.read_block) is None
    assert (t.filter_checked, t.filter_useful) == (1, 0)


def test_a_filter_the_decoder_declines_leaves_the_table_without_one():
    rows = [(b"b", 1, PUT, 0, b"x")]
    t = _open(_build(rows, filter_builder=SetFilterBuilder())[0], lambda payload: None)
    assert t.filter is None
    assert t.get(b"b", None, t.read_block) == (PUT, b"x", 1, 0)


# -- the writer refuses bad input and stays as it was ------------------------------------------

GOOD = ([b"b", b"c"], [5, 4], [PUT, PUT], None, [b"1", b"2"])
BAD_SLICES = {
    "keys decrease": ([b"e", b"d"], [1, 1], [PUT, PUT], None, [b"", b""]),
    "versions' seqs increase": ([b"d", b"d"], [1, 2], [PUT, PUT], None, [b"", b""]),
    "versions share a seq": ([b"d", b"d"], [2, 2], [PUT, PUT], None, [b"", b""]),
    "key before the last slice": ([b"a"], [9], [PUT], None, [b""]),
    "version after the last slice": ([b"c"], [4], [PUT], None, [b""]),
    "DELETE_RANGE kind": ([b"d"], [1], [3], None, [b"x"]),
    "unknown kind": ([b"d"], [1], [9], None, [b"x"]),
    "kind over 255": ([b"d"], [1], [256], None, [b"x"]),
    "DELETE with a value": ([b"d"], [1], [DELETE], None, [b"x"]),
    "expiry on a PUT": ([b"d"], [1], [PUT], [5], [b"x"]),
    "PUT_EXPIRING without expiries": ([b"d"], [1], [PUT_EXPIRING], None, [b"x"]),
    "PUT_EXPIRING with expiry 0": ([b"d"], [1], [PUT_EXPIRING], [0], [b"x"]),
    "seq 0": ([b"d"], [0], [PUT], None, [b"x"]),
    "seq over u64": ([b"d"], [1 << 64], [PUT], None, [b"x"]),
    "expiry over u64": ([b"d"], [1], [PUT_EXPIRING], [1 << 64], [b"x"]),
    "empty key": ([b""], [1], [PUT], None, [b"x"]),
    "key over 1 MiB": ([b"d" * (MAX_KEY_SIZE + 1)], [1], [PUT], None, [b"x"]),
    "columns of different lengths": ([b"d", b"e"], [1], [PUT, PUT], None, [b"", b""]),
    "a good key after a bad one": ([b"d", b"f", b"e"], [1, 1, 1], [PUT] * 3, None, [b""] * 3),
}


@pytest.mark.parametrize("bad", BAD_SLICES.values(), ids=BAD_SLICES.keys())
def test_a_bad_slice_is_refused_and_the_writer_is_unchanged(bad):
    fb = SetFilterBuilder()
    w = SstWriter(64, fb)
    w.add_many(*GOOD)
    before = (w.estimated_size, w.entries, list(fb.added))
    with pytest.raises(ValueError):
        w.add_many(*bad)
    assert (w.estimated_size, w.entries, fb.added) == before
    w.add_many([b"d"], [1], [PUT], None, [b"3"])
    data = w.take() + finish_sync(w)
    clean = SstWriter(64, SetFilterBuilder())
    clean.add_many(*GOOD)
    clean.add_many([b"d"], [1], [PUT], None, [b"3"])
    assert data == clean.take() + finish_sync(clean)


def test_a_str_key_is_refused_and_the_writer_is_unchanged():
    w = SstWriter()
    w.add_many(*GOOD)
    with pytest.raises(TypeError):
        w.add_many(["d", "e"], [1, 1], [PUT, PUT], None, [b"", b""])  # type: ignore[list-item]
    assert w.entries == 2


def test_adding_after_finish_is_an_error():
    w = SstWriter()
    w.add(b"a", 1, PUT, 0, b"x")
    finish_sync(w)
    with pytest.raises(RuntimeError):
        w.add(b"b", 1, PUT, 0, b"x")
    with pytest.raises(RuntimeError):
        w.add_range_del(b"b", b"c", 1)
    with pytest.raises(RuntimeError):
        finish_sync(w)


# -- damage -------------------------------------------------------------------------------------


def _small_table() -> bytes:
    """Three data blocks, a filter, range tombstones: every kind of block."""
    rows = [
        (b"apple", 9, PUT, 0, b"red"),
        (b"apple", 4, DELETE, 0, b""),
        (b"fig", 7, PUT_EXPIRING, 99, b"sweet"),
        (b"kiwi", 6, MERGE, 0, b"+1"),
        (b"lime", 5, PUT, 0, b"green"),
    ]
    data, w = _build(rows, [(b"b", b"e", 8)], block_size=50, filter_builder=SetFilterBuilder())
    assert w.properties.data_blocks == 3
    return data


def _read_everything(data: bytes) -> None:
    t = _open(data)
    for i in range(t.block_count):
        t.read_block(i)


def test_every_flipped_byte_is_caught_by_open_or_read_block():
    data = _small_table()
    _read_everything(data)
    for at in range(len(data)):
        bad = data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]
        with pytest.raises(CorruptionError) as info:
            _read_everything(bad)
        assert info.value.path == PATH, at
        assert 0 <= info.value.offset <= at, at


def test_every_truncation_fails_to_open():
    data = _small_table()
    for size in range(len(data)):
        with pytest.raises(CorruptionError) as info:
            _open(data[:size])
        assert info.value.path == PATH


def test_trailing_garbage_fails_to_open():
    data = _small_table()
    for tail in (b"\x00", b"aiokvSST", data[-FOOTER.size :]):
        with pytest.raises(CorruptionError):
            _open(data + tail)


def _with_footer(data: bytes, **fields: int) -> bytes:
    """The table with footer fields replaced (and the footer checksum made good again)."""
    at = len(data) - FOOTER.size
    values = list(FOOTER.unpack(data[at:]))
    names = ["io", "is", "fo", "fs", "ro", "rs", "po", "ps", "version", "flags"]
    for name, value in fields.items():
        values[names.index(name)] = value
    head = FOOTER.pack(*values)[:FOOTER_CHECKED]
    return data[:at] + head + struct.pack("<Q", xxhash.xxh3_64_intdigest(head)) + values[-1]


@pytest.mark.parametrize("version", [0, 2, 0xFFFFFFFF])
def test_a_table_of_another_version_is_unsupported(version):
    with pytest.raises(UnsupportedFormatError):
        _open(_with_footer(_small_table(), version=version))


def test_footer_flags_are_ignored():
    assert _open(_with_footer(_small_table(), flags=7)).block_count == 3


def test_handles_that_do_not_tile_the_file_are_corruption():
    data = _small_table()
    at = len(data) - FOOTER.size
    io, isz, _, _, _, _, _, psz = FOOTER.unpack(data[at:])[:8]
    for bad in (
        {"io": io + 1},
        {"is": isz - 1},
        {"ps": psz + 1},
        {"io": 0, "is": 0},  # no index
        {"ro": 5, "rs": 0},  # an absent block with an offset
    ):
        with pytest.raises(CorruptionError) as info:
            _open(_with_footer(data, **bad))
        assert info.value.offset == at, bad
    # Without the filter's handle, the data blocks would end where the filter starts: the index
    # (which says where they end) disagrees.
    with pytest.raises(CorruptionError, match="index"):
        _open(_with_footer(data, fo=0, fs=0))


def test_blocks_tile_the_file():
    data = _small_table()
    t = _open(data)
    handles = [t.block_handle(i) for i in range(t.block_count)]
    assert handles[0][0] == 0
    for (o1, s1), (o2, _) in pairwise(handles):
        assert o1 + s1 == o2
