"""Binding a parsed condition to a request's names and values, and compiling it to a predicate.

`compile_condition(tree, bindings, label)` substitutes #names and :values, runs the checks the
service makes on a bound condition, and returns `item -> bool` built from closures, so that
evaluating a filter over many items walks no tree.  The checks, in the service's priority:
an undefined #name or :value (the first in the text), a wrong number of operands, a path
compared with itself, an operand of the wrong type (including BETWEEN bounds out of order).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from operator import ge, gt, le, lt
from typing import Any

from aiokv.http.dynamodb.expressions import values as v
from aiokv.http.dynamodb.expressions.adapters import shown
from aiokv.http.dynamodb.expressions.ast import And, Between, Call, Compare, In, Node, Not, Or, Path
from aiokv.http.dynamodb.expressions.bindings import Bindings
from aiokv.http.dynamodb.expressions.condition_parser import CONDITION_FUNCTIONS
from aiokv.http.dynamodb.expressions.errors import ExpressionError
from aiokv.http.dynamodb.expressions.paths import ResolvedPath, get, path_str
from aiokv.http.dynamodb.expressions.values import AttributeValue, Item

Getter = Callable[[Item], AttributeValue | None]
Predicate = Callable[[Item], bool]

_TYPE_NAMES = "{B,NULL,SS,BOOL,L,BS,N,NS,S,M}"
_ORDER: dict[str, Callable[[Any, Any], bool]] = {"<": lt, "<=": le, ">": gt, ">=": ge}


@dataclass(slots=True)
class Operand:
    """A bound operand: its getter, and what is known before any item is seen."""

    get: Getter
    path: ResolvedPath | None = None  # set for document paths
    const: AttributeValue | None = None  # set for :values
    static_type: str | None = None  # a :value's type, or N for size()


def getter(path: ResolvedPath) -> Getter:
    """A fast `item -> value at path`."""
    if len(path) == 1:
        name: Any = path[0]
        return lambda item: item.get(name)
    return lambda item: get(item, path)


def operand_message(name: str, tag: str) -> str:
    return (
        "Incorrect operand type for operator or function; "
        f"operator or function: {name}, operand type: {tag}"
    )


class Binder:
    """Substitutes names and values and collects the service's bound-expression errors."""

    priority: tuple[str, ...] = ("names", "count", "distinct", "function")

    def __init__(self, bindings: Bindings, label: str) -> None:
        self.bindings = bindings
        self.label = label
        self.notes: dict[str, str] = {}

    def note(self, category: str, message: str) -> None:
        self.notes.setdefault(category, message)

    def raise_notes(self) -> None:
        for category in self.priority:
            if category in self.notes:
                raise ExpressionError(f"Invalid {self.label}: {self.notes[category]}")

    def path(self, node: Path) -> ResolvedPath:
        resolved, missing = self.bindings.resolve(node)
        if missing is not None:
            self.note(
                "names",
                "An expression attribute name used in the document path is not defined; "
                f"attribute name: {missing}",
            )
        return resolved

    def value(self, key: str, category: str = "names") -> AttributeValue:
        found = self.bindings.value(key)
        if found is None:
            self.note(
                category,
                "An expression attribute value used in expression is not defined; "
                f"attribute value: {key}",
            )
            return {"NULL": True}
        return found


class ConditionBinder(Binder):
    def operand(self, node: Node) -> Operand:
        if isinstance(node, Path):
            path = self.path(node)
            return Operand(getter(path), path=path)
        if isinstance(node, Call):  # size(): the parser let no other function through
            (arg,) = self.args(node, 1)
            if arg.static_type in ("N", "BOOL", "NULL"):
                self.note("function", operand_message("size", arg.static_type))
            inner = arg.get
            return Operand(
                lambda item: None if (x := inner(item)) is None else v.size(x), static_type="N"
            )
        const = self.value(node.key)  # type: ignore[union-attr]
        return Operand(lambda item: const, const=const, static_type=v.type_of(const))

    def args(self, call: Call, want: int) -> list[Operand]:
        args = [self.operand(a) for a in call.args]
        if len(args) != want:
            self.note(
                "count",
                "Incorrect number of operands for operator or function; operator or function: "
                f"{call.name}, number of operands: {len(args)}",
            )
            args += [Operand(lambda item: None)] * want
        return args[:want]

    def distinct(self, op: str, a: Operand, b: Operand) -> None:
        if a.path is not None and a.path == b.path:
            self.note(
                "distinct",
                "The first operand must be distinct from the remaining operands for this operator "
                f"or function; operator: {op}, first operand: {path_str(a.path)}",
            )

    def condition(self, node: Node) -> Predicate:
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, And):
            p, q = self.condition(node.left), self.condition(node.right)
            return lambda item: p(item) and q(item)
        if isinstance(node, Or):
            p, q = self.condition(node.left), self.condition(node.right)
            return lambda item: p(item) or q(item)
        if isinstance(node, Not):
            p = self.condition(node.operand)
            return lambda item: not p(item)
        if isinstance(node, Between):
            return self.between(node)
        if isinstance(node, In):
            x = self.operand(node.operand).get
            choices = [self.operand(c).get for c in node.choices]
            return lambda item: (a := x(item)) is not None and any(a == g(item) for g in choices)
        return self.function(node)  # type: ignore[arg-type]

    def compare(self, node: Compare) -> Predicate:
        a, b = self.operand(node.left), self.operand(node.right)
        self.distinct(node.op, a, b)
        x, y = a.get, b.get
        # Held values are equal exactly when == says so (values.py Rule 1), and a missing
        # attribute (None) is equal to nothing and differs from any value.
        if node.op == "=":
            if b.const is not None:
                const = b.const
                return lambda item: x(item) == const
            return lambda item: (p := x(item)) is not None and p == y(item)
        if node.op == "<>":
            return lambda item: x(item) != y(item)
        test = _ORDER[node.op]
        if b.const is not None:  # the common `path < :value`: compare payloads directly
            tag = b.static_type or ""
            if tag not in v.ORDERED_TYPES:
                return lambda item: False
            bound = b.const[tag]
            return lambda item: (
                (p := x(item)) is not None and (q := p.get(tag)) is not None and test(q, bound)
            )
        return lambda item: (
            (p := x(item)) is not None
            and (q := y(item)) is not None
            and (c := v.compare(p, q)) is not None
            and test(c, 0)
        )

    def between(self, node: Between) -> Predicate:
        a, low, high = self.operand(node.operand), self.operand(node.low), self.operand(node.high)
        if low.const is not None and high.const is not None:
            lt, ht = low.static_type or "", high.static_type or ""
            bounds = (
                f"lower bound operand: AttributeValue: {{{lt}:{shown(low.const)}}}, "
                f"upper bound operand: AttributeValue: {{{ht}:{shown(high.const)}}}"
            )
            order = v.compare(low.const, high.const)
            if lt != ht:
                self.note(
                    "function",
                    "The BETWEEN operator requires same data type for lower and upper bounds; "
                    + bounds,
                )
            elif order is not None and order > 0:
                self.note(
                    "function",
                    "The BETWEEN operator requires upper bound to be greater than or equal to "
                    f"lower bound; {bounds}",
                )
            elif lt in v.ORDERED_TYPES:  # constant bounds: compare payloads directly
                x, tag, first, last = a.get, lt, low.const[lt], high.const[lt]
                return lambda item: (
                    (p := x(item)) is not None
                    and (q := p.get(tag)) is not None
                    and first <= q <= last
                )
        x, lo, hi = a.get, low.get, high.get
        return lambda item: (
            (p := x(item)) is not None
            and (q := lo(item)) is not None
            and (r := hi(item)) is not None
            and (c := v.compare(p, q)) is not None
            and c >= 0
            and (d := v.compare(p, r)) is not None
            and d <= 0
        )

    def function(self, call: Call) -> Predicate:
        name = call.name
        args = self.args(call, CONDITION_FUNCTIONS.get(name, len(call.args)))
        if name in ("attribute_exists", "attribute_not_exists"):
            if args[0].path is None:
                self.note(
                    "function",
                    f"Operator or function requires a document path; operator or function: {name}",
                )
            x = args[0].get
            if name == "attribute_exists":
                return lambda item: x(item) is not None
            return lambda item: x(item) is None
        a, b = args
        self.distinct(name, a, b)
        x, y = a.get, b.get
        if name == "attribute_type":
            tag = b.static_type
            if tag != "S":
                self.note(
                    "function", operand_message(name, tag or "{NS,SS,L,BS,N,M,B,BOOL,NULL,S}")
                )
            elif b.const is not None and b.const["S"] not in v.ATTRIBUTE_TYPES:
                self.note(
                    "function",
                    f"Invalid attribute type name found; type: {b.const['S']}, "
                    f"valid types: {_TYPE_NAMES}",
                )
            want = b.const.get("S") if b.const is not None else None
            return lambda item: (p := x(item)) is not None and want in p
        if name == "begins_with":
            for arg in args:
                if arg.static_type not in (None, "S", "B"):
                    self.note("function", operand_message(name, arg.static_type))
                    break
            return lambda item: (
                (p := x(item)) is not None and (q := y(item)) is not None and v.begins_with(p, q)
            )
        return lambda item: (
            (p := x(item)) is not None and (q := y(item)) is not None and v.contains(p, q)
        )


def compile_condition(
    tree: Node, bindings: Bindings, label: str = "ConditionExpression"
) -> Predicate:
    """Bind `tree` (from `parse_condition`) and compile it to `item -> bool`.

    Raises:
        ExpressionError: the service's message for an undefined name or value, a wrong
            operand count, a path compared with itself or a wrongly typed operand.
    """
    binder = ConditionBinder(bindings, label)
    predicate = binder.condition(tree)
    binder.raise_notes()
    return predicate
