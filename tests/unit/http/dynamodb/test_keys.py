"""The key codec: round trips, DynamoDB's order in bytes, prefix-free partitions, Query ranges."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokv.errors import InvalidArgumentError
from aiokv.http.dynamodb.keys import (
    KeyDecodeError,
    KeyValue,
    decode_key,
    encode_key,
    encode_partition,
    sort_range,
)
from aiokv.http.dynamodb.numbers import parse_number
from tests.unit.http.dynamodb.test_numbers import numbers

_strings = st.text(alphabet=st.characters(codec="utf-8"), max_size=8) | st.sampled_from(
    ["", "\x00", "\x00\x00", "a\x00", "a\x00b", "\x01", "\uffff", "\U0010ffff"]
)
_binaries = st.binary(max_size=8) | st.sampled_from(
    [b"", b"\x00", b"\x00\xff", b"\xff", b"\xff\x00"]
)
_values = st.one_of(_strings, _binaries, numbers())


def _order(value: KeyValue) -> object:
    """DynamoDB's order: strings by UTF-8 bytes, binary by unsigned bytes, numbers by value."""
    return value.encode() if isinstance(value, str) else value


@given(_values, st.none() | _values)
def test_keys_decode_to_what_was_encoded(partition: KeyValue, sort: KeyValue | None):
    got = decode_key(encode_key(partition, sort))
    assert got == (partition, sort)
    assert [type(v) for v in got] == [type(partition), type(sort)]


@given(st.data())
def test_byte_order_is_dynamodb_order(data: st.DataObject):
    values = data.draw(st.sampled_from([_strings, _binaries, numbers()]))
    a, b = data.draw(values), data.draw(values)
    ka, kb = encode_key("p", a), encode_key("p", b)
    assert (ka < kb) == (_order(a) < _order(b))  # type: ignore[operator]
    assert (ka == kb) == (a == b)


@given(_values, _values, st.none() | _values)
def test_a_partition_prefix_holds_its_keys_and_no_others(
    p: KeyValue, q: KeyValue, s: KeyValue | None
):
    key = encode_key(q, s)
    assert key.startswith(encode_partition(p)) == (type(p) is type(q) and p == q)


@pytest.mark.parametrize(
    "text",
    [
        "-9.9999999999999999999999999999999999999E+125",
        "-1E+125",
        "-2",
        "-1.5",
        "-1",
        "-0.5",
        "-1E-130",
        "0",
        "1E-130",
        "0.5",
        "1",
        "1.05",
        "1.5",
        "2",
        "10",
        "1E+125",
        "9.9999999999999999999999999999999999999E+125",
    ],
)
def test_numbers_at_the_edges_sort_in_value_order(text: str):
    edges = [
        parse_number(t)
        for t in (
            "-9.9999999999999999999999999999999999999E+125",
            "-1E+125",
            "-2",
            "-1.5",
            "-1",
            "-0.5",
            "-1E-130",
            "0",
            "1E-130",
            "0.5",
            "1",
            "1.05",
            "1.5",
            "2",
            "10",
            "1E+125",
            "9.9999999999999999999999999999999999999E+125",
        )
    ]
    keys = [encode_key(v) for v in edges]
    assert keys == sorted(keys)
    assert decode_key(encode_key(parse_number(text))) == (parse_number(text), None)


def test_a_number_has_one_encoding_whatever_its_decimal_form():
    assert (
        encode_key(Decimal("100")) == encode_key(Decimal("1E+2")) == encode_key(Decimal("100.00"))
    )
    assert encode_key(Decimal("-0")) == encode_key(Decimal("0.000"))


def test_nul_bytes_are_escaped_and_order_is_kept():
    assert encode_key("a\x00b") == b"Sa\x00\xffb\x00\x01"
    assert (
        encode_key("a", "")
        < encode_key("a", "\x00")
        < encode_key("a", "\x00\x00")
        < encode_key("a", "\x01")
    )


@pytest.mark.parametrize(
    "value",
    [1, 1.5, True, None, bytearray(b"x"), Decimal("NaN"), Decimal("1E+126"), Decimal("1E-131")],
)
def test_values_that_are_not_keys_are_refused(value: object):
    with pytest.raises(InvalidArgumentError):
        encode_key(value)  # type: ignore[arg-type]


# -- Query ranges ---------------------------------------------------------------------------------

_sorts = st.lists(_strings, max_size=12)


def _in_range(start: bytes, end: bytes, sorts: list[str]) -> list[str]:
    keys = sorted(
        {encode_key("p", s) for s in sorts}
        | {encode_key("o", s) for s in sorts}
        | {encode_key("q", s) for s in sorts}
    )
    return [decode_key(k)[1] for k in keys if start <= k < end]  # type: ignore[misc]


def _utf8(s: str) -> bytes:
    return s.encode()


@given(_sorts, _strings, _strings)
def test_query_ranges_select_exactly_the_matching_sort_keys(sorts: list[str], a: str, b: str):
    unique = sorted(set(sorts), key=_utf8)
    lo, hi = sorted([a, b], key=_utf8)
    cases = {
        None: lambda s: True,
        "EQ": lambda s: s == a,
        "LT": lambda s: _utf8(s) < _utf8(a),
        "LE": lambda s: _utf8(s) <= _utf8(a),
        "GT": lambda s: _utf8(s) > _utf8(a),
        "GE": lambda s: _utf8(s) >= _utf8(a),
        "BEGINS_WITH": lambda s: s.startswith(a),
    }
    for op, predicate in cases.items():
        assert _in_range(*sort_range("p", op, a), sorts) == [s for s in unique if predicate(s)], op
    between = _in_range(*sort_range("p", "BETWEEN", lo, hi), sorts)
    assert between == [s for s in unique if _utf8(lo) <= _utf8(s) <= _utf8(hi)]


@given(st.lists(numbers(), max_size=10), numbers())
def test_query_ranges_on_numbers_follow_numeric_order(sorts: list[Decimal], a: Decimal):
    keys = sorted(encode_key(b"p", s) for s in set(sorts))
    start, end = sort_range(b"p", "LT", a)
    assert [decode_key(k)[1] for k in keys if start <= k < end] == sorted(
        s for s in set(sorts) if s < a
    )


def test_begins_with_on_binary_and_refused_on_numbers():
    start, end = sort_range("p", "BEGINS_WITH", b"\x00")
    assert start <= encode_key("p", b"\x00\x01") < end
    assert not start <= encode_key("p", b"\x01") < end
    with pytest.raises(InvalidArgumentError):
        sort_range("p", "BEGINS_WITH", Decimal(1))
    with pytest.raises(InvalidArgumentError):
        sort_range("p", "NE", "a")


# -- decoding damage ------------------------------------------------------------------------------

EXAMPLES = [
    encode_key("pk\x00", "sk"),
    encode_key(b"\x00\xff", Decimal("-1.5")),
    encode_key(Decimal("12.5"), b""),
]


@pytest.mark.parametrize("key", EXAMPLES)
def test_every_truncation_is_refused_or_decodes_to_a_shorter_key(key: bytes):
    for size in range(len(key)):
        try:
            partition, sort = decode_key(key[:size])
        except KeyDecodeError:
            continue
        assert sort is None and encode_key(partition) == key[:size]


@pytest.mark.parametrize("key", EXAMPLES)
def test_trailing_garbage_is_refused(key: bytes):
    for garbage in (b"\x00", b"S", b"Sx", b"Sx\x00", b"\xff", b"N\x02"):
        with pytest.raises(KeyDecodeError):
            decode_key(key + garbage)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"X",
        b"Sabc",
        b"S\xff\xfe\x00",
        b"N",
        b"N\x04",
        b"N\x03\x82",
        b"N\x03\x8212",
        b"N\x03\x8210\x00",
        b"N\x03\x8201\x00",
        b"N\x03\x82\x00",
        b"N\x03\x821a\x00",
        b"N\x01\x7d12",
    ],
)
def test_malformed_components_are_refused(data: bytes):
    with pytest.raises(KeyDecodeError):
        decode_key(data)
