"""Condition evaluation (DynamoDB's comparison rules) and projection, table-driven.

Items and values are built with types.parse_item / parse_value: the held form the operations
pass in (canonical Decimal numbers, bytes, sorted tuple sets)."""

from __future__ import annotations

import pytest

from aiokv.http.dynamodb.expressions import (
    Bindings,
    compile_condition,
    compile_projection,
    parse_condition,
    parse_projection,
)
from aiokv.http.dynamodb.types import parse_item, parse_value

ITEM = parse_item(
    {
        "s": {"S": "hello"},
        "n": {"N": "10"},
        "b": {"B": "AAEC"},  # bytes 00 01 02
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.50"]},
        "bs": {"BS": ["AAE="]},
        "l": {"L": [{"S": "x"}, {"N": "2"}, {"M": {"k": {"S": "v"}}}]},
        "m": {"M": {"child": {"M": {"deep": {"N": "-3"}}}, "name": {"S": "ann"}}},
        "big": {"N": "12345678901234567890123456789012345678"},
    }
)

WIRE_VALUES = {
    ":s": {"S": "hello"},
    ":he": {"S": "he"},
    ":ell": {"S": "ell"},
    ":n": {"N": "10.0"},
    ":n9": {"N": "9"},
    ":n11": {"N": "11"},
    ":sn": {"S": "10"},
    ":a": {"S": "a"},
    ":two": {"N": "2.5"},
    ":b0": {"B": "AA=="},
    ":b1": {"B": "AAE="},
    ":tS": {"S": "S"},
    ":tSS": {"S": "SS"},
    ":t": {"BOOL": True},
    ":x": {"S": "x"},
    ":three": {"N": "3"},
    ":ss": {"SS": ["b", "a"]},
    ":m": {"M": {"deep": {"N": "-3.0"}}},
    ":neg": {"N": "-3"},
    ":five": {"N": "5"},
    ":big": {"N": "12345678901234567890123456789012345679"},
    ":bigless": {"N": "1234567890123456789012345678901234567.7E1"},
    ":ns": {"NS": ["2.5", "1.0"]},
    ":bs": {"BS": ["AAE="]},
    ":bb": {"B": "AQ=="},
    ":l": {"L": [{"S": "x"}, {"N": "2.0"}, {"M": {"k": {"S": "v"}}}]},
}
VALUES = {key: parse_value(wire) for key, wire in WIRE_VALUES.items()}

CASES = [
    ("s = :s", True),
    ("n = :n", True),  # numbers compare by value
    ("n = :sn", False),  # different types are never equal
    ("n <> :sn", True),
    ("absent <> :s", True),  # a absent attribute differs from any value
    ("absent = :s", False),
    ("n < :n11", True),
    ("n <= :n", True),
    ("n > :n9", True),
    ("n >= :n11", False),
    ("s < :sn", False),  # S against S: "hello" > "10"
    ("n < :sn", False),  # N against S is unordered: false, never an error
    ("t < :t", False),  # BOOL is unordered
    ("b > :b0", True),  # binary by bytes
    ("n BETWEEN :n9 AND :n11", True),
    ("n BETWEEN :n AND :n", True),
    ("n BETWEEN :n11 AND :n11", False),
    ("s BETWEEN :a AND :x", True),
    ("n IN (:sn, :n9, :n)", True),
    ("n IN (:sn, :n9)", False),
    ("absent IN (:s)", False),
    ("attribute_exists(m.child.deep)", True),
    ("attribute_exists(m.child.nope)", False),
    ("attribute_not_exists(l[5])", True),
    ("attribute_exists(l[2].k)", True),
    ("attribute_type(s, :tS)", True),
    ("attribute_type(ss, :tSS)", True),
    ("attribute_type(n, :tS)", False),
    ("begins_with(s, :he)", True),
    ("begins_with(s, :ell)", False),
    ("begins_with(b, :b0)", True),
    ("begins_with(n, :he)", False),
    ("contains(s, :ell)", True),
    ("contains(ss, :a)", True),
    ("contains(ns, :two)", True),  # set members compare as numbers
    ("contains(bs, :b1)", True),
    ("contains(l, :x)", True),
    ("contains(l, :three)", False),
    ("contains(b, :b1)", True),
    ("size(s) = :five", True),
    ("size(b) = :three", True),
    ("size(ss) < :three", True),
    ("size(l) = :three", True),
    ("size(m) > :n9", False),
    ("size(n) = :n", False),  # size of a number is undefined: the comparison is false
    ("size(absent) = :n", False),
    ("ss = :ss", True),  # sets are equal as sets
    ("m.child = :m", True),  # maps compare deeply, numbers by value
    ("m.child.deep = :neg AND NOT s = :a", True),
    ("n = :n9 OR s = :s", True),
    ("NOT (n = :n9 OR s = :s)", False),
    ("l[1] = :two", False),
    ("l[0] = :x", True),
    ("big < :big", True),  # all 38 digits count
    ("big > :bigless", True),
    ("big BETWEEN :bigless AND :big", True),
    ("ns = :ns", True),  # set members compare as numbers, in any order
    ("bs = :bs", True),
    ("l = :l", True),  # lists compare element-wise, numbers by value
    ("contains(b, :bb)", True),  # 01 is inside 00 01 02
    ("b < :bb", True),  # 00 01 02 < 01: unsigned bytes, first byte decides
    ("begins_with(b, :bb)", False),
    (":n = n", True),  # a value on the left
    (":n9 < n", True),
    ("n <> :n", False),
    ("absent <> absent2", False),  # both missing: neither differs
    ("n BETWEEN :a AND :x", False),  # bounds of another type: false, never an error
    ("s > :t", False),  # against an unordered value: false
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_condition_semantics(text, expected):
    used = {
        k: v
        for k, v in VALUES.items()
        if k in text.replace("(", " ").replace(")", " ").replace(",", " ").split()
    }
    predicate = compile_condition(parse_condition(text), Bindings(None, used or None))
    assert predicate(ITEM) is expected


def test_names_substitute_into_paths():
    b = Bindings({"#m": "m", "#n": "name"}, {":v": parse_value({"S": "ann"})})
    assert compile_condition(parse_condition("#m.#n = :v"), b)(ITEM)
    b.check_unused()


def project(text, names=None):
    return compile_projection(parse_projection(text), Bindings(names)).apply(ITEM)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("s, n, absent", {"s": ITEM["s"], "n": ITEM["n"]}),
        ("m.child.deep", parse_item({"m": {"M": {"child": {"M": {"deep": {"N": "-3"}}}}}})),
        ("l[2].k, l[0]", {"l": {"L": [{"S": "x"}, {"M": {"k": {"S": "v"}}}]}}),
        ("l[9], m.nope, s.x", {}),
        ("m.#n, s", {"m": {"M": {"name": {"S": "ann"}}}, "s": ITEM["s"]}),
        ("ns, b", {"ns": ITEM["ns"], "b": ITEM["b"]}),
    ],
)
def test_projection_keeps_only_the_named_paths(text, expected):
    assert project(text, {"#n": "name"} if "#n" in text else None) == expected


def test_projection_does_not_modify_the_item():
    before = repr(ITEM)
    project("m.child, l[1]")
    assert repr(ITEM) == before
