"""DynamoDB Numbers: parse and validate the wire string, canonical output, exact + and -.

A Number travels as a string (`{"N": "-1.5E3"}`) and is held as a `decimal.Decimal` in
*canonical* form, never a float.

    wire    := sign? (digits ("." digits?)? | "." digits) (("e" | "E") sign? digits)?
    sign    := "+" | "-"          digits := [0-9]+   (ASCII only; no spaces, no "_")

Invariant 1: a canonical Number is finite, has at most 38 significant digits, and is zero or
has an adjusted exponent (the power of ten of its first digit) in [-130, 125]: magnitudes from
1E-130 to 9.9999999999999999999999999999999999999E+125.
Invariant 2: a canonical Number is `ZERO` (never -0) or normalized (no trailing zeros in its
coefficient), so equal values have equal digits and exponents, and the key codec and the
renderer see one form per value.

The service renders a Number in plain notation with no exponent and no redundant zeros:
"1.0" -> "1", "00042" -> "42", "1.5E2" -> "150", "-0" -> "0", "1E-3" -> "0.001".

Error texts are the service's.  Sources: architect/dynalite validations/index.js (checkNum,
whose tests ran against DynamoDB), nubo-db/dynamodb-conformance tests/tier3/limits/
numberPrecision.test.ts, scylladb test/alternator/test_number.py (accepted syntax, and that
an inexact sum is reported with the *overflow* text).
"""

from __future__ import annotations

from decimal import Context, Decimal, Inexact, InvalidOperation

from aiokv.errors import InvalidArgumentError

MAX_DIGITS = 38  # significant digits of a Number
MAX_EXPONENT = 125  # adjusted exponent of the largest magnitude, 9.99...E+125
MIN_EXPONENT = -130  # adjusted exponent of the smallest magnitude, 1E-130

NOT_NUMERIC = "The parameter cannot be converted to a numeric value"
OVERFLOW = (
    "Number overflow. Attempting to store a number with magnitude larger than supported range"
)
UNDERFLOW = (
    "Number underflow. Attempting to store a number with magnitude smaller than supported range"
)
TOO_PRECISE = "Attempting to store more than 38 significant digits in a Number"

ZERO = Decimal(0)

# Rounds to 38 digits and raises instead of losing a non-zero digit; the exponent limits are far
# outside the valid range so only our own checks decide range errors.
_DIGITS = Context(prec=MAX_DIGITS, Emax=999_999, Emin=-999_999, traps=[Inexact])
# Exact for any sum of two valid Numbers: their digits span at most 125 - (-130 - 37) + 1 = 293
# places, plus one for a carry.
_EXACT = Context(prec=300, Emax=999_999, Emin=-999_999, traps=[Inexact])
_normalize = Decimal.normalize


class ValidationError(InvalidArgumentError):
    """A request value the service would refuse with a ValidationException.

    `message` is the service's text, ready for the error body.
    """

    type_name = "com.amazon.coral.validate#ValidationException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_number(text: str) -> Decimal:
    """Parses and validates a Number as the wire carries it.

    Args:
        text: the string inside `{"N": ...}`.

    Returns:
        The canonical Decimal (invariants 1 and 2).

    Raises:
        ValidationError: with the service's message, checked in the service's order: not a
            number, overflow, underflow, more than 38 significant digits.

    >>> parse_number("0001.50E2"), parse_number("-0"), parse_number("+.5")
    (Decimal('1.5E+2'), Decimal('0'), Decimal('0.5'))
    """
    try:
        value = Decimal(text)
    except (InvalidOperation, TypeError, ValueError):
        raise _not_numeric(text) from None
    # Decimal also takes NaN, Infinity, "1_000", Unicode digits and surrounding spaces; the
    # service takes none of them.
    if not (value.is_finite() and text.isascii() and "_" not in text and text == text.strip()):
        raise _not_numeric(text)
    return _checked(value, TOO_PRECISE)


def format_number(value: Decimal) -> str:
    """The service's rendering of a canonical Number: plain notation, no redundant zeros.

    >>> format_number(parse_number("1.5E2")), format_number(parse_number("-1E-3"))
    ('150', '-0.001')
    """
    return format(value, "f")


def add_numbers(a: Decimal, b: Decimal) -> Decimal:
    """a + b for UpdateExpression `SET x = a + b` and `ADD`, exact, or the service's error.

    A sum that needs more than 38 digits is refused with the overflow text, as the service
    does (1E50 + 1 fails; it is not rounded).

    >>> add_numbers(parse_number("1E+22"), parse_number("1"))
    Decimal('10000000000000000000001')
    """
    return _checked(_EXACT.add(a, b), OVERFLOW)


def subtract_numbers(a: Decimal, b: Decimal) -> Decimal:
    """a - b for UpdateExpression `SET x = a - b`; see `add_numbers`.

    >>> subtract_numbers(parse_number("0.3"), parse_number("0.1"))
    Decimal('0.2')
    """
    return _checked(_EXACT.subtract(a, b), OVERFLOW)


def number_size(value: Decimal) -> int:
    """Bytes a canonical Number counts toward an item's size.

    The service stores a Number like Oracle's NUMBER (same range, same 38 digits): one
    exponent byte, one byte per base-100 digit pair aligned on even powers of ten, and one
    more byte for a negative number.  The developer guide's "1 byte per two significant digits
    plus 1" is this rule without the alignment and the sign.  It fits every literal
    dynoxide measured against the 400 KB gate (github.com/nubo-db/dynoxide, src/types.rs).

    >>> [number_size(parse_number(s)) for s in ("0", "42", "-42", "1.5", "0.15", "1E125")]
    [1, 2, 3, 3, 2, 2]
    """
    if not value:
        return 1
    sign, digits, low = value.as_tuple()  # low: the power of the last digit
    top = low + len(digits) - 1  # type: ignore[operator]  # a finite Decimal's exponent is an int
    if digits[-1] == 0:  # not normalized: the last non-zero digit sets the low end
        low = top - len(bytes(digits).rstrip(b"\x00")) + 1
    return 2 + (top >> 1) - (low >> 1) + sign  # type: ignore[operator]


def load_number(text: str) -> Decimal:
    """The canonical Decimal of a Number that `format_number` wrote (trusted, unchecked).

    >>> load_number("1500")
    Decimal('1.5E+3')
    """
    value = Decimal(text)
    return _normalize(value, _DIGITS) if value else ZERO


def _checked(value: Decimal, inexact_message: str) -> Decimal:
    if not value:
        return ZERO
    exponent = value.adjusted()
    if exponent > MAX_EXPONENT:
        raise ValidationError(OVERFLOW)
    if exponent < MIN_EXPONENT:
        raise ValidationError(UNDERFLOW)
    try:
        return _normalize(value, _DIGITS)
    except Inexact:
        raise ValidationError(inexact_message) from None


def _not_numeric(text: object) -> ValidationError:
    # An empty (or missing) value gets the bare message; anything else is quoted after it.
    return ValidationError(f"{NOT_NUMERIC}: {text}" if text else NOT_NUMERIC)
