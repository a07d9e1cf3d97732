"""The worked example of docs/format/wal.md, executed: its bytes, its ops and its damage table."""

from __future__ import annotations

import ast

import pytest

from aiokv.engine.batch_format import Op, ValueKind, decode_payload, encode_op, encode_payload
from aiokv.engine.wal_format import (
    END,
    NEED_DATA,
    RECORD_MARK,
    RecordType,
    WalReader,
    WalRecord,
    encode_put_record,
    encode_record,
    encode_segment_header,
)
from aiokv.errors import CorruptionError
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

DOC = read_doc("wal.md")
DUMP = hex_dump(fenced(golden_block(DOC, "wal-hex")))
SEGMENT = b"".join(line.data for line in DUMP)
RECORDS = table(golden_block(DOC, "wal-records"))
OPS = table(golden_block(DOC, "wal-ops"))
NUMBER = 1  # the example is segment 000001.log
PATH = "db/000001.log"
_ENUMS = {**ValueKind.__members__, **RecordType.__members__}


def _op(row: dict[str, str]) -> Op:
    return Op(
        int(ValueKind[row["kind"]]),
        int(row["cf"]),
        ast.literal_eval(row["key"].strip("`")),
        ast.literal_eval(row["value"].strip("`")),
        int(row["expiry_ms"] or 0),
    )


def _ops_of(record: str) -> list[Op]:
    return [_op(row) for row in OPS if row["record"] == record]


def _seqs_of(record: str) -> list[int]:
    return [int(row["seq"]) for row in OPS if row["record"] == record]


def _read(data: bytes) -> tuple[list[WalRecord], int | None]:
    reader = WalReader(PATH, NUMBER)
    reader.feed(data)
    reader.feed_eof()
    records = []
    while (rec := reader.next_record()) is not END:
        assert rec is not NEED_DATA
        assert isinstance(rec, WalRecord)
        records.append(rec)
    return records, reader.torn_at


def _bounds() -> list[tuple[int, int]]:
    """[start, end) of each record of the example."""
    starts = [int(r["offset"]) for r in RECORDS]
    return list(zip(starts, [*starts[1:], len(SEGMENT)], strict=True))


# -- the dump itself ------------------------------------------------------------------------------


def test_hex_dump_offsets_follow_the_bytes():
    check_dump_covers(DUMP, SEGMENT)


def test_hex_dump_notes_match_their_bytes():
    for line in DUMP:
        checked = check_note(line, SEGMENT, lambda name: int(_ENUMS[name]))
        if line.note.startswith("mark"):
            assert line.data == RECORD_MARK, line
            checked = True
        assert checked, f"nothing in the note of {line} is checked"


# -- encode: the documented ops give the documented bytes -----------------------------------------


def test_encoding_the_documented_ops_gives_the_documented_bytes():
    out = encode_segment_header(NUMBER)
    for row in RECORDS:
        ops = _ops_of(row["record"])
        seqs = _seqs_of(row["record"])
        assert seqs == list(range(seqs[0], seqs[0] + len(ops)))
        encoded = [encode_op(*op) for op in ops]
        payload = encode_payload(seqs[0], len(ops), encoded)
        assert len(payload) == int(row["length"])
        assert len(out) == int(row["offset"])
        out += encode_record(int(RecordType[row["type"]]), int(row["synced_to"]), payload)
    assert out == SEGMENT


def test_put_fast_path_gives_the_documented_bytes_of_a_single_put_record():
    fast = [r for r in RECORDS if [op.kind for op in _ops_of(r["record"])] == [ValueKind.PUT]]
    assert fast, "the example shows the put fast path"
    for (start, end), row in zip(_bounds(), RECORDS, strict=True):
        if row not in fast:
            continue
        (op,) = _ops_of(row["record"])
        (seq,) = _seqs_of(row["record"])
        record = encode_put_record(int(row["synced_to"]), seq, op.cf, op.key, op.value)
        assert record == SEGMENT[start:end]


# -- decode: the documented bytes give the documented ops -----------------------------------------


def test_decoding_the_documented_bytes_gives_the_documented_ops():
    records, torn_at = _read(SEGMENT)
    assert torn_at is None
    assert [(r.offset, r.type, r.synced_to) for r in records] == [
        (int(row["offset"]), int(RecordType[row["type"]]), int(row["synced_to"])) for row in RECORDS
    ]
    for rec, row in zip(records, RECORDS, strict=True):
        base, ops = decode_payload(rec.payload)
        assert base == _seqs_of(row["record"])[0]
        assert ops == _ops_of(row["record"])


# -- the damage table -----------------------------------------------------------------------------


def test_a_flipped_byte_in_a_vouched_for_record_is_corruption_at_its_offset():
    start, end = _bounds()[0]
    assert int(RECORDS[-1]["synced_to"]) > start  # the last record vouches for the first
    for at in range(start, end):
        with pytest.raises(CorruptionError) as info:
            _read(flipped(SEGMENT, at))
        assert (info.value.path, info.value.offset) == (PATH, start)


def test_a_flipped_byte_in_the_last_record_is_a_torn_tail_at_its_start():
    start, end = _bounds()[-1]
    for at in range(start, end):
        records, torn_at = _read(flipped(SEGMENT, at))
        assert torn_at == start
        assert len(records) == len(RECORDS) - 1


def test_the_file_cut_inside_the_last_record_is_a_torn_tail_at_its_start():
    start, end = _bounds()[-1]
    for size in range(start + 1, end):
        records, torn_at = _read(SEGMENT[:size])
        assert torn_at == start
        assert len(records) == len(RECORDS) - 1


def test_garbage_after_the_example_is_a_torn_tail_at_its_end():
    records, torn_at = _read(SEGMENT + b"\x00garbage")
    assert torn_at == len(SEGMENT)
    assert len(records) == len(RECORDS)


def test_a_flipped_header_byte_is_corruption_at_offset_0():
    for at in range(32):
        with pytest.raises(CorruptionError) as info:
            _read(flipped(SEGMENT, at))
        assert info.value.offset == 0


def test_the_file_cut_inside_the_header_is_a_torn_header():
    for size in range(32):
        assert _read(SEGMENT[:size]) == ([], 0)
