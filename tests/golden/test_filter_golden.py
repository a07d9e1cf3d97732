"""The filter examples of docs/format/sst.md, executed: their bytes, their notes and their tables.

Skipped until the filter section (golden blocks filter-*) is in docs/format/sst.md.
"""

from __future__ import annotations

import ast
import re

import pytest
import xxhash

from aiokv.engine.lsm import filter as filter_mod
from aiokv.engine.lsm.bloom import probe_table, probes_for
from aiokv.engine.lsm.filter import decode_filter, finish_sync, new_filter_builder
from aiokv.engine.lsm.ribbon import HEADER as RIBBON_HEADER
from aiokv.engine.lsm.ribbon import WIDTH
from tests.golden.docblocks import fenced, golden_block, hex_dump, read_doc, table


def _doc() -> str:
    try:
        return read_doc("sst.md")
    except FileNotFoundError:
        return ""


DOC = _doc()
if "<!-- golden:filter-bloom:begin -->" not in DOC:
    pytest.skip("docs/format/sst.md has no filter section yet", allow_module_level=True)

EXAMPLES = {row["block"]: row for row in table(golden_block(DOC, "filter-examples"))}
DUMPS = {name: hex_dump(fenced(golden_block(DOC, name))) for name in EXAMPLES}
DATA = {name: b"".join(line.data for line in dump) for name, dump in DUMPS.items()}
BLOOM = DATA["filter-bloom"]
RIBBON = DATA["filter-ribbon"]


def _keys(name: str) -> list[bytes]:
    return list(ast.literal_eval("[" + EXAMPLES[name]["keys added"].replace("`", "") + "]"))


def _build(name: str) -> bytes:
    row = EXAMPLES[name]
    builder = new_filter_builder(row["filter"], int(row["bits_per_key"]))
    assert builder is not None
    builder.add_keys(_keys(name))
    return finish_sync(builder)


def _key_rows(name: str) -> list[dict[str, str]]:
    return table(golden_block(DOC, name))


def _key_of(row: dict[str, str]) -> bytes:
    key = ast.literal_eval(row["key"].strip("`"))
    assert isinstance(key, bytes)
    return key


def _ribbon_columns() -> tuple[int, list[int]]:
    """(starts, each column as one int: bit i is row i) of the documented Ribbon filter."""
    _, _, r, _, row_blocks, partial = RIBBON_HEADER.unpack_from(RIBBON)
    sizes = [8 * row_blocks] * r + ([8 * partial] if partial else [])
    at = RIBBON_HEADER.size
    cols = []
    for size in sizes:
        cols.append(int.from_bytes(RIBBON[at : at + size], "little"))
        at += size
    return 64 * row_blocks - (WIDTH - 1), cols


# -- the dumps themselves -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["filter-bloom", "filter-ribbon"])
def test_hex_dump_offsets_follow_the_bytes(name):
    at = 0
    for line in DUMPS[name]:
        assert line.offset == at, line
        at += len(line.data)


@pytest.mark.parametrize("name", ["filter-bloom", "filter-ribbon"])
def test_hex_dump_notes_match_their_bytes(name):
    data = DATA[name]
    row_blocks = RIBBON_HEADER.unpack_from(RIBBON)[4]
    for line in DUMPS[name]:
        value = int.from_bytes(line.data, "little")
        if m := re.fullmatch(r"(\w+) = (\d+)(?: \((\w+)\))?", line.note):
            assert value == int(m[2]), line
            if m[3]:
                assert getattr(filter_mod, m[3]) == value, line
        elif m := re.fullmatch(r"block (\d+), bits (\d+)-(\d+): (.*)", line.note):
            block, lo, hi = int(m[1]), int(m[2]), int(m[3])
            assert (hi - lo + 1, lo % 64) == (8 * len(line.data), 0), line
            assert line.offset == 8 + 64 * block + lo // 8, line
            bits = [lo + i for i in range(hi - lo + 1) if value >> i & 1]
            assert m[4] == (", ".join(map(str, bits)) or "none"), line
        elif m := re.fullmatch(r"column (\d+), rows (\d+)-(\d+)", line.note):
            column, lo, hi = int(m[1]), int(m[2]), int(m[3])
            assert (hi - lo + 1, lo % 64, len(line.data)) == (64, 0, 8), line
            assert line.offset == 12 + 8 * (column * row_blocks + lo // 64), line
        else:
            pytest.fail(f"nothing in the note of {line} is checked")
    assert len(data) == DUMPS[name][-1].offset + len(DUMPS[name][-1].data)


# -- encode: the documented keys give the documented bytes ----------------------------------------


@pytest.mark.parametrize("name", ["filter-bloom", "filter-ribbon"])
def test_building_the_documented_keys_gives_the_documented_bytes(name):
    assert _build(name) == DATA[name]


@pytest.mark.parametrize("name", ["filter-bloom", "filter-ribbon"])
def test_the_documented_keys_in_any_order_give_the_same_bytes(name):
    row = EXAMPLES[name]
    builder = new_filter_builder(row["filter"], int(row["bits_per_key"]))
    builder.add_keys(_keys(name)[::-1])
    assert finish_sync(builder) == DATA[name]


# -- decode: the documented bytes answer as documented --------------------------------------------


@pytest.mark.parametrize("name", ["filter-bloom", "filter-ribbon"])
def test_decoding_the_documented_bytes_finds_every_added_key(name):
    f = decode_filter(DATA[name])
    assert f is not None
    assert all(map(f.may_contain, _keys(name)))


def test_the_bloom_key_table_is_what_the_filter_computes():
    f = decode_filter(BLOOM)
    blocks = int.from_bytes(BLOOM[4:8], "little")
    pa, pb = BLOOM[2], BLOOM[3]
    rows = _key_rows("filter-bloom-keys")
    assert {_key_of(r) for r in rows if r["may_contain"] == "True"} >= set(_keys("filter-bloom"))
    for row in rows:
        key = _key_of(row)
        h = xxhash.xxh3_64_intdigest(key)
        a, b = h & 0x3FFF, (h >> 14) & 0x3FFF
        mask = probe_table(pa)[a] | probe_table(pb)[b]
        assert int(row["h = xxh3_64(key)"].strip("`"), 16) == h, row
        assert (int(row["block"]), int(row["a"]), int(row["b"])) == ((h >> 32) % blocks, a, b)
        bits = [int(x) for x in row["mask bits"].split(", ")]
        assert bits == [i for i in range(512) if mask >> i & 1], row
        block = int.from_bytes(BLOOM[8 + 64 * int(row["block"]) :][:64], "little")
        assert row["may_contain"] == str(block & mask == mask) == str(f.may_contain(key)), row


def test_the_ribbon_key_table_is_what_the_filter_computes():
    f = decode_filter(RIBBON)
    starts, cols = _ribbon_columns()
    rows = _key_rows("filter-ribbon-keys")
    assert {_key_of(r) for r in rows if r["may_contain"] == "True"} >= set(_keys("filter-ribbon"))
    (u_header,) = [h for h in rows[0] if h.startswith("u = h mod ")]
    assert u_header == f"u = h mod {starts}"
    (parity_header,) = [h for h in rows[0] if h.startswith("parities")]
    for row in rows:
        key = _key_of(row)
        h = xxhash.xxh3_128_intdigest(key)
        u = h % starts
        assert int(row["h = xxh3_128(key)"].strip("`"), 16) == h, row
        assert int(row[u_header]) == u, row
        parities = "".join(str(((col >> u) & (h | 1)).bit_count() & 1) for col in cols)
        assert row[parity_header] == parities, row
        assert row["may_contain"] == str("1" not in parities) == str(f.may_contain(key)), row


def test_the_documented_probe_counts_are_the_builders():
    for row in table(golden_block(DOC, "filter-bloom-probes")):
        lo, _, hi = row["bits_per_key"].partition("-")
        for bits in range(int(lo), int(hi or lo) + 1):
            assert probes_for(bits) == (int(row["probes_a"]), int(row["probes_b"])), bits
    covered = {
        bits
        for row in table(golden_block(DOC, "filter-bloom-probes"))
        for bits in range(
            int(row["bits_per_key"].partition("-")[0]),
            int(row["bits_per_key"].rpartition("-")[2]) + 1,
        )
    }
    assert covered == set(range(1, 33))
