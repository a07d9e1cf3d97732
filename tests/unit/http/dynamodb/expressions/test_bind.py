"""Binding: names and values defined and used, overlapping paths, operand types, key conditions."""
# ruff: noqa: E501  (tables of the service's messages, compared whole, one case per line)

from __future__ import annotations

import pytest

from aiokv.http.dynamodb.expressions import (
    Bindings,
    ExpressionError,
    compile_condition,
    compile_key_condition,
    compile_projection,
    compile_update,
    parse_condition,
    parse_projection,
    parse_update,
)
from aiokv.http.dynamodb.types import parse_value

S, N = {"S": "x"}, {"N": "1"}  # wire JSON: `held` parses values as the operations will


def held(values):
    """ExpressionAttributeValues in the held form (None and {} pass through unchanged)."""
    return None if values is None else {k: parse_value(v) for k, v in values.items()}


def update_error(text, names=None, values=None):
    with pytest.raises(ExpressionError) as e:
        compile_update(parse_update(text), Bindings(names, held(values)))
    return e.value.message


def condition_error(text, names=None, values=None, label="ConditionExpression"):
    with pytest.raises(ExpressionError) as e:
        compile_condition(parse_condition(text, label), Bindings(names, held(values)), label)
    return e.value.message


def test_undefined_name_is_reported_with_the_expression_label():
    assert condition_error("#missing = :v", None, {":v": S}, "FilterExpression") == (
        "Invalid FilterExpression: An expression attribute name used in the document path is "
        "not defined; attribute name: #missing"
    )


def test_undefined_value_is_reported():
    assert update_error("SET attr1 = :v") == (
        "Invalid UpdateExpression: An expression attribute value used in expression is not "
        "defined; attribute value: :v"
    )


def test_undefined_name_beats_undefined_value_in_updates():
    assert "attribute name" in update_error("SET a = :v, #n = :w", {"#x": "x"}, {":w": S})


@pytest.mark.parametrize(
    ("names", "values", "message"),
    [
        (
            {"#unused": "x"},
            {":v": S},
            "ExpressionAttributeNames unused in expressions: keys: {#unused}",
        ),
        (
            None,
            {":v": S, ":unused": S},
            "ExpressionAttributeValues unused in expressions: keys: {:unused}",
        ),
        (
            {"#a": "a", "#b": "b"},
            {":v": S},
            "ExpressionAttributeNames unused in expressions: keys: {#a, #b}",
        ),
    ],
)
def test_unused_names_and_values_are_reported(names, values, message):
    b = Bindings(names, held(values))
    compile_update(parse_update("SET attr1 = :v"), b)
    with pytest.raises(ExpressionError) as e:
        b.check_unused()
    assert e.value.message == "Value provided in " + message


def test_names_used_by_any_expression_of_the_request_count_as_used():
    b = Bindings({"#a": "a", "#p": "p"}, held({":v": S}))
    compile_update(parse_update("SET #a = :v"), b)
    compile_projection(parse_projection("#p"), b)
    b.check_unused()


@pytest.mark.parametrize(
    ("names", "values", "message"),
    [
        ({}, None, "ExpressionAttributeNames must not be empty"),
        (None, {}, "ExpressionAttributeValues must not be empty"),
        ({"a": "a"}, None, 'ExpressionAttributeNames contains invalid key: Syntax error; key: "a"'),
        (None, {"b": S}, 'ExpressionAttributeValues contains invalid key: Syntax error; key: "b"'),
    ],
)
def test_malformed_maps_are_rejected(names, values, message):
    with pytest.raises(ExpressionError) as e:
        Bindings(names, held(values))
    assert e.value.message == message


@pytest.mark.parametrize(
    ("text", "one", "two", "what"),
    [
        ("SET a = :v REMOVE a.b", "[a]", "[a, b]", "overlap"),
        (
            "set d[1] = :v, d.b = :v, c[1].a = :v, #c = if_not_exists(a, :v)",
            "[c, [1], a]",
            "[c]",
            "overlap",
        ),
        ("set #c[3].#d = :v, #c[3] = :v", "[c, [3], [3]]", "[c, [3]]", "overlap"),
        ("remove a.#c set a[1] = :v", "[a, c]", "[a, [1]]", "conflict"),
        ("SET a = :v ADD a :n", "[a]", "[a]", "overlap"),
    ],
)
def test_update_paths_may_not_overlap_or_conflict(text, one, two, what):
    names = {"#c": "c", "#d": "[3]"}
    used = {k: v for k, v in names.items() if k in text}
    assert update_error(text, used or None, {":v": S, ":n": N}) == (
        f"Invalid UpdateExpression: Two document paths {what} with each other; must remove or "
        f"rewrite one of these paths; path one: {one}, path two: {two}"
    )


def test_projection_paths_may_not_overlap():
    with pytest.raises(ExpressionError, match=r"overlap .* path one: \[a\], path two: \[a, b\]$"):
        compile_projection(parse_projection("a, a.b"), Bindings())


@pytest.mark.parametrize(
    ("action", "value", "wire"),
    [
        ("ADD", S, "STRING"),
        ("DELETE", S, "STRING"),
        ("ADD", {"NULL": True}, "NULL"),
        ("ADD", {"BOOL": False}, "BOOLEAN"),
        ("DELETE", {"B": "YQ=="}, "BINARY"),
        ("ADD", {"M": {}}, "MAP"),
        ("DELETE", {"L": []}, "LIST"),
        ("DELETE", N, "NUMBER"),
    ],
)
def test_add_and_delete_take_only_numbers_and_sets(action, value, wire):
    assert update_error(f"{action} a.b :a", None, {":a": value}) == (
        "Invalid UpdateExpression: Incorrect operand type for operator or function; "
        f"operator: {action}, operand type: {wire}"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("set a = list_append(:s, a)", "operator or function: list_append, operand type: S"),
        ("set a = a + :s", "operator or function: +, operand type: S"),
        ("set a = :l - a", "operator or function: -, operand type: L"),
    ],
)
def test_function_operand_types_are_checked(text, message):
    values = {":s": S, ":l": {"L": []}}
    used = {k: v for k, v in values.items() if k in text}
    assert update_error(text, None, used) == (
        f"Invalid UpdateExpression: Incorrect operand type for operator or function; {message}"
    )


def test_if_not_exists_needs_a_path_and_two_operands():
    assert update_error("set a = if_not_exists(:v, c)", None, {":v": S}).endswith(
        "Operator or function requires a document path; operator or function: if_not_exists"
    )
    assert update_error("set a = if_not_exists(c)").endswith(
        "Incorrect number of operands for operator or function; operator or function: "
        "if_not_exists, number of operands: 1"
    )


@pytest.mark.parametrize(
    ("text", "values", "message"),
    [
        ("attribute_exists(a, b)", {}, "Incorrect number of operands for operator or function; operator or function: attribute_exists, number of operands: 2"),
        ("attribute_exists(:v)", {":v": S}, "Operator or function requires a document path; operator or function: attribute_exists"),
        ("begins_with(a, :v)", {":v": N}, "Incorrect operand type for operator or function; operator or function: begins_with, operand type: N"),
        ("size(:v) > :v", {":v": N}, "Incorrect operand type for operator or function; operator or function: size, operand type: N"),
        ("attribute_type(a, :v)", {":v": N}, "Incorrect operand type for operator or function; operator or function: attribute_type, operand type: N"),
        ("attribute_type(a, :v)", {":v": {"S": "X"}}, "Invalid attribute type name found; type: X, valid types: {B,NULL,SS,BOOL,L,BS,N,NS,S,M}"),
        ("a = a", {}, "The first operand must be distinct from the remaining operands for this operator or function; operator: =, first operand: [a]"),
        ("a BETWEEN :hi AND :lo", {":lo": N, ":hi": {"N": "2"}}, "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:2}, upper bound operand: AttributeValue: {N:1}"),
        ("a BETWEEN :n AND :s", {":n": N, ":s": S}, "The BETWEEN operator requires same data type for lower and upper bounds; lower bound operand: AttributeValue: {N:1}, upper bound operand: AttributeValue: {S:x}"),
        ("a BETWEEN :hi AND :lo", {":lo": {"N": "1E1"}, ":hi": {"N": "20.0"}}, "The BETWEEN operator requires upper bound to be greater than or equal to lower bound; lower bound operand: AttributeValue: {N:20}, upper bound operand: AttributeValue: {N:10}"),
    ],
)  # fmt: skip
def test_condition_operand_checks(text, values, message):
    assert condition_error(text, None, values or None) == f"Invalid ConditionExpression: {message}"


def key(text, values, hash_key="pk", range_key="sk", types=None):
    label = "KeyConditionExpression"
    return compile_key_condition(
        parse_condition(text, label), Bindings(None, held(values)), hash_key, range_key, types
    )


def test_key_condition_reduces_to_partition_and_range():
    kc = key("pk = :p AND sk BETWEEN :a AND :b", {":p": S, ":a": {"S": "a"}, ":b": {"S": "b"}})
    assert (kc.hash_value, kc.range_op, kc.range_values) == (S, "BETWEEN", ({"S": "a"}, {"S": "b"}))
    kc = key(":v < sk AND pk = :p", {":p": S, ":v": S})
    assert (kc.range_op, kc.range_values) == (">", (S,))
    assert key("begins_with(sk, :v) AND pk = :p", {":p": S, ":v": S}).range_op == "BEGINS_WITH"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pk = :p OR sk = :s", "Invalid operator used in KeyConditionExpression: OR"),
        ("NOT pk = :p", "Invalid operator used in KeyConditionExpression: NOT"),
        ("pk IN (:p, :s)", "Invalid operator used in KeyConditionExpression: IN"),
        ("pk <> :p", "Invalid operator used in KeyConditionExpression: <>"),
        (
            "attribute_exists(pk)",
            "Invalid operator used in KeyConditionExpression: attribute_exists",
        ),
        ("contains(pk.d, :p)", "Invalid operator used in KeyConditionExpression: contains"),
        ("size(pk) = :p", "KeyConditionExpressions cannot contain nested operations"),
        ("pk.x = :p", "KeyConditionExpressions cannot have conditions on nested attributes"),
        (
            "pk = sk",
            "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
        ),
        ("pk = :p AND pk = :s", "KeyConditionExpressions must only contain one condition per key"),
        ("sk = :s", "Query condition missed key schema element: pk"),
        ("pk = :p AND colour = :s", "Query condition missed key schema element: sk"),
        ("pk < :p", "Query key condition not supported"),
    ],
)
def test_key_condition_shape_and_schema_errors(text, message):
    values = {k: S for k in (":p", ":s") if k in text}
    with pytest.raises(ExpressionError) as e:
        key(text, values or None)
    assert e.value.message == message


def test_key_condition_checks_operand_types_against_the_schema():
    with pytest.raises(
        ExpressionError, match="Condition parameter type does not match schema type"
    ):
        key("pk = :p", {":p": N}, types={"pk": "S"})
