"""ExpressionAttributeNames / ExpressionAttributeValues of one request, and what used them.

A request makes one `Bindings`, compiles each of its expressions against it (in the service's
order: Update, Condition, KeyCondition, Filter, Projection), then calls `check_unused`: every
name and value given must be used by some expression, and every one used must be given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from aiokv.http.dynamodb.expressions.ast import Path
from aiokv.http.dynamodb.expressions.errors import ExpressionError
from aiokv.http.dynamodb.expressions.paths import ResolvedPath
from aiokv.http.dynamodb.expressions.values import AttributeValue

_NAME_KEY = re.compile(r"#[0-9A-Za-z_]+")
_VALUE_KEY = re.compile(r":[0-9A-Za-z_]+")


class Bindings:
    """The substitutions of one request.

    Raises (from the constructor) ExpressionError for an empty map or a malformed key,
    with the service's message.

    >>> b = Bindings({"#n": "name"}, {":v": {"S": "x"}, ":w": {"BOOL": True}})
    >>> b.name("#n"), b.value(":v")
    ('name', {'S': 'x'})
    >>> b.check_unused()
    Traceback (most recent call last):
    ...
    aiokv.http.dynamodb.expressions.errors.ExpressionError: \
Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}
    """

    __slots__ = ("names", "unused_names", "unused_values", "values")

    def __init__(
        self,
        names: Mapping[str, str] | None = None,
        values: Mapping[str, AttributeValue] | None = None,
    ) -> None:
        self.names: Mapping[str, str] = names or {}
        self.values: Mapping[str, AttributeValue] = values or {}
        for given, label, pattern in (
            (names, "ExpressionAttributeNames", _NAME_KEY),
            (values, "ExpressionAttributeValues", _VALUE_KEY),
        ):
            if given is None:
                continue
            if not given:
                raise ExpressionError(f"{label} must not be empty")
            for key in given:
                if not pattern.fullmatch(key):
                    raise ExpressionError(
                        f'{label} contains invalid key: Syntax error; key: "{key}"'
                    )
        self.unused_names = dict.fromkeys(self.names)
        self.unused_values = dict.fromkeys(self.values)

    def name(self, key: str) -> str | None:
        """The attribute name for a "#name" key (marking it used), or None if not given."""
        found = self.names.get(key)
        if found is not None:
            self.unused_names.pop(key, None)
        return found

    def value(self, key: str) -> AttributeValue | None:
        """The value for a ":value" key (marking it used), or None if not given."""
        found = self.values.get(key)
        if found is not None:
            self.unused_values.pop(key, None)
        return found

    def resolve(self, path: Path) -> tuple[ResolvedPath, str | None]:
        """The path with #names substituted, and the first undefined #name (else None)."""
        parts = path.parts
        if not any(type(p) is str and p[0] == "#" for p in parts):
            return parts, None
        resolved: list[str | int] = []
        missing = None
        for part in parts:
            if type(part) is str and part[0] == "#":
                name = self.name(part)
                if name is None:
                    missing = missing or part
                    name = part
                resolved.append(name)
            else:
                resolved.append(part)
        return tuple(resolved), missing

    def check_unused(self) -> None:
        """Raise the service's error if a given name or value was used by no expression."""
        for unused, label in (
            (self.unused_names, "ExpressionAttributeNames"),
            (self.unused_values, "ExpressionAttributeValues"),
        ):
            if unused:
                keys = ", ".join(unused)
                raise ExpressionError(
                    f"Value provided in {label} unused in expressions: keys: {{{keys}}}"
                )
