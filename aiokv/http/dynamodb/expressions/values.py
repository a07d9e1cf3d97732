"""DynamoDB's rules for comparing, sizing and searching AttributeValues.

Values are in the held form of types.py: {"S": str}, {"N": Decimal}, {"B": bytes},
{"BOOL": bool}, {"NULL": True}, {"SS"|"NS"|"BS": sorted tuple}, {"L": list}, {"M": dict}.

Rule 1: only values of one type are equal; sets are equal as sets, numbers by value.  The
held form makes this Python's == (types.py invariant 1: canonical numbers, sorted sets).
Rule 2: only N, S and B values are ordered (numbers by value, strings by code point, which is
UTF-8 byte order, binary by bytes); any other pair is unordered, so <, <=, >, >= and BETWEEN
on it are false, never an error.  The held payloads order this way under Python's < and >.
"""

from __future__ import annotations

from aiokv.http.dynamodb.expressions.adapters import count
from aiokv.http.dynamodb.types import AttributeValue, Item

__all__ = [
    "ATTRIBUTE_TYPES",
    "ORDERED_TYPES",
    "AttributeValue",
    "Item",
    "begins_with",
    "compare",
    "contains",
    "equal",
    "size",
    "type_of",
]

ATTRIBUTE_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"})
ORDERED_TYPES = frozenset({"S", "N", "B"})
_SIZED = frozenset({"S", "B", "SS", "NS", "BS", "L", "M"})


def equal(a: AttributeValue, b: AttributeValue) -> bool:
    """DynamoDB equality (Rule 1); compiled conditions inline it as `a == b`.

    >>> from aiokv.http.dynamodb.types import parse_value as p
    >>> equal(p({"N": "1.0"}), p({"N": "1"})), equal(p({"SS": ["a", "b"]}), p({"SS": ["b", "a"]}))
    (True, True)
    >>> equal(p({"S": "1"}), p({"N": "1"}))
    False
    """
    return a == b


def type_of(value: AttributeValue) -> str:
    """The type tag of a value ("" for a malformed empty dict)."""
    for tag in value:
        return tag
    return ""


def compare(a: AttributeValue, b: AttributeValue) -> int | None:
    """-1, 0 or 1 when a and b are ordered against each other, else None (Rule 2).

    >>> from aiokv.http.dynamodb.types import parse_value as p
    >>> compare(p({"N": "10"}), p({"N": "9"})), compare({"S": "a"}, {"S": "b"})
    (1, -1)
    >>> compare({"S": "a"}, p({"N": "1"})) is None
    True
    """
    tag = type_of(a)
    if tag not in ORDERED_TYPES:
        return None
    y = b.get(tag)
    if y is None:
        return None
    x = a[tag]
    return int(x > y) - int(x < y)


def size(value: AttributeValue) -> AttributeValue | None:
    """size(): characters of S, bytes of B, members of a set, L or M; None for N, BOOL, NULL.

    >>> size({"S": "héllo"}), size({"L": [{"NULL": True}]}), size({"BOOL": False})
    ({'N': Decimal('5')}, {'N': Decimal('1')}, None)
    """
    tag = type_of(value)
    if tag in _SIZED:
        return {"N": count(len(value[tag]))}
    return None


def begins_with(a: AttributeValue, b: AttributeValue) -> bool:
    """True when both are S (or both B) and a starts with b."""
    for tag in ("S", "B"):
        x = a.get(tag)
        if x is not None:
            y = b.get(tag)
            return y is not None and bool(x.startswith(y))
    return False


def contains(a: AttributeValue, b: AttributeValue) -> bool:
    """contains(): substring of S or B, member of a set of b's type, element of a list.

    >>> from aiokv.http.dynamodb.types import parse_value as p
    >>> contains(p({"NS": ["1", "2.0"]}), p({"N": "2"})), contains({"S": "abc"}, {"S": "bc"})
    (True, True)
    >>> contains({"L": [{"S": "x"}]}, {"S": "x"}), contains({"SS": ("1",)}, p({"N": "1"}))
    (True, False)
    """
    tag = type_of(a)
    if tag in ("S", "B"):
        y = b.get(tag)
        return y is not None and y in a[tag]
    if tag in ("SS", "NS", "BS"):
        y = b.get(tag[0])
        return y is not None and y in a[tag]
    if tag == "L":
        return b in a["L"]
    return False
