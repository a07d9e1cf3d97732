"""Applying update expressions: SET, REMOVE, ADD, DELETE semantics and update-time errors.

Items and values are built with types.parse_item / parse_value (the held form the operations
pass in); expected values are written as wire JSON and parsed the same way, so a result must
be exactly the held form: canonical numbers, sorted duplicate-free set tuples."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from aiokv.http.dynamodb.expressions import Bindings, ExpressionError, compile_update, parse_update
from aiokv.http.dynamodb.numbers import OVERFLOW, UNDERFLOW
from aiokv.http.dynamodb.types import parse_item, parse_value, render

INVALID = "The document path provided in the update expression is invalid for update"
MISSING = "The provided expression refers to an attribute that does not exist in the item"
BAD_TYPE = "An operand in the update expression has an incorrect data type"

ITEM = parse_item(
    {
        "pk": {"S": "k"},
        "n": {"N": "5"},
        "s": {"S": "str"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "l": {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}]},
        "m": {"M": {"x": {"N": "1"}, "l": {"L": [{"N": "0"}]}}},
        "bs": {"BS": ["AQ==", "/w=="]},  # 01, ff
        "big": {"N": "99999999999999999999999999999999999999"},
        "huge": {"N": "9.9E125"},
        "tiny": {"N": "1.1E-130"},
    }
)

WIRE_VALUES = {
    ":one": {"N": "1"},
    ":half": {"N": "0.5"},
    ":s": {"S": "new"},
    ":ss": {"SS": ["b", "c"]},
    ":ns": {"NS": ["2.0", "3"]},
    ":l": {"L": [{"S": "z"}]},
    ":a": {"SS": ["a"]},
    ":ab": {"SS": ["a", "b"]},
    ":mixed": {"SS": ["é", "Z", "0", "a"]},
    ":nums": {"NS": ["10", "-1", "2.5", "1e0"]},
    ":bytes": {"BS": ["AA==", "gA=="]},  # 00, 80
    ":tenth": {"N": "0.1"},
    ":fifth": {"N": "0.2"},
    ":five": {"N": "5"},
    ":e125": {"N": "1E125"},
    ":e130": {"N": "1E-130"},
}
VALUES = {key: parse_value(wire) for key, wire in WIRE_VALUES.items()}


def run(text, item=ITEM):
    words = text.replace(",", " ").replace("(", " ").replace(")", " ").split()
    used = {k: v for k, v in VALUES.items() if k in words}
    plan = compile_update(parse_update(text), Bindings(None, used or None))
    return plan.apply(item)


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        ("SET s = :s", "s", {"S": "new"}),
        ("SET fresh = :s", "fresh", {"S": "new"}),
        ("SET n = n + :one", "n", {"N": "6"}),
        ("SET n = n - :half", "n", {"N": "4.5"}),
        ("SET n = :one - n", "n", {"N": "-4"}),
        ("SET x = if_not_exists(x, :one)", "x", {"N": "1"}),
        ("SET n = if_not_exists(n, :one)", "n", {"N": "5"}),
        (
            "SET l = list_append(l, :l)",
            "l",
            {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}, {"S": "z"}]},
        ),
        (
            "SET l = list_append(:l, l)",
            "l",
            {"L": [{"S": "z"}, {"S": "a"}, {"S": "b"}, {"S": "c"}]},
        ),
        ("SET l[1] = :s", "l", {"L": [{"S": "a"}, {"S": "new"}, {"S": "c"}]}),
        ("SET l[99] = :s", "l", {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}, {"S": "new"}]}),
        (
            "SET m.y = :s",
            "m",
            {"M": {"x": {"N": "1"}, "l": {"L": [{"N": "0"}]}, "y": {"S": "new"}}},
        ),
        ("SET m.l[0] = :s", "m", {"M": {"x": {"N": "1"}, "l": {"L": [{"S": "new"}]}}}),
        ("SET s = n, n = s", "s", {"N": "5"}),  # values come from the item before the update
        ("REMOVE l[0], l[2]", "l", {"L": [{"S": "b"}]}),  # indexes of the list before
        ("REMOVE l[7]", "l", ITEM["l"]),
        ("REMOVE m.x", "m", {"M": {"l": {"L": [{"N": "0"}]}}}),
        ("ADD n :one", "n", {"N": "6"}),
        ("ADD fresh :one", "fresh", {"N": "1"}),
        ("ADD ss :ss", "ss", {"SS": ["a", "b", "c"]}),
        ("ADD ns :ns", "ns", {"NS": ["1", "2", "3"]}),  # 2.0 is already there as 2
        ("ADD fresh :ss", "fresh", {"SS": ["b", "c"]}),
        ("DELETE ss :a", "ss", {"SS": ["b"]}),
        ("DELETE ns :ns", "ns", {"NS": ["1"]}),
        ("DELETE ss :ab", "ss", None),  # an emptied set is removed
        ("DELETE absent :a", "absent", None),
        ("REMOVE s", "s", None),
        ("REMOVE absent", "absent", None),
    ],
)
def test_update_actions(text, path, expected):
    assert run(text).get(path) == (parse_value(expected) if expected is not None else None)


@pytest.mark.parametrize(
    ("text", "path", "expected"),
    [
        ("ADD ss :mixed", "ss", {"SS": ("0", "Z", "a", "b", "é")}),  # code point order
        ("ADD ns :nums", "ns", {"NS": (-1, 1, 2, Decimal("2.5"), 10)}),  # numeric order
        ("ADD bs :bytes", "bs", {"BS": (b"\x00", b"\x01", b"\x80", b"\xff")}),  # unsigned
        ("ADD fresh :nums", "fresh", {"NS": (-1, 1, Decimal("2.5"), 10)}),
        ("DELETE ss :a", "ss", {"SS": ("b",)}),
        ("DELETE ns :nums", "ns", {"NS": (2,)}),  # 1e0 removes 1
    ],
)
def test_set_results_are_sorted_duplicate_free_tuples(text, path, expected):
    assert run(text)[path] == expected


def test_results_are_canonical_numbers():
    new = run("SET n = n + :five, s = :tenth + :fifth ADD m.x :one")
    assert new["n"]["N"].as_tuple() == parse_value({"N": "10"})["N"].as_tuple()
    assert (new["s"], new["m"]["M"]["x"]) == ({"N": Decimal("0.3")}, {"N": Decimal(2)})
    assert render({k: new[k] for k in ("n", "s")}) == b'{"n":{"N":"10"},"s":{"N":"0.3"}}'


def test_sums_keep_all_38_digits():
    new = run("SET big = big - :one")
    assert render(new["big"]) == b'{"N":"99999999999999999999999999999999999998"}'
    new = run("ADD big :one")  # 1E38 needs one digit
    assert render(new["big"]) == b'{"N":"100000000000000000000000000000000000000"}'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ADD big :half", OVERFLOW),  # 39 digits: the service reports overflow, never rounds
        ("SET big = :tenth + big", OVERFLOW),
        ("ADD huge :e125", OVERFLOW),  # 1.09E126: out of range
        ("SET tiny = tiny - :e130", UNDERFLOW),  # 1E-131
    ],
)
def test_arithmetic_fails_with_the_services_number_errors(text, message):
    with pytest.raises(ExpressionError) as e:
        run(text)
    assert e.value.message == message


def test_several_sections_apply_together():
    new = run("SET s = :s REMOVE n ADD ns :ns DELETE ss :a")
    assert (new["s"], "n" in new, new["ns"], new["ss"]) == (
        {"S": "new"},
        False,
        parse_value({"NS": ["1", "2", "3"]}),
        {"SS": ("b",)},
    )


def test_appends_past_the_end_keep_their_order():
    new = run("SET l[10] = :s, l[11] = :one")
    assert new["l"]["L"][3:] == [{"S": "new"}, parse_value({"N": "1"})]


def test_the_input_item_is_not_modified():
    before = copy.deepcopy(ITEM)
    run("SET m.l[0] = :s, l[1] = :s REMOVE m.x ADD ss :ss DELETE ns :ns")
    assert before == ITEM


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SET absent.x = :s", INVALID),
        ("SET s.x = :s", INVALID),
        ("SET m[0] = :s", INVALID),
        ("REMOVE absent.x", INVALID),
        ("ADD absent.x :one", INVALID),
        ("SET n = absent + :one", MISSING),
        ("SET n = s + :one", BAD_TYPE),
        ("SET l = list_append(s, :l)", BAD_TYPE),
        ("ADD s :one", BAD_TYPE),
        ("ADD ss :ns", BAD_TYPE),
        ("DELETE ns :a", BAD_TYPE),
    ],
)  # fmt: skip
def test_update_time_errors(text, message):
    with pytest.raises(ExpressionError) as e:
        run(text)
    assert e.value.message == message


def test_plan_exposes_resolved_target_paths():
    b = Bindings({"#k": "pk"}, {":s": VALUES[":s"]})
    plan = compile_update(parse_update("SET #k = :s, m.l[0] = :s"), b)
    assert plan.paths == [("pk",), ("m", "l", 0)]
