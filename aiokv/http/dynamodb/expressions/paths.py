"""Resolved document paths: lookup in an item, the service's printed form, overlap checks.

A resolved path is a tuple of map keys (str, #names already substituted) and list indexes
(int).  Two paths of one update or projection overlap when one is a prefix of the other,
and conflict when, at the first place they differ, one has a key and the other an index.
"""

from __future__ import annotations

from typing import Any

from aiokv.http.dynamodb.expressions.values import AttributeValue, Item

ResolvedPath = tuple[str | int, ...]


def get(item: Item, path: ResolvedPath) -> AttributeValue | None:
    """The value at `path`, or None when any step is missing or of the wrong type.

    >>> item = {"a": {"M": {"b": {"L": [{"S": "x"}, {"BOOL": True}]}}}}
    >>> get(item, ("a", "b", 1)), get(item, ("a", "c")), get(item, ("a", 0))
    ({'BOOL': True}, None, None)
    """
    head: Any = path[0]
    value = item.get(head)
    part: Any
    for part in path[1:]:
        if value is None:
            return None
        if type(part) is int:
            items = value.get("L")
            value = items[part] if items is not None and part < len(items) else None
        else:
            members = value.get("M")
            value = members.get(part) if members is not None else None
    return value


def path_str(path: ResolvedPath) -> str:
    """The service's form of a path in messages.

    >>> path_str(("a", 1, "b"))
    '[a, [1], b]'
    """
    return "[" + ", ".join(f"[{p}]" if type(p) is int else str(p) for p in path) + "]"


def first_clash(paths: list[ResolvedPath]) -> str | None:
    """The service's message for the first overlapping pair, else the first conflicting pair.

    Path one is the earlier path in the expression.

    >>> first_clash([("a",), ("a", "b")])
    'Two document paths overlap with each other; must remove or rewrite one of these paths; \
path one: [a], path two: [a, b]'
    >>> first_clash([("a", "b"), ("c",)]) is None
    True
    """
    conflict = None
    for j, later in enumerate(paths):
        for earlier in paths[:j]:
            for x, y in zip(earlier, later, strict=False):
                if type(x) is not type(y):
                    if conflict is None:
                        conflict = _clash("conflict", earlier, later)
                    break
                if x != y:
                    break
            else:
                return _clash("overlap", earlier, later)
    return conflict


def _clash(what: str, one: ResolvedPath, two: ResolvedPath) -> str:
    return (
        f"Two document paths {what} with each other; must remove or rewrite one of these "
        f"paths; path one: {path_str(one)}, path two: {path_str(two)}"
    )
