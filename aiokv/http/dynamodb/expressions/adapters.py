"""The seam to the value modules: number arithmetic, set order, and values shown in messages.

Expressions work on the *held form* of types.py (`parse_value`, `parse_item`): an N payload
is a canonical Decimal, a B payload bytes, a set a sorted tuple without duplicates.  So
comparing, ordering and searching need no conversion at all; what needs the value modules
is here:

1. Arithmetic goes through numbers.py, so a result is canonical and an out-of-range or
   over-precise one fails with the service's text (raised as ExpressionError, the one error
   this package raises).  No float is ever involved.
2. A set built by ADD or DELETE is ordered as types.py holds sets (`canonical_set`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any, TypeVar

from aiokv.http.dynamodb import numbers
from aiokv.http.dynamodb.expressions.errors import ExpressionError
from aiokv.http.dynamodb.numbers import ValidationError, format_number
from aiokv.http.dynamodb.types import AttributeValue, to_wire

__all__ = ["add_numbers", "canonical_set", "count", "format_number", "shown", "subtract_numbers"]

Member = TypeVar("Member", str, Decimal, bytes)


def add_numbers(a: Decimal, b: Decimal) -> Decimal:
    """a + b, exact and canonical, or the service's error.

    >>> add_numbers(Decimal("0.1"), Decimal("0.2"))
    Decimal('0.3')
    >>> add_numbers(Decimal("9.9E+125"), Decimal("1E+125"))
    Traceback (most recent call last):
    ...
    aiokv.http.dynamodb.expressions.errors.ExpressionError: \
Number overflow. Attempting to store a number with magnitude larger than supported range
    """
    try:
        return numbers.add_numbers(a, b)
    except ValidationError as error:
        raise ExpressionError(error.message) from None


def subtract_numbers(a: Decimal, b: Decimal) -> Decimal:
    """a - b, exact and canonical, or the service's error (see `add_numbers`).

    >>> subtract_numbers(Decimal("10"), Decimal("0.5"))
    Decimal('9.5')
    """
    try:
        return numbers.subtract_numbers(a, b)
    except ValidationError as error:
        raise ExpressionError(error.message) from None


def count(n: int) -> Decimal:
    """A non-negative int (what size() returns) as a canonical Number.

    >>> count(10), count(0)
    (Decimal('1E+1'), Decimal('0'))
    """
    return numbers.load_number(str(n))


def canonical_set(members: Iterable[Member]) -> tuple[Member, ...]:
    """Members as types.py holds a set: `tuple(sorted(set(members)))`.

    The rule of types.py's _parse_ss/_parse_ns/_parse_bs (no public helper exists): no
    duplicates, ascending by Python's order, which is DynamoDB's: strings by code point
    (= UTF-8 byte order), numbers numerically, binary by unsigned bytes.

    >>> canonical_set(["b", "a", "b"]), canonical_set([Decimal("2"), Decimal("-1")])
    (('a', 'b'), (Decimal('-1'), Decimal('2')))
    """
    return tuple(sorted(set(members)))


def shown(value: AttributeValue) -> Any:
    """The payload of a held value as the wire carries it, for the service's messages.

    >>> shown({"N": Decimal("1E+1")}), shown({"B": b"\\x00"}), shown({"S": "x"})
    ('10', 'AA==', 'x')
    """
    ((_, payload),) = to_wire(value).items()
    return payload
