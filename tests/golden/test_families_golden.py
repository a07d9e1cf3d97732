"""The executable parts of docs/format/families.md: the member table (order, defaults, types,
allowed values), the worked example's JSON bytes, and the reconciliation table."""

from __future__ import annotations

import ast
import re
from typing import Any

import orjson
import pytest

from aiokv import errors
from aiokv.engine.lsm.manifest_format import encode_edit
from aiokv.engine.lsm.version_edit import VersionEdit
from aiokv.errors import CorruptionError, InvalidArgumentError, InvalidTypeError
from aiokv.family_options import (
    FAMILY_FIELDS,
    FIXED,
    FORMAT_VERSION,
    FamilyOptions,
    decode,
    encode,
    reconcile,
)
from aiokv.merge import Int64Add, Max
from aiokv.options import build_options
from tests.golden.docblocks import fenced, golden_block, read_doc, table

DOC = read_doc("families.md")
MEMBERS = table(golden_block(DOC, "families-members"))
BY_MEMBER = {r["member"].strip("`"): r for r in MEMBERS}
EXAMPLE_CALL = fenced(golden_block(DOC, "families-example-options")).strip()
EXAMPLE_TEXT = fenced(golden_block(DOC, "families-example-json"))
RECONCILE = table(golden_block(DOC, "families-reconcile"))
NAMES = {"FamilyOptions": FamilyOptions, "Int64Add": Int64Add, "Max": Max}
DEFAULTS = orjson.loads(encode(FamilyOptions()))
_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "string": (str,),
    "number or null": (int, float, type(None)),
    "string or null": (str, type(None)),
}
_UNITS = {"": 1, "KiB": 1 << 10, "MiB": 1 << 20}


def _example() -> FamilyOptions:
    fo = eval(EXAMPLE_CALL, NAMES)
    assert isinstance(fo, FamilyOptions)
    return fo


def _example_bytes() -> bytes:
    assert EXAMPLE_TEXT.endswith("\n") and EXAMPLE_TEXT.count("\n") == 1  # one line
    return EXAMPLE_TEXT[:-1].encode()


def _term(text: str) -> int:
    if text.startswith("2^"):
        return 1 << int(text[2:])
    number, _, unit = text.partition(" ")
    return int(number) * _UNITS[unit]


def _allowed(member: str) -> str:
    return BY_MEMBER[member]["allowed"].replace("`", "")


def _int_range(member: str) -> tuple[int, int] | None:
    m = re.fullmatch(r"(.+) to (.+)", _allowed(member))
    return (_term(m[1]), _term(m[2])) if m else None


def _choices(member: str) -> list[str] | None:
    allowed = _allowed(member)
    return orjson.loads(f"[{allowed}]") if allowed.startswith('"') else None


def _set(member: str, value: Any) -> dict[str, Any]:
    # The three L0 triggers must also stay ordered: move them together.
    if member.startswith("l0_") and member.endswith("_trigger"):
        return {m: value for m in FAMILY_FIELDS if m.startswith("l0_")}
    return {member: value}


def _opens_with(persisted: bytes, given: dict[str, Any]) -> dict[str, Any]:
    """The members that differ from their defaults once `persisted` is reconciled."""
    fo = reconcile("s", decode(persisted), given, frozenset(given))
    out = orjson.loads(encode(fo))
    return {k: v for k, v in out.items() if v != DEFAULTS[k]}


# -- the member table -----------------------------------------------------------------------------


def test_the_member_table_lists_v_then_every_family_field_in_encoding_order():
    assert list(BY_MEMBER) == ["v", *FAMILY_FIELDS]
    assert list(orjson.loads(encode(FamilyOptions()))) == list(BY_MEMBER)


def test_the_documented_defaults_are_what_encode_writes_for_default_options():
    documented = {m: orjson.loads(r["default"].strip("`")) for m, r in BY_MEMBER.items()}
    assert documented == DEFAULTS
    assert documented["v"] == FORMAT_VERSION


@pytest.mark.parametrize("member", list(BY_MEMBER))
def test_the_documented_json_type_fits_the_default_and_the_example(member):
    types = _TYPES[BY_MEMBER[member]["JSON type"]]
    example = orjson.loads(encode(_example()))
    for value in (DEFAULTS[member], example[member]):
        assert isinstance(value, types) and not isinstance(value, bool)


def test_exactly_the_fixed_members_are_marked_fixed():
    marked = [m for m, r in BY_MEMBER.items() if "**fixed**" in r["meaning"]]
    assert marked == list(FIXED)


def test_every_allowed_cell_but_the_version_and_the_operator_is_checked_below():
    unchecked = [m for m in FAMILY_FIELDS if _int_range(m) is None and _choices(m) is None]
    assert unchecked == ["ttl", "merge_operator"]  # ttl has its own test; merge.md the names


@pytest.mark.parametrize("member", [m for m in FAMILY_FIELDS if _int_range(m) is not None])
def test_each_documented_integer_range_is_what_open_accepts(member):
    rng = _int_range(member)
    assert rng is not None
    lo, hi = rng
    for ok in (lo, hi):
        assert getattr(build_options(_set(member, ok)), member) == ok
    for bad in (lo - 1, hi + 1):
        with pytest.raises(InvalidArgumentError, match="l0_" if "l0_" in member else member):
            build_options(_set(member, bad))


@pytest.mark.parametrize("member", [m for m in FAMILY_FIELDS if _choices(m) is not None])
def test_each_documented_choice_is_accepted_and_another_refused(member):
    choices = _choices(member)
    assert choices
    for choice in choices:
        assert getattr(build_options({member: choice}), member) == choice
    with pytest.raises(InvalidArgumentError, match=member):
        build_options({member: "other"})


def test_the_documented_ttl_bounds_are_what_open_accepts():
    m = re.fullmatch(r"null, or more than (\d+) and at most (\d+)", _allowed("ttl"))
    assert m
    above, most = int(m[1]), int(m[2])
    assert build_options({"ttl": None}).ttl is None
    assert build_options({"ttl": most}).ttl == most
    assert build_options({"ttl": above + 0.001}).ttl == above + 0.001
    for bad in (above, most + 1):
        with pytest.raises(InvalidArgumentError, match="ttl"):
            build_options({"ttl": bad})


def test_the_version_cell_is_the_format_version():
    assert _allowed("v") == str(FORMAT_VERSION)


# -- the worked example ---------------------------------------------------------------------------


def test_encoding_the_documented_options_gives_the_documented_json_byte_for_byte():
    assert encode(_example()) == _example_bytes()


def test_the_documented_length_and_manifest_length_prefix_match_the_bytes():
    blob = _example_bytes()
    m = re.search(r"one line of (\d+) bytes", DOC)
    assert m and int(m[1]) == len(blob)
    prefix = re.search(r"u32 length\s+\((\d+),\s+`([0-9a-f ]+)`\)", DOC)
    assert prefix and int(prefix[1]) == len(blob)
    assert bytes.fromhex(prefix[2]) == len(blob).to_bytes(4, "little")
    payload = encode_edit(VersionEdit(added_families=[(1, "sessions", blob)]))
    assert payload.endswith(bytes.fromhex(prefix[2]) + blob)


def test_decoding_the_documented_json_gives_the_members_with_the_operator_by_name():
    decoded = decode(_example_bytes())
    assert list(decoded) == list(FAMILY_FIELDS)
    assert decoded == {**_example().as_dict(), "merge_operator": "aiokv.int64_add"}


def test_reconciling_the_decoded_example_with_nothing_given_gives_back_the_options():
    fo = reconcile("sessions", decode(_example_bytes()), {}, frozenset())
    assert fo == _example()
    assert isinstance(fo.merge_operator, Int64Add)


def test_decode_accepts_members_in_any_order_with_whitespace():
    members = orjson.loads(_example_bytes())
    shuffled = "{ " + ", ".join(f'"{k}" : {orjson.dumps(v).decode()}' for k, v in
                                reversed(members.items())) + " }"  # fmt: skip
    assert decode(shuffled.encode()) == decode(_example_bytes())


# -- opening a family -----------------------------------------------------------------------------


@pytest.mark.parametrize("row", RECONCILE, ids=[f"{r['persisted']}{r['given']}" for r in RECONCILE])
def test_reconciling_gives_the_documented_options_or_error(row):
    cell = row["persisted"]
    persisted = b"" if cell == "(empty)" else cell.strip("`").encode()
    given = eval(row["given"].strip("`"), NAMES)
    expected = row["opens with"].strip("`")
    if re.fullmatch(r"\w+Error", expected):
        with pytest.raises(getattr(errors, expected)):
            _opens_with(persisted, given)
    else:
        assert _opens_with(persisted, given) == ast.literal_eval(expected)


def test_an_empty_blob_decodes_to_nothing_and_opens_with_defaults():
    assert decode(b"") == {}
    assert reconcile("default", {}, {}, frozenset()) == FamilyOptions()


def test_an_empty_blob_fixes_no_compaction_style():
    fo = reconcile("default", decode(b""), {"compaction": "tiered"}, frozenset({"compaction"}))
    assert fo.compaction == "tiered"


def test_a_blob_that_is_not_utf8_is_corruption_at_offset_0_of_the_manifest():
    with pytest.raises(CorruptionError) as info:
        decode(b'{"v":1,"filter":"\xff"}')
    assert (info.value.path, info.value.offset) == ("MANIFEST", 0)


def test_a_persisted_value_of_the_wrong_type_is_refused_as_open_would_refuse_it():
    with pytest.raises(InvalidTypeError, match="block_size"):
        reconcile("s", decode(b'{"v":1,"block_size":"4k"}'), {}, frozenset())
