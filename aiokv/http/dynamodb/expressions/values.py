"""DynamoDB's rules for comparing, sizing and searching AttributeValues.

Values are the wire JSON shapes: {"S": "x"}, {"N": "1.5"}, {"B": "<base64>"}, {"BOOL": true},
{"NULL": true}, {"SS"|"NS"|"BS": [...]}, {"L": [...]}, {"M": {...}}.

Rule 1: only values of one type are equal; sets are equal as sets, numbers by value.
Rule 2: only N, S and B values are ordered (numbers by value, strings by code point, which is
UTF-8 byte order, binary by bytes); any other pair is unordered, so <, <=, >, >= and BETWEEN
on it are false, never an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiokv.http.dynamodb.expressions.adapters import binary_bytes, number_value

AttributeValue = dict[str, Any]
Item = dict[str, AttributeValue]

ATTRIBUTE_TYPES = frozenset({"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"})


def type_of(value: AttributeValue) -> str:
    """The type tag of a value ("" for a malformed empty dict)."""
    for tag in value:
        return tag
    return ""


def _scalar_key(tag: str) -> Callable[[Any], Any]:
    if tag == "N":
        return number_value
    if tag == "B":
        return binary_bytes
    return _identity


def _identity(x: Any) -> Any:
    return x


def equal(a: AttributeValue, b: AttributeValue) -> bool:
    """DynamoDB equality: same type and same value (Rule 1).

    >>> equal({"N": "1.0"}, {"N": "1"}), equal({"SS": ["a", "b"]}, {"SS": ["b", "a"]})
    (True, True)
    >>> equal({"S": "1"}, {"N": "1"})
    False
    """
    tag = type_of(a)
    if tag not in b:
        return False
    x, y = a[tag], b[tag]
    if x == y:
        return True
    if tag == "N":
        return bool(number_value(x) == number_value(y))
    if tag == "B":
        return binary_bytes(x) == binary_bytes(y)
    if tag in ("SS", "NS", "BS"):
        key = _scalar_key(tag[0])
        return set(map(key, x)) == set(map(key, y))
    if tag == "L":
        return len(x) == len(y) and all(map(equal, x, y))
    if tag == "M":
        return x.keys() == y.keys() and all(equal(x[k], y[k]) for k in x)
    return False


def order_key(value: AttributeValue) -> tuple[str, Any] | None:
    """(type, key) that orders N, S and B values; None for unordered types (Rule 2)."""
    if "S" in value:
        return "S", value["S"]
    if "N" in value:
        return "N", number_value(value["N"])
    if "B" in value:
        return "B", binary_bytes(value["B"])
    return None


def compare(a: AttributeValue, b: AttributeValue) -> int | None:
    """-1, 0 or 1 when a and b are ordered against each other, else None.

    >>> compare({"N": "10"}, {"N": "9"}), compare({"S": "a"}, {"S": "b"})
    (1, -1)
    >>> compare({"S": "a"}, {"N": "1"}) is None
    True
    """
    ka, kb = order_key(a), order_key(b)
    if ka is None or kb is None or ka[0] != kb[0]:
        return None
    return int(ka[1] > kb[1]) - int(ka[1] < kb[1])


def size(value: AttributeValue) -> AttributeValue | None:
    """size(): characters of S, bytes of B, members of a set, L or M; None for N, BOOL, NULL.

    >>> size({"S": "héllo"}), size({"L": [{"N": "1"}]}), size({"N": "1"})
    ({'N': '5'}, {'N': '1'}, None)
    """
    tag = type_of(value)
    if tag == "B":
        return {"N": str(len(binary_bytes(value["B"])))}
    if tag in ("S", "SS", "NS", "BS", "L", "M"):
        return {"N": str(len(value[tag]))}
    return None


def begins_with(a: AttributeValue, b: AttributeValue) -> bool:
    """True when both are S (or both B) and a starts with b."""
    if "S" in a:
        return "S" in b and bool(a["S"].startswith(b["S"]))
    if "B" in a and "B" in b:
        return binary_bytes(a["B"]).startswith(binary_bytes(b["B"]))
    return False


def contains(a: AttributeValue, b: AttributeValue) -> bool:
    """contains(): substring of S or B, member of a set of b's type, element of a list.

    >>> contains({"NS": ["1", "2.0"]}, {"N": "2"}), contains({"S": "abc"}, {"S": "bc"})
    (True, True)
    >>> contains({"L": [{"S": "x"}]}, {"S": "x"}), contains({"SS": ["1"]}, {"N": "1"})
    (True, False)
    """
    tag = type_of(a)
    if tag == "S":
        return "S" in b and b["S"] in a["S"]
    if tag == "B":
        return "B" in b and binary_bytes(b["B"]) in binary_bytes(a["B"])
    if tag in ("SS", "NS", "BS"):
        member = tag[0]
        if member not in b:
            return False
        if member == "S":
            return b["S"] in a["SS"]
        key = _scalar_key(member)
        target = key(b[member])
        return any(key(x) == target for x in a[tag])
    if tag == "L":
        return any(equal(x, b) for x in a["L"])
    return False
