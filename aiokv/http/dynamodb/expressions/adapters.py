"""The seams to the wire value codecs: numbers and binary.

Evaluation needs numbers as exact decimals (compare, add, subtract) and binary as bytes
(compare, begins_with, contains, size).  These few functions are the only place that knows
how; the DynamoDB number module (38 significant digits, the service's range and overflow
messages) replaces them by pointing `number_value` / `format_number` at its own functions.
"""

from __future__ import annotations

import base64
import binascii
from decimal import Context, Decimal, InvalidOperation

# Wide enough that the sum or difference of two 38-digit numbers in DynamoDB's range is
# exact; the range and digit limits of the result are the number module's to enforce.
_EXACT = Context(prec=300, Emin=-999_999, Emax=999_999)


def number_value(text: str) -> Decimal:
    """The exact value of an N string (already validated by the request layer).

    >>> number_value("1.50") == number_value("1.5")
    True
    """
    try:
        return Decimal(text)
    except InvalidOperation:  # unvalidated input: compare as NaN-free zero rather than crash
        return Decimal(0)


def format_number(value: Decimal) -> str:
    """The canonical N string: no exponent, no trailing zeros, "0" for any zero.

    >>> format_number(Decimal("1.500")), format_number(Decimal("1E+3"))
    ('1.5', '1000')
    >>> format_number(Decimal("-0"))
    '0'
    """
    if not value:
        return "0"
    return format(value.normalize(_EXACT), "f")


def add_numbers(a: str, b: str) -> str:
    """a + b on N strings, exactly.

    >>> add_numbers("0.1", "0.2"), add_numbers("-5", "5")
    ('0.3', '0')
    """
    return format_number(_EXACT.add(number_value(a), number_value(b)))


def subtract_numbers(a: str, b: str) -> str:
    """a - b on N strings, exactly.

    >>> subtract_numbers("10", "0.5")
    '9.5'
    """
    return format_number(_EXACT.subtract(number_value(a), number_value(b)))


def binary_bytes(value: str | bytes) -> bytes:
    """The bytes of a B value: wire JSON carries base64 text, decoded items may carry bytes.

    >>> binary_bytes("AAE="), binary_bytes(b"\\x00")
    (b'\\x00\\x01', b'\\x00')
    """
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(value)
    except (binascii.Error, ValueError):
        return value.encode()
