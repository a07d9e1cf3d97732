"""Binding an update expression and applying it to an item.

Checks after parsing, in the service's priority: an undefined #name, an undefined :value,
overlapping then conflicting target paths, an ADD/DELETE operand of the wrong type, a
function with the wrong operands.  Applying, the service's semantics:

1. Every SET value is computed from the item as it was before the update.
2. SET replaces or creates; on a list index past the end it appends.  SET, ADD and DELETE
   need the path's parent to exist with the right type, as does REMOVE; otherwise "The
   document path provided in the update expression is invalid for update".
3. REMOVE of a missing attribute or index does nothing; list removals use the indexes of
   the list before the update.
4. ADD adds to a number (a missing one counts as 0) or unions into a set; DELETE subtracts
   from a set and removes an emptied set; any other stored type is "An operand in the update
   expression has an incorrect data type".  Arithmetic is numbers.py's (via adapters), so a
   result beyond 38 digits or the range fails with the service's text.
5. The input item is never modified: containers on the touched paths are copied.
6. Items and values are in the held form of types.py, and so is the result: numbers are
   canonical Decimals, sets sorted duplicate-free tuples (`adapters.canonical_set`).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from itertools import filterfalse
from typing import Any

from aiokv.http.dynamodb.expressions import adapters
from aiokv.http.dynamodb.expressions.ast import Arith, Call, Node, Path, Update
from aiokv.http.dynamodb.expressions.bindings import Bindings
from aiokv.http.dynamodb.expressions.errors import ExpressionError
from aiokv.http.dynamodb.expressions.evaluate import Binder, operand_message
from aiokv.http.dynamodb.expressions.paths import ResolvedPath, first_clash, get
from aiokv.http.dynamodb.expressions.values import AttributeValue, Item, type_of

INVALID_PATH = "The document path provided in the update expression is invalid for update"
BAD_TYPE = "An operand in the update expression has an incorrect data type"
MISSING = "The provided expression refers to an attribute that does not exist in the item"
_WIRE_TYPE = {"S": "STRING", "N": "NUMBER", "B": "BINARY", "NULL": "NULL", "BOOL": "BOOLEAN"}
_WIRE_TYPE |= {"L": "LIST", "M": "MAP"}
_SETS = ("SS", "NS", "BS")
_REMOVED: AttributeValue = {}  # placeholder of a removed list element until the lists are compacted

Compute = Callable[[Item], AttributeValue]


def _fail(message: str) -> Any:
    raise ExpressionError(message)


class UpdatePlan:
    """A bound update expression: `apply(item) -> new item`.

    Attributes:
        paths: the target path of each action, #names resolved, in source order (the caller
            checks them against the key attributes).
    """

    __slots__ = ("actions", "paths")

    def __init__(self, actions: list[tuple[str, ResolvedPath, Any]]) -> None:
        self.actions = actions
        self.paths = [path for _, path, _ in actions]

    def apply(self, item: Item) -> Item:
        """The item after the update.

        Raises:
            ExpressionError: one of the service's update-time errors (see the module doc).
        """
        computed = [f(item) if kind == "SET" else f for kind, _, f in self.actions]
        new: Item = dict(item)
        copied: set[int] = set()
        shrunk: list[list[AttributeValue]] = []
        for (kind, path, _), operand in zip(self.actions, computed, strict=True):
            last: Any = path[-1]
            parent: Any
            if len(path) == 1:  # a top-level attribute: the common case, no containers to copy
                parent = new
                old = new.get(last)
            else:
                parent = _parent(new, path, copied)
                if parent is None:
                    _fail(INVALID_PATH)
                if type(parent) is list:
                    old = parent[last] if last < len(parent) else None
                else:
                    old = parent.get(last)
            if old is _REMOVED:
                old = None
            if kind == "SET":
                _store(parent, last, operand)
            elif kind == "REMOVE":
                if old is not None:
                    _drop(parent, last, shrunk)
            elif kind == "ADD":
                _store(parent, last, _add(old, operand))
            elif old is not None:  # DELETE
                left = _subtract(old, operand)
                if left is None:
                    _drop(parent, last, shrunk)
                else:
                    _store(parent, last, left)
        for items in shrunk:
            items[:] = [x for x in items if x is not _REMOVED]
        return new


def _parent(
    root: Item, path: ResolvedPath, copied: set[int]
) -> dict[str, AttributeValue] | list[AttributeValue] | None:
    """The (copied) container that holds path[-1], or None when it is missing or mistyped."""
    container: Any = root
    part: Any
    for depth in range(len(path) - 1):
        part, nxt = path[depth], path[depth + 1]
        if type(container) is list:
            child = container[part] if part < len(container) else None
        else:
            child = container.get(part)
        tag = "L" if type(nxt) is int else "M"
        if child is None or tag not in child:
            return None
        if id(child) not in copied:
            inner = child[tag]
            child = {tag: list(inner) if tag == "L" else dict(inner)}
            container[part] = child
            copied.add(id(child))
        container = child[tag]
    if (type(container) is list) != (type(path[-1]) is int):
        return None
    return container  # type: ignore[no-any-return]


def _store(parent: Any, last: Any, value: AttributeValue) -> None:
    if type(parent) is list and last >= len(parent):
        parent.append(value)
    else:
        parent[last] = value


def _drop(parent: Any, last: Any, shrunk: list[list[AttributeValue]]) -> None:
    if type(parent) is list:
        parent[last] = _REMOVED
        shrunk.append(parent)
    else:
        del parent[last]


def _add(old: AttributeValue | None, value: AttributeValue) -> AttributeValue:
    tag = type_of(value)
    if old is None:
        return value
    if tag not in old:
        _fail(BAD_TYPE)
    if tag == "N":
        return {"N": adapters.add_numbers(old["N"], value["N"])}
    have = old[tag]
    union = set(have).union(value[tag])
    return old if len(union) == len(have) else {tag: adapters.canonical_set(union)}


def _subtract(old: AttributeValue, value: AttributeValue) -> AttributeValue | None:
    tag = type_of(value)
    if tag not in old:
        _fail(BAD_TYPE)
    gone = set(value[tag])
    left = tuple(filterfalse(gone.__contains__, old[tag]))  # a subsequence stays sorted
    return {tag: left} if left else None


class UpdateBinder(Binder):
    priority = ("names", "values", "overlap", "operand", "function")

    def compute(self, node: Node) -> tuple[Compute, str | None]:
        """`item -> value` for a SET operand, and its type when known before the item."""
        if isinstance(node, Path):
            path = self.path(node)
            return _read(path), None
        if isinstance(node, Arith):
            (left, lt), (right, rt) = self.compute(node.left), self.compute(node.right)
            for tag in (lt, rt):
                if tag not in (None, "N"):
                    self.note("function", operand_message(node.op, tag))
                    break
            combine = adapters.add_numbers if node.op == "+" else adapters.subtract_numbers
            return lambda item: {"N": combine(_number(left(item)), _number(right(item)))}, "N"
        if isinstance(node, Call):
            return self.call(node)
        const = self.value(node.key, "values")  # type: ignore[union-attr]
        return lambda item: const, type_of(const)

    def call(self, node: Call) -> tuple[Compute, str | None]:
        args = [self.compute(a) for a in node.args]
        if len(args) != 2:
            self.note(
                "function",
                "Incorrect number of operands for operator or function; operator or function: "
                f"{node.name}, number of operands: {len(args)}",
            )
            return lambda item: {"NULL": True}, None
        (first, ft), (second, st) = args
        if node.name == "if_not_exists":
            if not isinstance(node.args[0], Path):
                self.note(
                    "function",
                    "Operator or function requires a document path; operator or function: "
                    "if_not_exists",
                )
                return first, ft
            path = self.path(node.args[0])
            return lambda item: get(item, path) or second(item), st
        for tag in (ft, st):
            if tag not in (None, "L"):
                self.note("function", operand_message("list_append", tag))
                break
        return lambda item: {"L": _list(first(item)) + _list(second(item))}, "L"

    def plan(self, tree: Update) -> UpdatePlan:
        actions: list[tuple[str, ResolvedPath, Any]] = []
        for action in tree.actions:
            path = self.path(action.path)
            if action.kind == "SET":
                assert action.value is not None
                actions.append(("SET", path, self.compute(action.value)[0]))
            elif action.kind == "REMOVE":
                actions.append(("REMOVE", path, None))
            else:
                value = self.value(action.value.key, "values")  # type: ignore[union-attr]
                tag = type_of(value)
                if tag not in _SETS and not (action.kind == "ADD" and tag == "N"):
                    self.note(
                        "operand",
                        "Incorrect operand type for operator or function; operator: "
                        f"{action.kind}, operand type: {_WIRE_TYPE.get(tag, tag)}",
                    )
                actions.append((action.kind, path, value))
        clash = first_clash([path for _, path, _ in actions])
        if clash is not None:
            self.note("overlap", clash)
        self.raise_notes()
        return UpdatePlan(actions)


def _read(path: ResolvedPath) -> Compute:
    def read(item: Item) -> AttributeValue:
        found = get(item, path)
        return found if found is not None else _fail(MISSING)

    return read


def _number(value: AttributeValue) -> Decimal:
    found = value.get("N")
    return found if found is not None else _fail(BAD_TYPE)  # type: ignore[no-any-return]


def _list(value: AttributeValue) -> list[AttributeValue]:
    found = value.get("L")
    return found if found is not None else _fail(BAD_TYPE)  # type: ignore[no-any-return]


def compile_update(tree: Update, bindings: Bindings) -> UpdatePlan:
    """Bind `tree` (from `parse_update`) into a plan.

    Raises:
        ExpressionError: the service's message for an undefined name or value, overlapping
            or conflicting paths, or a wrongly typed operand.
    """
    return UpdateBinder(bindings, "UpdateExpression").plan(tree)
