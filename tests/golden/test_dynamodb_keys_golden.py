"""The worked examples of docs/format/dynamodb_keys.md, executed: the annotated key, the table."""

from __future__ import annotations

import ast
from decimal import Decimal

import pytest

from aiokv.http.dynamodb.keys import (
    KeyDecodeError,
    KeyTag,
    NumberClass,
    decode_key,
    encode_key,
    encode_partition,
)
from aiokv.http.dynamodb.numbers import parse_number
from tests.golden.docblocks import (
    check_dump_covers,
    check_note,
    fenced,
    golden_block,
    hex_dump,
    read_doc,
    table,
)

DOC = read_doc("dynamodb_keys.md")
DUMP = hex_dump(fenced(golden_block(DOC, "dynamodb-key-hex")))
KEY = b"".join(line.data for line in DUMP)
VALUES = table(golden_block(DOC, "dynamodb-key-values"))
PARTITION, SORT = "u#1", parse_number("-12.5")  # the item the prose describes
_ENUMS = {**KeyTag.__members__, **NumberClass.__members__}
_END_MARKS = {"end of the string": b"\x00\x01", "end of a negative number": b"\xff"}


def _value(row: dict[str, str]) -> str | bytes | Decimal:
    text = row["value"].strip("`")
    return parse_number(text) if row["type"] == "N" else ast.literal_eval(text)


def test_hex_dump_offsets_follow_the_bytes():
    check_dump_covers(DUMP, KEY)


def test_hex_dump_notes_match_their_bytes():
    for line in DUMP:
        checked = check_note(line, KEY, lambda name: int(_ENUMS[name]))
        if line.note in _END_MARKS:
            assert line.data == _END_MARKS[line.note], line
            checked = True
        assert checked, f"nothing in the note of {line} is checked"


def test_the_documented_item_encodes_to_the_documented_bytes():
    assert encode_key(PARTITION, SORT) == KEY
    assert KEY.startswith(encode_partition(PARTITION))
    assert len(encode_partition(PARTITION)) == 6  # "bytes 0 to 5"


def test_the_documented_bytes_decode_to_the_documented_item():
    assert decode_key(KEY) == (PARTITION, SORT)


def test_the_documented_bytes_cut_short_do_not_decode_as_the_item():
    for size in range(len(KEY)):
        try:
            assert decode_key(KEY[:size]) != (PARTITION, SORT)
        except KeyDecodeError:
            pass


@pytest.mark.parametrize("row", VALUES, ids=lambda r: f"{r['type']}-{r['value']}")
def test_each_documented_value_encodes_to_its_bytes_and_back(row: dict[str, str]):
    value = _value(row)
    assert encode_key(value).hex(" ") == row["bytes"]
    assert decode_key(bytes.fromhex(row["bytes"])) == (value, None)


def test_the_documented_values_are_listed_in_dynamodb_order_and_their_bytes_agree():
    for kind in ("S", "B", "N"):
        rows = [r for r in VALUES if r["type"] == kind]
        values = [_value(r) for r in rows]
        order = [v.encode() if isinstance(v, str) else v for v in values]
        assert order == sorted(order), kind  # type: ignore[type-var]
        encoded = [bytes.fromhex(r["bytes"]) for r in rows]
        assert encoded == sorted(encoded), kind
