"""Expression grammar: the service's syntax errors, precedence, and notes raised after parsing."""

from __future__ import annotations

import pytest

from aiokv.http.dynamodb.expressions import (
    ExpressionError,
    parse_condition,
    parse_projection,
    parse_update,
)
from aiokv.http.dynamodb.expressions.ast import And, Compare, Not, Or, Path

# (expression, bad token, near): the service's answers as recorded by moto's and the
# dynamodb-conformance suite's tests against real DynamoDB.
UPDATE_SYNTAX = [
    ("SET attrName = 3", "3", "= 3"),
    ("SET MyStr[ 3", "<EOF>", "3"),
    ("SET MyStr[3 )", ")", "3 )"),
    ("SET 2", "2", "SET 2"),
    ("2", "2", "2"),
    ("SET ) 3", ")", "SET ) 3"),
    ("SET MyStr[ 3 ", "<EOF>", "3 "),
    ("SET MyStr = (:_val", "<EOF>", ":_val"),
    ("SET MyStr = [:_val  ", "[", "= [:_val"),
    ("SET MyStr = (:_val + (:val2", "<EOF>", ":val2"),
    ("SET MyStr = ):_val + :val2", ")", "= ):_val"),
    ("  RESET NonExistent value", "RESET", "  RESET NonExistent"),
    ("RESET", "RESET", "RESET"),
    ("SET a [  2 ]. b = 5", "5", "= 5"),
    ("SET a [  [2] ]. b = 5", "[", "[  [2"),
    ("SET a [2 1]. b = 5", "1", "2 1]"),
    ("SET #a a = 5", "a", "#a a ="),
    ("SET MyStr = NoExist + + :_val ", "+", "+ + :_val"),
    ("REMOVE NoExist + ", "+", "NoExist + "),
    ("ADD attr val foobar", "val", "attr val foobar"),
    ("ADD attr :val foobar", "foobar", ":val foobar"),
    ("DELETE attr val", "val", "attr val"),
    ("SET path = VALUE 1", "1", "VALUE 1"),
    ("REMOVE if_not_exists(a,b)", "(", "if_not_exists(a"),
    ("SET attrName = _idid", "_", "= _idid"),
    ("INVALID SYNTAX HERE", "INVALID", "INVALID SYNTAX"),
    ("SET a = :v,", "<EOF>", ","),
    ("SET str_set bad_value", "bad_value", "str_set bad_value"),
    ("SET a = b + c + d", "+", "c + d"),
    ("set a = (b + c) + d", "+", ") + d"),
    ("set a = b / c", "/", "b / c"),
    ("set :a = b", ":a", "set :a ="),
]


@pytest.mark.parametrize(("text", "token", "near"), UPDATE_SYNTAX)
def test_update_syntax_error_names_the_token_and_its_neighbours(text, token, near):
    with pytest.raises(ExpressionError) as e:
        parse_update(text)
    assert (
        e.value.message
        == f'Invalid UpdateExpression: Syntax error; token: "{token}", near: "{near}"'
    )


@pytest.mark.parametrize(
    ("text", "token", "near"),
    [
        ("foo", "<EOF>", "foo"),
        ("s == :v", "=", "== :v"),
        ("s = ", "<EOF>", "= "),
        ("a = :v = :w", "=", ":v = :w"),
        ("(a AND b)", "AND", "a AND b"),
        ("a = :v AND b", "<EOF>", "b"),
        ("(a = :v) = :w", "=", ") = :w"),
        ("a = 1", "1", "= 1"),
        ("a BETWEEN :x OR :y", "OR", ":x OR :y"),
        ("a + :v = :w", "+", "a + :v"),
    ],
)
def test_condition_syntax_errors(text, token, near):
    with pytest.raises(ExpressionError) as e:
        parse_condition(text, "FilterExpression")
    assert (
        e.value.message
        == f'Invalid FilterExpression: Syntax error; token: "{token}", near: "{near}"'
    )


def test_projection_syntax_error_on_unknown_characters():
    with pytest.raises(ExpressionError) as e:
        parse_projection("!!! INVALID !!!")
    assert e.value.message == 'Invalid ProjectionExpression: Syntax error; token: "!", near: "!!"'


@pytest.mark.parametrize("parse", [parse_condition, parse_update, parse_projection])
def test_empty_expression_is_rejected(parse):
    with pytest.raises(ExpressionError, match=r"The expression can not be empty;$"):
        parse("")


def test_and_binds_tighter_than_or_and_not_tighter_than_and():
    tree = parse_condition("a = :a OR NOT b = :b AND c = :c")
    assert isinstance(tree, Or)
    assert isinstance(tree.right, And)
    assert isinstance(tree.right.left, Not)


def test_parentheses_override_precedence():
    tree = parse_condition("(a = :a OR b = :b) AND c = :c")
    assert isinstance(tree, And)
    assert isinstance(tree.left, Or)


def test_keywords_are_case_insensitive():
    assert isinstance(parse_condition("a = :a or b = :b aNd c = :c"), Or)
    assert len(parse_update("set a = :a remove b").actions) == 2


def test_parenthesised_operand_may_be_compared():
    assert parse_condition("(a) = :v") == Compare(
        "=", Path(("a",)), parse_condition("a = :v").right
    )


def test_document_paths_take_maps_and_list_indexes():
    (path,) = parse_projection("a.#b[2][10].c").paths
    assert path.parts == ("a", "#b", 2, 10, "c")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("((a = :v))", "The expression has redundant parentheses;"),
        ("((a)) = :v", "The expression has redundant parentheses;"),
        ("foo(a)", "Invalid function name; function: foo"),
        (
            "if_not_exists(a, :v)",
            "The function is not allowed in a condition expression; function: if_not_exists",
        ),
        (
            "size(a)",
            "The function is not allowed to be used this way in an expression; function: size",
        ),
        (
            "attribute_exists(a) = :v",
            "The function is not allowed to be used this way in an expression; "
            "function: attribute_exists",
        ),
        ("name = :v", "Attribute name is a reserved keyword; reserved keyword: name"),
        ("a.Status = :v", "Attribute name is a reserved keyword; reserved keyword: Status"),
        # priority: an unknown function beats a reserved word before it
        ("name = :v AND foo(a)", "Invalid function name; function: foo"),
    ],
)
def test_condition_notes(text, message):
    with pytest.raises(ExpressionError) as e:
        parse_condition(text)
    assert e.value.message == f"Invalid ConditionExpression: {message}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "set a = #c set c = :d",
            'The "SET" section can only be used once in an update expression;',
        ),
        (
            "remove a set b = c remove e",
            'The "REMOVE" section can only be used once in an update expression;',
        ),
        (
            "set #c = :c set abOrt = :x",
            "Attribute name is a reserved keyword; reserved keyword: abOrt",
        ),
        ("set a = size(b)", "The function is not allowed in an update expression; function: size"),
        ("set a = if_not_exist(a, :v)", "Invalid function name; function: if_not_exist"),
    ],
)
def test_update_notes(text, message):
    with pytest.raises(ExpressionError) as e:
        parse_update(text)
    assert e.value.message == f"Invalid UpdateExpression: {message}"


def test_syntax_error_beats_an_earlier_reserved_word():
    with pytest.raises(ExpressionError, match="Syntax error"):
        parse_update("SET name = :v +")


def test_name_with_a_second_hash_is_an_invalid_key():
    with pytest.raises(ExpressionError) as e:
        parse_update("SET #va#l2 = :v")
    assert (
        e.value.message
        == 'ExpressionAttributeNames contains invalid key: Syntax error; key: "#va#l2"'
    )


def test_remove_is_not_a_reserved_word_in_projections():
    assert parse_projection("remove").paths == (Path(("remove",)),)


def test_parse_is_cached_and_cached_errors_still_raise():
    assert parse_update("SET a = :v") is parse_update("SET a = :v")
    for _ in range(2):
        with pytest.raises(ExpressionError, match="Syntax error"):
            parse_update("SET a =")
