"""Table keys as order-preserving engine keys.  See docs/format/dynamodb_keys.md.

    key        := component(partition key) [component(sort key)]
    component  := "S" escaped(UTF-8 bytes) 0x00 0x01     a String
                | "B" escaped(bytes) 0x00 0x01           a Binary
                | "N" number                             a Number
    escaped(x) := x with each 0x00 written as 0x00 0xFF  (so 0x00 0x01 only ever ends one)
    number     := 0x01 (125 - E): u8 nines(digits) 0xFF   negative
                | 0x02                                   zero
                | 0x03 (E + 130): u8 digits 0x00         positive
    digits     := the significant digits in ASCII, first and last not "0"; nines(d) is each digit
                  replaced by 9 minus it.  E is the adjusted exponent, -130..125 (numbers.py).

Invariant 1 (order): for two values of one type, bytes compare as DynamoDB compares the values:
Strings and Binary by unsigned bytes, Numbers numerically.  So within a partition, keys sort by
sort key, and a Query is one range scan (`sort_range`).
Invariant 2 (prefix-free): no encoded component is a prefix of another (an escaped payload
ends at the only 0x00 not followed by 0xFF), so the partition component is the prefix of its
partition's keys and of no other key: they are contiguous.
Invariant 3: one value has one encoding (numbers are normalized before they are encoded).

The tag bytes are ASCII letters so keys read well in a hex dump; partitions of different types
never meet in one table (its key schema fixes the types).
"""

from __future__ import annotations

from decimal import Decimal
from enum import IntEnum

from aiokv.errors import InvalidArgumentError

KeyValue = str | bytes | Decimal  # the internal payload of an S, B or N key attribute

MAX_PARTITION_KEY_BYTES = 2048  # the service's limit on a partition key value
MAX_SORT_KEY_BYTES = 1024  # the service's limit on a sort key value


class KeyTag(IntEnum):  # On disk: never renumber or reuse.
    BINARY = 0x42  # "B"
    NUMBER = 0x4E  # "N"
    STRING = 0x53  # "S"


class NumberClass(IntEnum):  # On disk: never renumber or reuse.  Ordered as the values.
    NEGATIVE = 0x01
    ZERO = 0x02
    POSITIVE = 0x03


class KeyDecodeError(ValueError):
    """Bytes are not an encoded key; `offset` is where decoding failed."""

    def __init__(self, offset: int, detail: str) -> None:
        super().__init__(f"bad key at offset {offset}: {detail}")
        self.offset = offset
        self.detail = detail


_S = b"S"
_B = b"B"
_NUL = b"\x00"
_ESCAPED = b"\x00\xff"
_END = b"\x00\x01"  # after an escaped payload; sorts below the escape, so "" < "\x00"
_AFTER = b"\x00"  # key + _AFTER is the least key above key: nothing lies between them
_ZERO = bytes([KeyTag.NUMBER, NumberClass.ZERO])
_POSITIVE = bytes([KeyTag.NUMBER, NumberClass.POSITIVE])
_NEGATIVE = bytes([KeyTag.NUMBER, NumberClass.NEGATIVE])
_EXP_BIAS = 130  # positive exponent byte E + 130 spans 0..255 for E in -130..125
_EXP_TOP = 125  # negative exponent byte 125 - E: larger magnitudes sort first
_POS_DIGITS = bytes.maketrans(bytes(range(10)), b"0123456789")  # Decimal digits -> ASCII
_NEG_DIGITS = bytes.maketrans(bytes(range(10)), b"9876543210")  # ... -> ASCII of 9 - d
_NINES = bytes.maketrans(b"0123456789", b"9876543210")  # nines(d), its own inverse
_ASCII_DIGITS = frozenset(b"0123456789")
# Tag, class and exponent byte of each E, built once: the encoder only looks them up.
_POS_HEAD = {e: _POSITIVE + bytes([e + _EXP_BIAS]) for e in range(-_EXP_BIAS, _EXP_TOP + 1)}
_NEG_HEAD = {e: _NEGATIVE + bytes([_EXP_TOP - e]) for e in range(-_EXP_BIAS, _EXP_TOP + 1)}


def encode_key(partition: KeyValue, sort: KeyValue | None = None) -> bytes:
    """The engine key of an item.

    Args:
        partition: the partition key's payload (str for S, bytes for B, Decimal for N).
        sort: the sort key's payload, or None for a table without one.

    Raises:
        InvalidArgumentError: a payload of another type, or a Number out of DynamoDB's range.

    >>> encode_key("a\\x00b", Decimal("-1.5")).hex(" ")
    '53 61 00 ff 62 00 01 4e 01 7d 38 34 ff'
    """
    if sort is None:
        return _component(partition)
    return _component(partition) + _component(sort)


def encode_partition(partition: KeyValue) -> bytes:
    """The prefix every key of partition `partition` starts with, and no other key does."""
    return _component(partition)


def decode_key(key: bytes) -> tuple[KeyValue, KeyValue | None]:
    """(partition, sort or None) from an encoded key.

    Raises:
        KeyDecodeError: `key` is not exactly one or two well-formed components.

    >>> decode_key(bytes.fromhex("53 61 00 ff 62 00 01 4e 01 7d 38 34 ff"))
    ('a\\x00b', Decimal('-1.5'))
    """
    partition, pos = _decode_component(key, 0)
    if pos == len(key):
        return partition, None
    sort, pos = _decode_component(key, pos)
    if pos != len(key):
        raise KeyDecodeError(pos, f"{len(key) - pos} bytes after the sort key")
    return partition, sort


def sort_range(
    partition: KeyValue, op: str | None = None, a: KeyValue | None = None, b: KeyValue | None = None
) -> tuple[bytes, bytes]:
    """The half-open engine key range [start, end) of a Query's key condition.

    Args:
        partition: the partition key's payload.
        op: None (the whole partition), "EQ", "LT", "LE", "GT", "GE", "BETWEEN" (a..b, both
            included) or "BEGINS_WITH" (a str or bytes prefix).
        a, b: the sort key operands.

    >>> start, end = sort_range("p", "BEGINS_WITH", "ab")
    >>> start <= encode_key("p", "abc") < end, encode_key("p", "ac") < end
    (True, False)
    """
    prefix = _component(partition)
    if op is None:
        return prefix, _prefix_end(prefix)
    if op == "BEGINS_WITH":
        if type(a) is str:
            start = prefix + _S + a.encode().replace(_NUL, _ESCAPED)
        elif type(a) is bytes:
            start = prefix + _B + a.replace(_NUL, _ESCAPED)
        else:
            raise InvalidArgumentError(f"begins_with needs a string or binary, not {a!r}")
        return start, _prefix_end(start)
    if a is None:
        raise InvalidArgumentError(f"{op} needs a sort key value")
    low = prefix + _component(a)
    if op == "EQ":
        return low, low + _AFTER
    if op == "LT":
        return prefix, low
    if op == "LE":
        return prefix, low + _AFTER
    if op == "GT":
        return low + _AFTER, _prefix_end(prefix)
    if op == "GE":
        return low, _prefix_end(prefix)
    if op == "BETWEEN" and b is not None:
        return low, prefix + _component(b) + _AFTER
    raise InvalidArgumentError(f"unknown key condition {op!r}")


def _prefix_end(prefix: bytes) -> bytes:
    # The least key above every key that starts with `prefix`.  A tag byte is never 0xFF, so
    # stripping 0xFF bytes always leaves one to increment.
    stem = prefix.rstrip(b"\xff")
    return stem[:-1] + bytes([stem[-1] + 1])


def _component(value: KeyValue) -> bytes:
    if type(value) is str:
        return _S + value.encode().replace(_NUL, _ESCAPED) + _END
    if type(value) is bytes:
        return _B + value.replace(_NUL, _ESCAPED) + _END
    if type(value) is Decimal:
        return _number(value)
    raise InvalidArgumentError(f"a key value is str, bytes or Decimal, not {type(value).__name__}")


def _number(value: Decimal) -> bytes:
    if not value:
        return _ZERO
    sign, digits, exponent = value.as_tuple()
    if type(exponent) is not int:
        raise InvalidArgumentError(f"{value} is not a DynamoDB number")
    adjusted = exponent + len(digits) - 1
    if not -_EXP_BIAS <= adjusted <= _EXP_TOP:
        raise InvalidArgumentError(f"{value} is out of DynamoDB's number range")
    raw = bytes(digits).rstrip(b"\x00")  # a non-normalized Decimal keeps trailing zeros
    if sign:
        return _NEG_HEAD[adjusted] + raw.translate(_NEG_DIGITS) + b"\xff"
    return _POS_HEAD[adjusted] + raw.translate(_POS_DIGITS) + _NUL


def _decode_component(key: bytes, pos: int) -> tuple[KeyValue, int]:
    if pos >= len(key):
        raise KeyDecodeError(pos, "empty component")
    tag = key[pos]
    if tag == KeyTag.STRING or tag == KeyTag.BINARY:
        end = key.find(_NUL, pos + 1)
        while end != -1 and key[end + 1 : end + 2] == b"\xff":
            end = key.find(_NUL, end + 2)
        if end == -1 or key[end + 1 : end + 2] != b"\x01":
            raise KeyDecodeError(pos, "no terminator")
        raw = key[pos + 1 : end].replace(_ESCAPED, _NUL)
        if tag == KeyTag.BINARY:
            return raw, end + 2
        try:
            return raw.decode(), end + 2
        except UnicodeDecodeError:
            raise KeyDecodeError(pos, "a string key is not UTF-8") from None
    if tag == KeyTag.NUMBER:
        return _decode_number(key, pos)
    raise KeyDecodeError(pos, f"unknown tag 0x{tag:02x}")


def _decode_number(key: bytes, pos: int) -> tuple[Decimal, int]:
    klass = key[pos + 1 : pos + 2]
    if klass == b"\x02":
        return Decimal(0), pos + 2
    if klass not in (b"\x01", b"\x03") or len(key) < pos + 3:
        raise KeyDecodeError(pos, "bad number")
    negative = klass == b"\x01"
    start = pos + 3
    end = key.find(b"\xff" if negative else _NUL, start)
    if end == -1:
        raise KeyDecodeError(pos, "no terminator")
    digits = key[start:end].translate(_NINES) if negative else key[start:end]
    if not digits or not _ASCII_DIGITS.issuperset(digits) or digits[0] == 48 or digits[-1] == 48:
        raise KeyDecodeError(pos, "bad number digits")
    byte = key[pos + 2]
    adjusted = _EXP_TOP - byte if negative else byte - _EXP_BIAS
    text = f"{'-' if negative else ''}{digits.decode()}E{adjusted - len(digits) + 1}"
    return Decimal(text), end + 1
