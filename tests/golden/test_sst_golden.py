"""The worked example of docs/format/sst.md, executed: its bytes, entries, properties and damage."""

from __future__ import annotations

import ast
import re
import struct
from itertools import pairwise

import pytest
import xxhash

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.lsm.block import Block
from aiokv.engine.lsm.sst_props import FOOTER, FOOTER_CHECKED, SST_MAGIC
from aiokv.engine.lsm.sst_reader import Table
from aiokv.engine.lsm.sst_writer import SstWriter, finish_sync
from aiokv.errors import CorruptionError, UnsupportedFormatError
from tests.golden.docblocks import (
    check_dump_covers,
    check_note,
    fenced,
    flipped,
    golden_block,
    hex_dump,
    read_doc,
    table,
)

DOC = read_doc("sst.md")
DUMP = hex_dump(fenced(golden_block(DOC, "sst-hex")))
TABLE = b"".join(line.data for line in DUMP)
ENTRIES = table(golden_block(DOC, "sst-entries"))
RANGE_DELS = table(golden_block(DOC, "sst-range-dels"))
PROPS = table(golden_block(DOC, "sst-props"))
DAMAGE = table(golden_block(DOC, "sst-damage"))
PATH = "db/000001.sst"
CREATED_MS = 1700000000000  # the doc's created_ms
FLAGS = {"HAS_EXPIRIES": 1, "PLAIN": 2, "FIXED_KEYS": 4, "FIXED_VALUES": 8}


def _lit(cell: str) -> bytes:
    value = ast.literal_eval(cell.strip("`"))
    assert isinstance(value, bytes)
    return value


def _entries() -> list[tuple[bytes, int, int, int, bytes]]:
    return [
        (
            _lit(r["key"]),
            int(r["seq"]),
            int(ValueKind[r["kind"]]),
            int(r["expiry_ms"] or 0),
            _lit(r["value"]),
        )
        for r in ENTRIES
    ]


def _range_dels() -> list[tuple[bytes, bytes, int]]:
    return [(_lit(r["start"]), _lit(r["end"]), int(r["seq"])) for r in RANGE_DELS]


def _open(data: bytes) -> Table:
    return Table.open(1, PATH, data, lambda payload: None)


# -- the dump itself ------------------------------------------------------------------------------


def test_hex_dump_offsets_follow_the_bytes():
    check_dump_covers(DUMP, TABLE)


def test_hex_dump_notes_match_their_bytes():
    for line in DUMP:
        checked = check_note(line, TABLE, lambda name: int(ValueKind[name]))
        if m := re.search(r"flags ([A-Z_ +]+) =", line.note):
            value = int.from_bytes(line.data, "little")
            assert value == sum(FLAGS[n.strip()] for n in m.group(1).split("+")), line
        assert checked, f"nothing in the note of {line} is checked"


def test_every_checksum_in_the_dump_is_checked():
    sums = [line for line in DUMP if line.note.startswith("checksum")]
    assert len(sums) == 5  # data, range-del, index, properties, footer
    assert all("xxh3_64(bytes" in line.note for line in sums)


# -- encode: the documented entries give the documented bytes -------------------------------------


def test_writing_the_documented_entries_gives_the_documented_bytes():
    w = SstWriter(created_ms=CREATED_MS)
    keys, seqs, kinds, expiries, values = (list(c) for c in zip(*_entries(), strict=True))
    w.add_many(keys, seqs, kinds, expiries, values)
    for start, end, seq in _range_dels():
        w.add_range_del(start, end, seq)
    assert w.take() + finish_sync(w) == TABLE


def test_the_writer_reports_the_documented_properties():
    w = SstWriter(created_ms=CREATED_MS)
    for key, seq, kind, expiry, value in _entries():
        w.add(key, seq, kind, expiry, value)
    for start, end, seq in _range_dels():
        w.add_range_del(start, end, seq)
    finish_sync(w)
    _check_props(w.properties)


# -- decode: the documented bytes give the documented entries -------------------------------------


def _check_props(props: object) -> None:
    for row in PROPS:
        cell = row["value"]
        expected = _lit(cell) if cell.startswith("`") else int(cell)
        assert getattr(props, row["property"]) == expected, row


def test_reading_the_documented_bytes_gives_the_documented_entries():
    t = _open(TABLE)
    _check_props(t.properties)
    assert t.block_count == 1
    block = t.read_block(0)
    assert isinstance(block, Block)
    got = [
        (k, s, kind, exp, v)
        for k, (kind, v, s, exp) in zip(
            block.keys, map(block.entry, range(len(block))), strict=True
        )
    ]
    assert got == _entries()
    assert t.range_dels == _range_dels()
    assert (t.smallest, t.largest) == (b"ant", b"dog")


def test_gets_on_the_documented_table():
    t = _open(TABLE)
    for key, seq, kind, expiry, value in _entries():
        assert t.get(key, None, t.read_block) == (kind, value, seq, expiry)
        assert t.get(key, seq - 1, t.read_block) is None
    assert t.get(b"cow", None, t.read_block) is None  # only a range tombstone covers it
    assert t.tombstone_seq(b"cow") == 6


# -- the damage table -----------------------------------------------------------------------------


def test_the_damage_table_covers_the_whole_file():
    spans = [(int(r["first"]), int(r["last"])) for r in DAMAGE]
    assert spans[0][0] == 0 and spans[-1][1] == len(TABLE) - 1
    assert all(a[1] + 1 == b[0] for a, b in pairwise(spans))


@pytest.mark.parametrize("row", DAMAGE, ids=[r["damaged"] for r in DAMAGE])
def test_a_flipped_byte_raises_as_the_damage_table_says(row):
    for at in range(int(row["first"]), int(row["last"]) + 1):
        data = flipped(TABLE, at)
        with pytest.raises(CorruptionError) as info:
            t = _open(data)
            assert "read_block" in row["raised by"], f"open accepted a flip at {at}"
            t.read_block(0)
        assert (info.value.path, info.value.offset) == (PATH, int(row["error offset"])), at


def test_the_file_cut_short_or_extended_fails_to_open():
    for size in range(len(TABLE)):
        with pytest.raises(CorruptionError) as info:
            _open(TABLE[:size])
        assert info.value.path == PATH
    with pytest.raises(CorruptionError):
        _open(TABLE + b"\x00")


def test_a_good_footer_of_another_version_is_unsupported():
    at = len(TABLE) - FOOTER.size
    footer = bytearray(TABLE[at:])
    struct.pack_into("<I", footer, 64, 2)
    struct.pack_into("<Q", footer, FOOTER_CHECKED, xxhash.xxh3_64_intdigest(footer[:72]))
    assert footer[-8:] == SST_MAGIC
    with pytest.raises(UnsupportedFormatError, match="version 2"):
        _open(TABLE[:at] + bytes(footer))
