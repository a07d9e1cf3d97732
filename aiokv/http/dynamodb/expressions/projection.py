"""Binding a projection expression and applying it to an item.

The result holds, for each path present in the item, the value at it, inside the maps and
lists that lead to it: "a.b, c[1]" on {a: {b: 1, x: 2}, c: [p, q, r]} gives {a: {b: 1}, c: [q]}.
Elements taken from one list keep their order and close up.  Paths may not overlap or
conflict (the service's message, with "Invalid ProjectionExpression: ").
"""

from __future__ import annotations

from typing import Any

from aiokv.http.dynamodb.expressions.ast import Projection
from aiokv.http.dynamodb.expressions.bindings import Bindings
from aiokv.http.dynamodb.expressions.evaluate import Binder
from aiokv.http.dynamodb.expressions.paths import ResolvedPath, first_clash
from aiokv.http.dynamodb.expressions.values import AttributeValue, Item


class ProjectionPlan:
    """A bound projection: `apply(item) -> projected item`.

    Attributes:
        paths: the resolved paths, in source order.
        top_level: the attribute names at the head of each path, for index projections.
    """

    __slots__ = ("flat", "paths", "top_level")

    def __init__(self, paths: list[ResolvedPath]) -> None:
        self.paths = paths
        self.top_level = list(dict.fromkeys(str(p[0]) for p in paths))
        self.flat = all(len(p) == 1 for p in paths)

    def apply(self, item: Item) -> Item:
        if self.flat:
            return {name: item[name] for name in self.top_level if name in item}
        tree: dict[Any, Any] = {}
        for path in self.paths:
            _pick(item, path, tree)
        return {name: _build(node) for name, node in tree.items()}


def _pick(item: Item, path: ResolvedPath, tree: dict[Any, Any]) -> None:
    """Record the value at `path` in `tree`: {key or index: subtree or ("leaf", value)}."""
    head: Any = path[0]
    value: Any = item.get(head)
    part: Any
    for part in path[1:]:
        if value is None:
            return
        inner = value.get("L") if type(part) is int else value.get("M")
        if inner is None:
            return
        if type(part) is int:
            value = inner[part] if part < len(inner) else None
        else:
            value = inner.get(part)
    if value is None:
        return
    node = tree
    for depth, part in enumerate(path[:-1]):
        kind = "L" if type(path[depth + 1]) is int else "M"
        child = node.get(part)
        if child is None or isinstance(child, tuple):
            child = node[part] = {"": kind}
        node = child
    node[path[-1]] = ("leaf", value)


def _build(node: Any) -> AttributeValue:
    if isinstance(node, tuple):
        return node[1]  # type: ignore[no-any-return]
    kind = node.pop("")
    if kind == "L":
        return {"L": [_build(node[i]) for i in sorted(node)]}
    return {"M": {k: _build(child) for k, child in node.items()}}


def compile_projection(tree: Projection, bindings: Bindings) -> ProjectionPlan:
    """Bind `tree` (from `parse_projection`) into a plan.

    Raises:
        ExpressionError: an undefined #name, or overlapping or conflicting paths.
    """
    binder = Binder(bindings, "ProjectionExpression")
    binder.priority = ("names", "overlap")
    paths = [binder.path(p) for p in tree.paths]
    clash = first_clash(paths)
    if clash is not None:
        binder.note("overlap", clash)
    binder.raise_notes()
    return ProjectionPlan(paths)
