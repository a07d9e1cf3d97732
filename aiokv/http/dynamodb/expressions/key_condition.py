"""KeyConditionExpression: a condition reduced to the key ranges a Query reads.

    key_condition := hash "=" v [AND range_condition]      (either order, parentheses allowed)
    range_condition := range ("=" | "<" | "<=" | ">" | ">=") v | range BETWEEN v AND v
                     | begins_with(range, v)

The expression parses as a condition; then, in the service's order, its shape is checked
(no OR, NOT, IN, <>, other functions, nested paths, two conditions on one key) and then its
keys against the table's key schema.  Those messages carry no "Invalid ...:" prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokv.http.dynamodb.expressions.ast import And, Between, Call, Compare, In, Node, Not, Or, Path
from aiokv.http.dynamodb.expressions.bindings import Bindings
from aiokv.http.dynamodb.expressions.errors import ExpressionError
from aiokv.http.dynamodb.expressions.evaluate import ConditionBinder, Predicate
from aiokv.http.dynamodb.expressions.values import AttributeValue

_FLIPPED = {"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
_BAD = "Invalid operator used in KeyConditionExpression: "
_BAD_CONDITION = "Invalid condition in KeyConditionExpression: "
NOT_SUPPORTED = "Query key condition not supported"


@dataclass(frozen=True, slots=True)
class KeyCondition:
    """What a Query reads: one partition, optionally a range of sort keys.

    Attributes:
        hash_value: the partition key's value.
        range_op: None, or one of = < <= > >= BETWEEN BEGINS_WITH (sort key on the left).
        range_values: the operands of range_op (two for BETWEEN).
        matches: the whole condition as `item -> bool`.
    """

    hash_value: AttributeValue
    range_op: str | None
    range_values: tuple[AttributeValue, ...]
    matches: Predicate


def _shape(binder: ConditionBinder, node: Node, found: dict[str, tuple[str, list[Node]]]) -> None:
    """Collect {key name: (op, value operands)}, raising the service's shape errors."""
    if isinstance(node, Or | Not | In) or (isinstance(node, Compare) and node.op == "<>"):
        word = node.op if isinstance(node, Compare) else type(node).__name__.upper()
        raise ExpressionError(_BAD + word)
    if isinstance(node, And):
        _shape(binder, node.left, found)
        _shape(binder, node.right, found)
        return
    if isinstance(node, Call):
        if node.name == "size":
            raise ExpressionError("KeyConditionExpressions cannot contain nested operations")
        if node.name != "begins_with":
            raise ExpressionError(_BAD + node.name)
        op, args = "BEGINS_WITH", list(node.args)
    elif isinstance(node, Between):
        op, args = "BETWEEN", [node.operand, node.low, node.high]
    else:
        assert isinstance(node, Compare)
        op, args = node.op, [node.left, node.right]
    if op in ("BETWEEN", "BEGINS_WITH") and not isinstance(args[0], Path):
        word = "BETWEEN" if op == "BETWEEN" else "begins_with"
        raise ExpressionError(
            f"{_BAD_CONDITION}{word} operator must have the key attribute as its first operand"
        )
    name, at = None, 0
    for i, arg in enumerate(args):
        if isinstance(arg, Call):
            raise ExpressionError("KeyConditionExpressions cannot contain nested operations")
        if isinstance(arg, Path):
            if name is not None:
                raise ExpressionError(
                    _BAD_CONDITION + "Multiple attribute names used in one condition"
                )
            path = binder.path(arg)
            if len(path) > 1:
                raise ExpressionError(
                    "KeyConditionExpressions cannot have conditions on nested attributes"
                )
            name, at = str(path[0]), i
    if name is None:
        raise ExpressionError(_BAD_CONDITION + "No key attribute specified")
    if name in found:
        raise ExpressionError("KeyConditionExpressions must only contain one condition per key")
    if at:
        op = _FLIPPED[op]
        args[0], args[1] = args[1], args[0]
    found[name] = (op, args[1:])


def compile_key_condition(
    tree: Node,
    bindings: Bindings,
    hash_key: str,
    range_key: str | None = None,
    key_types: dict[str, str] | None = None,
) -> KeyCondition:
    """Bind `tree` (from `parse_condition(text, "KeyConditionExpression")`) to a key range.

    Args:
        hash_key, range_key: the table's (or index's) key attribute names.
        key_types: attribute name -> S, N or B, to check the operands' types if given.

    Raises:
        ExpressionError: the service's message.
    """
    binder = ConditionBinder(bindings, "KeyConditionExpression")
    matches = binder.condition(tree)
    binder.raise_notes()
    found: dict[str, tuple[str, list[Node]]] = {}
    _shape(binder, tree, found)
    if range_key is None and len(found) > 1:
        raise ExpressionError(NOT_SUPPORTED)
    for key in (hash_key, range_key):
        if key is not None and key not in found and (key == hash_key or len(found) > 1):
            raise ExpressionError(f"Query condition missed key schema element: {key}")
    values: dict[str, tuple[AttributeValue, ...]] = {}
    for key, (_, operands) in found.items():
        values[key] = tuple(binder.value(o.key) for o in operands)  # type: ignore[union-attr]
        want = (key_types or {}).get(key)
        if want is not None and any(want not in x for x in values[key]):
            raise ExpressionError(
                "One or more parameter values were invalid: "
                "Condition parameter type does not match schema type"
            )
    if found[hash_key][0] != "=":
        raise ExpressionError(NOT_SUPPORTED)
    if range_key is not None and range_key in found:
        op = found[range_key][0]
        return KeyCondition(values[hash_key][0], op, values[range_key], matches)
    return KeyCondition(values[hash_key][0], None, (), matches)
