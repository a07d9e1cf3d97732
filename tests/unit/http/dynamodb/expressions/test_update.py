"""Applying update expressions: SET, REMOVE, ADD, DELETE semantics and update-time errors."""

from __future__ import annotations

import copy

import pytest

from aiokv.http.dynamodb.expressions import Bindings, ExpressionError, compile_update, parse_update

INVALID = "The document path provided in the update expression is invalid for update"
MISSING = "The provided expression refers to an attribute that does not exist in the item"
BAD_TYPE = "An operand in the update expression has an incorrect data type"

ITEM = {
    "pk": {"S": "k"},
    "n": {"N": "5"},
    "s": {"S": "str"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "l": {"L": [{"S": "a"}, {"S": "b"}, {"S": "c"}]},
    "m": {"M": {"x": {"N": "1"}, "l": {"L": [{"N": "0"}]}}},
}

VALUES = {
    ":one": {"N": "1"},
    ":half": {"N": "0.5"},
    ":s": {"S": "new"},
    ":ss": {"SS": ["b", "c"]},
    ":ns": {"NS": ["2.0", "3"]},
    ":l": {"L": [{"S": "z"}]},
    ":a": {"SS": ["a"]},
    ":ab": {"SS": ["a", "b"]},
}


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
    assert run(text).get(path) == expected


def test_several_sections_apply_together():
    new = run("SET s = :s REMOVE n ADD ns :ns DELETE ss :a")
    assert (new["s"], "n" in new, new["ns"], new["ss"]) == (
        {"S": "new"},
        False,
        {"NS": ["1", "2", "3"]},
        {"SS": ["b"]},
    )


def test_appends_past_the_end_keep_their_order():
    new = run("SET l[10] = :s, l[11] = :one")
    assert new["l"]["L"][3:] == [{"S": "new"}, {"N": "1"}]


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
