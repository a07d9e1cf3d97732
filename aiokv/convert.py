"""Checks and conversions of user input: keys, values, TTLs, scan bounds.

Keys and values are bytes; `str` is accepted and UTF-8 encoded; bytearray and memoryview are
copied to bytes.  Anything else is an InvalidTypeError that names the argument.
"""

from __future__ import annotations

import math
from typing import Any

from aiokv.errors import InvalidArgumentError, InvalidTypeError

Key = bytes | str
Value = bytes | str


def as_bytes(x: Any, what: str) -> bytes:
    """Returns `x` as bytes, or raises InvalidTypeError / InvalidArgumentError.

    >>> as_bytes("é", "key")
    b'\\xc3\\xa9'
    """
    if type(x) is bytes:
        return x
    if isinstance(x, str):
        try:
            return x.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidArgumentError(f"{what} is not encodable as UTF-8: {e}") from None
    if isinstance(x, bytes | bytearray | memoryview):
        return bytes(x)
    raise InvalidTypeError(f"{what} must be bytes or str, not {type(x).__name__}")


def check_key(x: Any, max_size: int, what: str = "key") -> bytes:
    key = as_bytes(x, what)
    if not 0 < len(key) <= max_size:
        raise InvalidArgumentError(
            f"{what} of {len(key)} bytes: keys must be 1 to {max_size} bytes (option max_key_size)"
        )
    return key


def check_value(x: Any, max_size: int) -> bytes:
    value = as_bytes(x, "value")
    if len(value) > max_size:
        raise InvalidArgumentError(
            f"value of {len(value)} bytes is over the limit of {max_size} bytes "
            "(option max_value_size)"
        )
    return value


def check_bound(x: Any, what: str) -> bytes | None:
    """A scan bound: None (unbounded) or any bytes, the empty string included."""
    return None if x is None else as_bytes(x, what)


MAX_TTL_S = 100 * 365 * 24 * 3600  # a century: past it an expiry is a mistake, not a TTL


def check_ttl(ttl: Any) -> float:
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise InvalidTypeError(f"ttl must be a number of seconds, not {type(ttl).__name__}")
    if not (math.isfinite(ttl) and 0 < ttl <= MAX_TTL_S):
        raise InvalidArgumentError(f"ttl must be more than 0 and at most {MAX_TTL_S} seconds")
    return float(ttl)


def check_flag(x: Any, what: str) -> bool:
    if type(x) is not bool:
        raise InvalidTypeError(f"{what} must be True or False, not {x!r}")
    return x


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix` (None: no such key).

    >>> prefix_end(b"ab"), prefix_end(b"a\\xff"), prefix_end(b"\\xff")
    (b'ac', b'b', None)
    """
    p = prefix.rstrip(b"\xff")
    return p[:-1] + bytes([p[-1] + 1]) if p else None
