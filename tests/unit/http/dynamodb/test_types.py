"""AttributeValues: validation texts and order, the internal form, size and rendering."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokv.http.dynamodb.numbers import NOT_NUMERIC, ValidationError
from aiokv.http.dynamodb.types import (
    EMPTY_BS,
    EMPTY_NS,
    EMPTY_SS,
    EMPTY_VALUE,
    MANY_TYPES,
    MAX_DEPTH,
    NS_DUPLICATES,
    NULL_FALSE,
    TOO_DEEP,
    SerializationError,
    item_size,
    load_item,
    parse_item,
    parse_value,
    render,
    to_wire,
    value_size,
)


def _invalid(raw: Any) -> str:
    with pytest.raises(ValidationError) as info:
        parse_value(raw)
    return info.value.message


def _unreadable(raw: Any) -> str:
    with pytest.raises(SerializationError) as info:
        parse_value(raw)
    return info.value.message


def _nested(levels: int, leaf: dict[str, Any]) -> dict[str, Any]:
    """A value whose leaf sits at level `levels` (a top-level attribute is level 1)."""
    value = leaf
    for _ in range(levels - 1):
        value = {"M": {"n": value}}
    return value


# -- the internal form ----------------------------------------------------------------------------


def test_scalars_keep_their_payload_except_numbers_and_binary():
    assert parse_value({"S": ""}) == {"S": ""}
    assert parse_value({"BOOL": False}) == {"BOOL": False}
    assert parse_value({"NULL": True}) == {"NULL": True}
    assert parse_value({"N": "1.50"}) == {"N": Decimal("1.5")}
    assert parse_value({"B": ""}) == {"B": b""}
    assert parse_value({"B": "AAH/"}) == {"B": b"\x00\x01\xff"}


def test_sets_become_tuples_in_dynamodb_order():
    assert parse_value({"SS": ["b", "\u00e9", "a", "Z"]}) == {"SS": ("Z", "a", "b", "\u00e9")}
    assert parse_value({"NS": ["10", "-1", "9.5"]}) == {"NS": (Decimal(-1), Decimal("9.5"), 10)}
    assert parse_value({"BS": ["/w==", "AA==", "fw=="]}) == {"BS": (b"\x00", b"\x7f", b"\xff")}


def test_equal_values_have_equal_internal_forms():
    assert parse_value({"NS": ["1e2", "5"]}) == parse_value({"NS": ["5.0", "100"]})
    assert parse_value({"M": {"a": {"N": "01"}}}) == parse_value({"M": {"a": {"N": "1.0"}}})


def test_documents_nest():
    raw = {"M": {"l": {"L": [{"N": "1"}, {"M": {}}, {"L": []}]}, "s": {"S": "x"}}}
    assert parse_value(raw) == {
        "M": {"l": {"L": [{"N": Decimal(1)}, {"M": {}}, {"L": []}]}, "s": {"S": "x"}}
    }


def test_unknown_and_null_members_are_dropped():
    assert parse_value({"S": None, "N": "1"}) == {"N": Decimal(1)}
    assert parse_value({"X": 1, "S": "a"}) == {"S": "a"}


def test_boolean_words_read_as_the_service_reads_them():
    assert parse_value({"BOOL": "yes"}) == {"BOOL": True}
    assert parse_value({"BOOL": "False"}) == {"BOOL": False}
    assert parse_value({"NULL": "1"}) == {"NULL": True}
    assert _unreadable({"BOOL": "maybe"}) == "Unexpected token received from parser"


# -- validation texts -----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [{}, {"S": None}, {"X": "a"}, None])
def test_an_empty_value_is_refused(raw: Any):
    assert _invalid(raw) == EMPTY_VALUE


def test_two_types_are_refused_after_each_member_is_checked():
    assert _invalid({"S": "a", "N": "1"}) == MANY_TYPES
    assert _invalid({"S": "", "N": ""}) == NOT_NUMERIC
    assert _invalid({"S": "a", "N": "b"}) == f"{NOT_NUMERIC}: b"


def test_set_errors_use_the_service_texts():
    assert _invalid({"SS": []}) == EMPTY_SS
    assert _invalid({"NS": []}) == EMPTY_NS
    assert _invalid({"BS": []}) == EMPTY_BS
    assert _invalid({"SS": ["a", "a"]}) == (
        "One or more parameter values were invalid: Input collection [a, a] contains duplicates."
    )
    assert _invalid({"NS": ["1", "1.0"]}) == NS_DUPLICATES
    assert _invalid({"BS": ["AA==", "AQ==", "AA=="]}) == (
        "One or more parameter values were invalid: "
        "Input collection [AA==, AQ==, AA==]of type BS contains duplicates."
    )
    assert _invalid({"NS": ["1", ""]}) == NOT_NUMERIC
    assert _invalid({"NS": ["1", "b"]}) == f"{NOT_NUMERIC}: b"


def test_null_must_be_true():
    assert _invalid({"NULL": False}) == NULL_FALSE


def test_errors_inside_documents_are_found():
    assert _invalid({"M": {"a": {"S": "x"}, "b": {"SS": []}}}) == EMPTY_SS
    assert _invalid({"L": [{"N": "1"}, {"N": "1e126"}]}).startswith("Number overflow")


def test_the_first_invalid_attribute_in_order_wins():
    with pytest.raises(ValidationError) as info:
        parse_item({"a": {"NS": []}, "b": {"SS": []}})
    assert info.value.message == EMPTY_NS


def test_32_levels_are_allowed_and_33_are_not():
    assert parse_value(_nested(MAX_DEPTH, {"S": "leaf"}))
    assert parse_value(_nested(MAX_DEPTH, {"M": {}}))
    assert _invalid(_nested(MAX_DEPTH + 1, {"S": "leaf"})) == TOO_DEEP
    deep_list: dict[str, Any] = {"S": "leaf"}
    for _ in range(MAX_DEPTH):
        deep_list = {"L": [deep_list]}
    assert _invalid(deep_list) == TOO_DEEP


# -- deserialization ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"S": 5}, "NUMBER_VALUE cannot be converted to String"),
        ({"S": 1.5}, "DECIMAL_VALUE cannot be converted to String"),
        ({"S": True}, "TRUE_VALUE cannot be converted to String"),
        ({"N": False}, "FALSE_VALUE cannot be converted to String"),
        ({"N": 123}, "NUMBER_VALUE cannot be converted to String"),
        ({"S": []}, "Unrecognized collection type class java.lang.String"),
        ({"S": {}}, "Start of structure or map found where not expected"),
        ({"B": 5}, "only base-64-encoded strings are convertible to bytes"),
        ({"B": "abc"}, "Base64 encoded length is expected a multiple of 4 bytes but found: 3"),
        ({"B": "ab$="}, "Invalid last non-pad Base64 character dectected"),
        ({"B": []}, "Unrecognized collection type class java.nio.ByteBuffer"),
        ({"BOOL": 1}, "NUMBER_VALUE cannot be converted to Boolean"),
        ({"BOOL": []}, "Unrecognized collection type class java.lang.Boolean"),
        ({"SS": "a"}, "Unexpected field type"),
        ({"L": {}}, "Start of structure or map found where not expected"),
        (
            {"M": []},
            "Unrecognized collection type java.util.Map<java.lang.String, "
            "com.amazonaws.dynamodb.v20120810.AttributeValue>",
        ),
        ({"M": "a"}, "Unexpected field type"),
        ("a", "Unexpected value type in payload"),
        ([], "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"),
        ({"L": [5]}, "Unexpected value type in payload"),
    ],
)
def test_wrong_json_types_are_serialization_errors(raw: Any, message: str):
    assert _unreadable(raw) == message


def test_a_serialization_error_anywhere_wins_over_a_validation_error():
    with pytest.raises(SerializationError):
        parse_value({"L": [{"SS": []}, {"M": {"x": {"S": 1}}}]})
    with pytest.raises(SerializationError):
        parse_item({"a": {"NULL": False}, "b": {"BS": [1]}})


# -- size -----------------------------------------------------------------------------------------


def test_sizes_follow_the_developer_guide():
    assert value_size(parse_value({"S": "h\u00e9"})) == 3  # UTF-8 bytes
    assert value_size(parse_value({"B": "AAEC"})) == 3  # raw bytes, not base64
    assert value_size(parse_value({"BOOL": True})) == 1
    assert value_size(parse_value({"NULL": True})) == 1
    assert value_size(parse_value({"L": []})) == 3
    assert value_size(parse_value({"M": {}})) == 3
    assert value_size(parse_value({"L": [{"S": "ab"}, {"N": "1"}]})) == 3 + (1 + 2) + (1 + 2)
    assert value_size(parse_value({"M": {"k\u00e9": {"S": "ab"}}})) == 3 + 1 + 3 + 2
    assert value_size(parse_value({"SS": ["a", "bc"]})) == 3
    assert value_size(parse_value({"NS": ["1", "-1"]})) == 2 + 3
    assert value_size(parse_value({"BS": ["AA==", "AAA="]})) == 3


def test_item_size_counts_names_and_values():
    item = parse_item({"pk": {"S": "abc"}, "\u00e9": {"N": "12345"}})
    assert item_size(item) == (2 + 3) + (2 + 4)


# -- rendering ------------------------------------------------------------------------------------


def test_render_writes_the_wire_form():
    item = parse_item(
        {"n": {"N": "-1.50e1"}, "b": {"B": "AAE="}, "ns": {"NS": ["2", "1E1"]}, "z": {"N": "-0"}}
    )
    assert orjson.loads(render({"Item": item})) == {
        "Item": {"n": {"N": "-15"}, "b": {"B": "AAE="}, "ns": {"NS": ["2", "10"]}, "z": {"N": "0"}}
    }


def test_to_wire_gives_plain_json_types():
    assert to_wire(parse_value({"BS": ["AQ==", "AA=="]})) == {"BS": ["AA==", "AQ=="]}


def test_render_refuses_foreign_objects():
    with pytest.raises(TypeError):
        render({"x": object()})


# -- round trips ----------------------------------------------------------------------------------

_names = st.text(max_size=5)
_number_texts = (
    st.decimals(allow_nan=False, allow_infinity=False, places=None)
    .filter(lambda d: d == 0 or -130 <= d.adjusted() <= 125)
    .map(lambda d: str(d.normalize() if len(d.normalize().as_tuple().digits) <= 38 else 0))
)
_b64 = st.binary(max_size=8).map(lambda b: orjson.loads(render(b)))
_scalars = st.one_of(
    st.text().map(lambda s: {"S": s}),
    _number_texts.map(lambda n: {"N": n}),
    _b64.map(lambda b: {"B": b}),
    st.booleans().map(lambda b: {"BOOL": b}),
    st.just({"NULL": True}),
    st.sets(st.text(), min_size=1).map(lambda s: {"SS": list(s)}),
    st.sets(st.integers(-(10**38) + 1, 10**38 - 1), min_size=1).map(
        lambda s: {"NS": [str(n) for n in s]}
    ),
    st.sets(st.binary(max_size=4), min_size=1).map(
        lambda s: {"BS": [orjson.loads(render(b)) for b in s]}
    ),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda v: {"L": v}),
        st.dictionaries(_names, inner, max_size=4).map(lambda v: {"M": v}),
    ),
    max_leaves=12,
)


@given(st.dictionaries(_names, _values, max_size=5))
def test_rendered_items_parse_and_load_back_to_the_same_item(raw: dict[str, Any]):
    item = parse_item(raw)
    wire = orjson.loads(render(item))
    assert parse_item(wire) == item
    assert load_item(wire) == item
    assert render(parse_item(wire)) == render(item)
    assert item_size(load_item(wire)) == item_size(item)
