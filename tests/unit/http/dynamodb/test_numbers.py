"""DynamoDB Numbers: the accepted syntax, the service's errors, canonical text, exact + and -."""

from __future__ import annotations

from decimal import Context, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aiokv.http.dynamodb.numbers import (
    NOT_NUMERIC,
    OVERFLOW,
    TOO_PRECISE,
    UNDERFLOW,
    ZERO,
    ValidationError,
    add_numbers,
    format_number,
    number_size,
    parse_number,
    subtract_numbers,
)

MAX = "9.9999999999999999999999999999999999999E+125"
DIGITS_38 = "12345678901234567890123456789012345678"
WIDE = Context(prec=400)  # exact for any two Numbers


@st.composite
def numbers(draw: st.DrawFn) -> Decimal:
    """Canonical Numbers spread over all digit counts and the whole exponent range."""
    if draw(st.booleans()):
        return parse_number(str(draw(st.integers(-(10**6), 10**6))))
    size = draw(st.integers(1, 38))
    coefficient = draw(st.integers(10 ** (size - 1), 10**size - 1))
    adjusted = draw(st.integers(-130, 125))
    sign = "-" if draw(st.booleans()) else ""
    return parse_number(f"{sign}{coefficient}E{adjusted - size + 1}")


def _text(text: str) -> str:
    return format_number(parse_number(text))


def _error(text: str) -> str:
    with pytest.raises(ValidationError) as info:
        parse_number(text)
    return info.value.message


@pytest.mark.parametrize(
    ("wire", "canonical"),
    [
        ("1.0", "1"),
        ("01", "1"),
        ("00042", "42"),
        ("1e2", "100"),
        ("1.5E2", "150"),
        ("3.1400", "3.14"),
        ("-0", "0"),
        ("+0", "0"),
        ("0e1000", "0"),
        ("-0.000", "0"),
        ("+3", "3"),
        ("+1e2", "100"),
        ("1e+5", "100000"),
        ("-17e5", "-1700000"),
        ("-17.4E37", "-174" + "0" * 36),
        (".123", "0.123"),
        ("+.5", "0.5"),
        ("5.", "5"),
        ("0001.23", "1.23"),
        ("-7.1234", "-7.1234"),
        ("1E-3", "0.001"),
        ("1E-130", "0." + "0" * 129 + "1"),
        ("1E+125", "1" + "0" * 125),
        ("1.00000000000000007629769841092E+50", "100000000000000007629769841092" + "0" * 21),
    ],
)
def test_numbers_render_in_plain_notation_without_redundant_zeros(wire: str, canonical: str):
    assert _text(wire) == canonical


@pytest.mark.parametrize(
    "wire",
    [
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "dog",
        "-dog",
        " 1",
        "1 ",
        "1_000",
        "1e",
        ".",
        "e5",
        "+-1",
        "1.2.3",
        "0x10",
        "1e2.5",
        "\u0661",
        "1\u0660",
        "--1",
        "1e+-2",
    ],
)
def test_non_numbers_are_refused_with_the_value_quoted(wire: str):
    assert _error(wire) == f"{NOT_NUMERIC}: {wire}"


def test_an_empty_number_is_refused_without_a_value():
    assert _error("") == NOT_NUMERIC


@pytest.mark.parametrize("wire", [MAX, "-" + MAX, "1E-130", "-1E-130", "1E+125", DIGITS_38])
def test_the_range_limits_themselves_are_accepted(wire: str):
    assert parse_number(wire) == Decimal(wire)


@pytest.mark.parametrize("wire", ["1E+126", "-1E+126", "11e125", "10" + "0" * 125])
def test_magnitudes_above_the_range_overflow(wire: str):
    assert _error(wire) == OVERFLOW


@pytest.mark.parametrize("wire", ["1E-131", "-1E-131", "0.9E-130", "0." + "0" * 130 + "1"])
def test_magnitudes_below_the_range_underflow(wire: str):
    assert _error(wire) == UNDERFLOW


@pytest.mark.parametrize(
    "wire",
    [
        DIGITS_38 + "9",
        "-1.23456789012345678901234567890123456789",
        "3.14159265358979323846264338327950288419",
    ],
)
def test_39_significant_digits_are_too_precise(wire: str):
    assert _error(wire) == TOO_PRECISE


def test_leading_and_trailing_zeros_are_not_significant():
    assert parse_number("000" + DIGITS_38 + ".000") == Decimal(DIGITS_38)
    assert _text("1" + "0" * 60) == "1" + "0" * 60
    assert _text("0.0000" + DIGITS_38 + "0000") == "0.0000" + DIGITS_38


def test_range_errors_come_before_the_digit_count():
    assert _error(DIGITS_38 + "9E+200") == OVERFLOW
    assert _error(DIGITS_38 + "9E-200") == UNDERFLOW


def test_zero_is_one_canonical_value():
    for wire in ("0", "-0", "0.000", "-0e-500", "+0E+9"):
        value = parse_number(wire)
        assert value == ZERO and str(value) == "0" and not value.is_signed()


def test_sums_are_exact():
    assert (
        format_number(add_numbers(parse_number("1"), parse_number("1E+22"))) == "1" + "0" * 21 + "1"
    )
    assert format_number(subtract_numbers(parse_number("1E+22"), parse_number("1"))) == "9" * 22
    assert format_number(add_numbers(parse_number("0.1"), parse_number("0.2"))) == "0.3"


def test_a_difference_of_equal_numbers_is_plain_zero():
    value = parse_number("-12.5")
    assert format_number(subtract_numbers(value, value)) == "0"
    assert format_number(add_numbers(value, parse_number("12.5"))) == "0"


def test_sums_beyond_the_range_overflow():
    with pytest.raises(ValidationError, match=r"^Number overflow"):
        add_numbers(parse_number("9e125"), parse_number("9e125"))
    with pytest.raises(ValidationError, match=r"^Number overflow"):
        subtract_numbers(parse_number("9e125"), parse_number("-9e125"))
    with pytest.raises(ValidationError, match=r"^Number overflow"):
        add_numbers(parse_number(MAX), parse_number("1E+125"))


def test_an_inexact_sum_is_refused_with_the_overflow_text():
    # The service does not round 1E50 + 1 to 38 digits; it refuses it, saying "overflow".
    with pytest.raises(ValidationError) as info:
        add_numbers(parse_number("1e50"), parse_number("1"))
    assert info.value.message == OVERFLOW
    with pytest.raises(ValidationError) as info:
        subtract_numbers(parse_number("1e50"), parse_number("1"))
    assert info.value.message == OVERFLOW


def test_a_difference_below_the_range_underflows():
    a = parse_number("1.0000000000000000000000000000000000001E-130")
    with pytest.raises(ValidationError) as info:
        subtract_numbers(a, parse_number("1E-130"))
    assert info.value.message == UNDERFLOW


# Byte sizes dynoxide measured against the 400 KB gate of eu-west-2 (nubo-db/dynoxide src/types.rs).
MEASURED_SIZES = {
    "1": 2,
    "12": 2,
    "123": 3,
    "1234": 3,
    "12345": 4,
    "123456": 4,
    "1234567": 5,
    "12345678": 5,
    "123456789": 6,
    "1234567891": 6,
    "12345678912": 7,
    "123456789123": 7,
    "1234567890123456789": 11,
    DIGITS_38: 20,
    "0042": 2,
    "100": 2,
    "1010": 3,
    "0.0000001": 2,
    "0": 1,
    "1E125": 2,
    "1E-100": 2,
    "1.5": 3,
    "1.2": 3,
    "1.200": 3,
    "1.234": 4,
    "3.14159": 5,
    "100.5": 4,
    "0.15": 2,
    "15": 2,
    "-42": 3,
    "-12345": 5,
    "-1E125": 3,
    "-0.15": 3,
    "-0": 1,
}


@pytest.mark.parametrize(("wire", "size"), MEASURED_SIZES.items())
def test_number_sizes_match_the_measured_service(wire: str, size: int):
    assert number_size(parse_number(wire)) == size


def test_number_sizes_count_base_100_pairs_aligned_on_even_powers():
    assert number_size(parse_number("1234560")) == 5  # 01 23 45 60
    assert number_size(parse_number("0.015")) == 3  # .01 50
    assert number_size(parse_number("-" + DIGITS_38 + "0")) == 22  # 20 pairs, exponent, sign


@given(numbers())
def test_the_canonical_text_parses_back_to_the_same_number(value: Decimal):
    text = format_number(value)
    assert "E" not in text and "e" not in text
    assert parse_number(text) == value
    assert format_number(parse_number(text)) == text
    assert str(parse_number(text)) == str(value)  # one form per value: same digits and exponent


@given(numbers(), numbers())
def test_sums_are_exact_or_refused(a: Decimal, b: Decimal):
    for op, exact in ((add_numbers, WIDE.add(a, b)), (subtract_numbers, WIDE.subtract(a, b))):
        try:
            got = op(a, b)
        except ValidationError:
            digits = len(WIDE.normalize(exact).as_tuple().digits)
            assert exact and (not -130 <= exact.adjusted() <= 125 or digits > 38)
        else:
            assert got == exact
            assert parse_number(format_number(got)) == got
