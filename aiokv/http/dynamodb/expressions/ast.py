"""The syntax trees the parsers build, before names and values are bound.

    path      := part ("." part | "[" index "]")*      part: an attribute or a "#name"
    operand   := path | ":value" | call | arith
    condition := compare | between | in | call | and | or | not

A tree depends on the expression text only, so parsed trees are cached by text and shared
between requests: nodes are frozen.  A path's parts are strings (an attribute name as
written, or a "#name" key still to resolve) and ints (list indexes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Path:
    """A document path; `parts` as written ("#n" keys unresolved)."""

    parts: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Value:
    """A ":value" reference into ExpressionAttributeValues."""

    key: str


@dataclass(frozen=True, slots=True)
class Call:
    """A function call: name as written, arguments in order."""

    name: str
    args: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Arith:
    """`left + right` or `left - right` (update expressions only)."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Compare:
    """`left <op> right` with op one of = <> < <= > >=."""

    op: str
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Between:
    """`operand BETWEEN low AND high`."""

    operand: Node
    low: Node
    high: Node


@dataclass(frozen=True, slots=True)
class In:
    """`operand IN (choices...)`."""

    operand: Node
    choices: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Or:
    left: Node
    right: Node


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


Node = Path | Value | Call | Arith | Compare | Between | In | And | Or | Not


@dataclass(frozen=True, slots=True)
class Action:
    """One update action: kind is SET, REMOVE, ADD or DELETE; value is None for REMOVE."""

    kind: str
    path: Path
    value: Node | None


@dataclass(frozen=True, slots=True)
class Update:
    """An update expression: its actions in source order."""

    actions: tuple[Action, ...]


@dataclass(frozen=True, slots=True)
class Projection:
    """A projection expression: its paths in source order."""

    paths: tuple[Path, ...]
