"""Merge operators: read-modify-write folded into the store.  See docs/merge.md.

`db.merge(key, operand)` writes an operand; the family's operator folds the operands of a key,
oldest first, onto the value below them when a read, a flush or a compaction needs the result.
The operator's `name` is persisted with the family; reopening it with another name fails.

Values and operands of the built-ins (all bytes):

    Int64Add        value, operand := [+-]? [0-9]+, at most 20 bytes; the sum wraps to int64
    StringAppend    value := operand (sep operand)*; the separator is part of the name
    Max, Min        any bytes, compared bytewise (as memcmp, then the shorter first)
    JsonMergePatch  value, operand := a JSON text (RFC 8259); operands are RFC 7386 patches

Persisted names (frozen: a renamed built-in could not reopen its families):

    aiokv.int64_add   aiokv.string_append:<separator as lowercase hex>   aiokv.max   aiokv.min
    aiokv.json_merge_patch

Invariant 1: an operator is a pure function of its arguments (no clock, no state), so folding
at flush, at compaction, in a worker process or at a read gives the same bytes.
Invariant 2: where a built-in has partial_merge(l, r) = p, full_merge(k, x, [..., l, r, ...])
equals full_merge(k, x, [..., p, ...]) for every x, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final, Protocol, runtime_checkable

import orjson

from aiokv.errors import InvalidArgumentError, InvalidTypeError

MAX_NAME_CHARS: Final = 200  # a name is stored in every manifest snapshot; keep it a label
RESERVED_PREFIX: Final = "aiokv."  # built-in names; a user operator may not pose as one
MAX_SEPARATOR: Final = 64  # bytes: its hex keeps a StringAppend name within MAX_NAME_CHARS


@runtime_checkable
class MergeOperator(Protocol):
    """What a column family's merge operator provides.

    `name` identifies the operator's semantics and is persisted with the family: change it when
    the semantics change.  `full_merge(key, existing, operands)` returns the value that results
    from applying `operands` (oldest first, never empty when the engine calls it) to `existing`
    (None when the key has no live value: never written, deleted or expired).

    Two optional methods, looked up with getattr (so a class without them still qualifies):

    - `partial_merge(key, left, right) -> bytes | None` combines two adjacent operands (`left`
      the older) into one, or returns None when it cannot.  The engine uses it at flush and
      compaction when the value below the operands is not in sight.  It must satisfy
      full_merge(k, x, [l, r]) == full_merge(k, x, [partial_merge(k, l, r)]) for every x.
    - `check_operand(operand) -> None` raises (any exception) on an operand that full_merge
      would reject; `db.merge` calls it before writing, so a bad operand writes nothing.

    Both methods may raise; the engine decides what a failure means (a read reports it).
    Operators should be picklable when compaction is to run in a worker process.
    """

    name: str

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes: ...


class _Builtin:
    """Shared behaviour of the built-ins: equal by name, picklable, readable repr."""

    name: str = ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Builtin):
            return NotImplemented
        return self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def check_operand(self, operand: bytes) -> None:
        """Raises InvalidTypeError unless `operand` is bytes."""
        if not isinstance(operand, bytes):
            raise InvalidTypeError(
                f"{type(self).__name__} operands are bytes, got {type(operand).__name__}"
            )


_INT: Final = rb"(?:[+-][0-9]{1,19}|[0-9]{1,20})"  # sign and digits, at most 20 bytes
_one_int = re.compile(_INT).fullmatch
_int_list = re.compile(_INT + rb"(?:," + _INT + rb")*").fullmatch
_BIAS: Final = 1 << 63  # (n + BIAS) mod 2**64 - BIAS is n in two's complement int64
_MASK: Final = (1 << 64) - 1
_INT64_MIN: Final = -(1 << 63)
_INT64_MAX: Final = (1 << 63) - 1


def _wrap(n: int) -> bytes:
    return b"%d" % (((n + _BIAS) & _MASK) - _BIAS)


class Int64Add(_Builtin):
    """A signed 64-bit counter: values and operands are ASCII decimal integers.

    A missing value counts as 0; the sum wraps around as int64 arithmetic does.

    >>> op = Int64Add()
    >>> op.full_merge(b"hits", None, [b"1", b"+2", b"-10"])
    b'-7'
    >>> op.full_merge(b"hits", b"9223372036854775807", [b"1"])
    b'-9223372036854775808'
    """

    name = "aiokv.int64_add"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        """Returns existing (0 if None) plus every operand, wrapped to int64.

        Raises:
            ValueError: existing or an operand is not a decimal integer of at most 20 bytes.
        """
        if existing is None and not operands:
            return b"0"
        # One regex over the joined list validates every piece in a single C call.  A piece
        # holding a comma passes it but then fails int(): caught below, with the same message.
        data = b",".join(operands if existing is None else [existing, *operands])
        if _int_list(data) is not None:
            try:
                n = sum(map(int, operands), 0 if existing is None else int(existing))
            except ValueError:
                pass
            else:
                return b"%d" % n if _INT64_MIN <= n <= _INT64_MAX else _wrap(n)
        if existing is not None and _one_int(existing) is None:
            raise ValueError(f"Int64Add: the existing value {existing[:40]!r} is not an integer")
        bad = next((o for o in operands if _one_int(o) is None), b"?")
        raise ValueError(f"Int64Add: the operand {bad[:40]!r} is not an integer")

    def partial_merge(self, key: bytes, left: bytes, right: bytes) -> bytes | None:
        """The wrapped sum of two operands; None if either is not an integer."""
        if _one_int(left) is None or _one_int(right) is None:
            return None
        n = int(left) + int(right)
        return b"%d" % n if _INT64_MIN <= n <= _INT64_MAX else _wrap(n)

    def check_operand(self, operand: bytes) -> None:
        """Raises InvalidArgumentError unless `operand` is a decimal integer of <= 20 bytes.

        >>> Int64Add().check_operand(b"1 ")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        aiokv.errors.InvalidArgumentError: Int64Add operands are decimal integers ...
        """
        if operand.__class__ is bytes and operand.isdigit() and len(operand) <= 20:
            return  # the common case, without the regex: ASCII digits only (bytes.isdigit)
        if not isinstance(operand, bytes) or _one_int(operand) is None:
            raise InvalidArgumentError(
                "Int64Add operands are decimal integers of at most 20 ASCII bytes "
                f"(an optional sign, then digits: b'1', b'-5'), got {operand[:40]!r}"
            )


class StringAppend(_Builtin):
    """Appends operands to the value, joined with `separator`.

    >>> op = StringAppend(b"|")
    >>> op.name, op.full_merge(b"k", b"a", [b"b", b"c"]), op.full_merge(b"k", None, [b"b"])
    ('aiokv.string_append:7c', b'a|b|c', b'b')
    """

    def __init__(self, separator: bytes = b",") -> None:
        if not isinstance(separator, bytes):
            raise InvalidTypeError(
                f"StringAppend separator must be bytes, got {type(separator).__name__}"
            )
        if len(separator) > MAX_SEPARATOR:
            raise InvalidArgumentError(
                f"StringAppend separator of {len(separator)} bytes is over {MAX_SEPARATOR}"
            )
        self.separator = separator
        self.name = f"aiokv.string_append:{separator.hex()}"

    def __repr__(self) -> str:
        return f"StringAppend(separator={self.separator!r})"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        """existing, then each operand, joined with the separator (no leading one if None)."""
        if existing is None:
            return self.separator.join(operands)
        return self.separator.join([existing, *operands])

    def partial_merge(self, key: bytes, left: bytes, right: bytes) -> bytes | None:
        """left + separator + right."""
        return left + self.separator + right


class Max(_Builtin):
    """Keeps the bytewise greatest of the value and the operands.

    >>> Max().full_merge(b"k", b"b", [b"a", b"ab"])
    b'b'
    """

    name = "aiokv.max"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        """The greatest of existing (if not None) and the operands; b"" when there are none."""
        best = max(operands, default=b"")
        return best if existing is None or existing < best else existing

    def partial_merge(self, key: bytes, left: bytes, right: bytes) -> bytes | None:
        """The greater operand."""
        return left if left > right else right


class Min(_Builtin):
    """Keeps the bytewise least of the value and the operands.

    >>> Min().full_merge(b"k", b"b", [b"ba", b"c"])
    b'b'
    """

    name = "aiokv.min"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        """The least of existing (if not None) and the operands; b"" when there are none."""
        if existing is None:
            return min(operands, default=b"")
        return min(existing, min(operands, default=existing))

    def partial_merge(self, key: bytes, left: bytes, right: bytes) -> bytes | None:
        """The lesser operand."""
        return left if left < right else right


_loads = orjson.loads
_dumps = orjson.dumps
_SORTED: Final = orjson.OPT_SORT_KEYS  # canonical output: the same bytes whatever fold order
_UNPARSED: Final = object()  # marks bytes that are not JSON
# orjson parses 1024 levels of nesting but serializes 254: a deeper operand could never be
# written back.  A text nested 255 deep needs 255 opening and 255 closing bytes.
_DEEP_ENOUGH_TO_CHECK: Final = 2 * 255


def _apply(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch(target, patch); mutates target (which the caller owns)."""
    if type(patch) is not dict:
        return patch
    if type(target) is not dict:
        target = {}
    for member, value in patch.items():
        if value is None:
            target.pop(member, None)
        else:
            target[member] = _apply(target.get(member), value)
    return target


def _compose(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any] | None:
    """A patch equal to `left` then `right` (both objects), or None when none exists.

    A member that `right` sets to an object where `left` set null or a non-object cannot be
    composed: in sequence it yields exactly that object, while any single patch applied to an
    object already holding other members would keep them.
    """
    out = dict(left)
    for member, value in right.items():
        if type(value) is dict and member in left:
            below = left[member]
            if type(below) is not dict:
                return None
            value = _compose(below, value)
            if value is None:
                return None
        out[member] = value
    return out


def _parse(data: bytes) -> Any:
    try:
        return _loads(data)
    except orjson.JSONDecodeError:
        return _UNPARSED


class JsonMergePatch(_Builtin):
    """Applies RFC 7386 JSON merge patches; the result is JSON with sorted object keys.

    An existing value that is not a JSON object (or not JSON at all) is replaced by the first
    object patch, as RFC 7386 says; a patch that is not an object replaces the value.

    >>> op = JsonMergePatch()
    >>> op.full_merge(b"s", b'{"a": 1, "b": {"c": 2}}', [b'{"b": {"c": null, "d": 3}}'])
    b'{"a":1,"b":{"d":3}}'
    """

    name = "aiokv.json_merge_patch"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        """Applies each patch in order to existing.

        Raises:
            orjson.JSONDecodeError (a ValueError): an operand is not JSON.
            orjson.JSONEncodeError (a TypeError): the result nests deeper than orjson writes.
        """
        if not operands:
            return b"null" if existing is None else existing
        target = None if existing is None else _parse(existing)
        for patch in map(_loads, operands):
            target = _apply(target, patch)
        return _dumps(target, option=_SORTED)

    def partial_merge(self, key: bytes, left: bytes, right: bytes) -> bytes | None:
        """One patch equal to `left` then `right`, or None when no single patch is."""
        first = _parse(left)
        second = _parse(right)
        if first is _UNPARSED or second is _UNPARSED:
            return None
        if type(second) is not dict:
            return right  # it replaces whatever the first patch made
        if type(first) is not dict:
            return None  # the pair sets exactly one object: no patch can say that
        composed = _compose(first, second)
        if composed is None:
            return None
        try:
            return _dumps(composed, option=_SORTED)
        except orjson.JSONEncodeError:
            return None  # nested deeper than orjson writes: let full_merge report it

    def check_operand(self, operand: bytes) -> None:
        """Raises InvalidArgumentError unless `operand` is a JSON text orjson can write back."""
        super().check_operand(operand)
        try:
            patch = _loads(operand)
            if len(operand) >= _DEEP_ENOUGH_TO_CHECK:
                _dumps(patch)
        except orjson.JSONDecodeError as exc:
            raise InvalidArgumentError(f"JsonMergePatch operand is not JSON: {exc}") from None
        except orjson.JSONEncodeError as exc:
            raise InvalidArgumentError(f"JsonMergePatch operand is too deep: {exc}") from None


_BY_NAME: Final[dict[str, Callable[[], MergeOperator]]] = {
    Int64Add.name: Int64Add,
    Max.name: Max,
    Min.name: Min,
    JsonMergePatch.name: JsonMergePatch,
}
_STRING_APPEND: Final = "aiokv.string_append:"


def builtin(name: str) -> MergeOperator | None:
    """Rebuilds the built-in operator persisted as `name`; None if no built-in has it.

    >>> builtin("aiokv.string_append:3b")
    StringAppend(separator=b';')
    >>> builtin("my.counter") is None
    True
    """
    make = _BY_NAME.get(name)
    if make is not None:
        return make()
    if not name.startswith(_STRING_APPEND):
        return None
    try:
        appender = StringAppend(bytes.fromhex(name[len(_STRING_APPEND) :]))
    except ValueError:
        return None
    # fromhex also takes upper case and spaces: only the name StringAppend writes is its own.
    return appender if appender.name == name else None


def check_operator(op: object) -> MergeOperator:
    """Validates a merge operator supplied by a user and returns it.

    Raises:
        InvalidTypeError: op is a class, lacks `name` or `full_merge`, or has members of the
            wrong type.
        InvalidArgumentError: the name is empty, too long, not printable ASCII, or starts with
            "aiokv." without being a built-in.

    >>> check_operator(Max())
    Max()
    >>> check_operator(Max)
    Traceback (most recent call last):
    ...
    aiokv.errors.InvalidTypeError: pass a merge operator instance, such as Max(), not the class
    """
    if isinstance(op, type):
        raise InvalidTypeError(
            f"pass a merge operator instance, such as {op.__name__}(), not the class"
        )
    name = getattr(op, "name", None)
    if not isinstance(name, str):
        raise InvalidTypeError(
            f"a merge operator needs a str `name`; {type(op).__name__}.name is "
            f"{type(name).__name__}"
        )
    if not callable(getattr(op, "full_merge", None)):
        raise InvalidTypeError(
            f"a merge operator needs a full_merge(key, existing, operands) method; "
            f"{type(op).__name__} has none"
        )
    for optional in ("partial_merge", "check_operand"):
        member = getattr(op, optional, None)
        if member is not None and not callable(member):
            raise InvalidTypeError(f"{type(op).__name__}.{optional} must be a method")
    if not name or len(name) > MAX_NAME_CHARS or not (name.isascii() and name.isprintable()):
        raise InvalidArgumentError(
            f"a merge operator name is 1 to {MAX_NAME_CHARS} printable ASCII characters, "
            f"got {name[:60]!r}"
        )
    if name.startswith(RESERVED_PREFIX) and not isinstance(op, _Builtin):
        raise InvalidArgumentError(
            f"merge operator names starting with {RESERVED_PREFIX!r} are reserved for the "
            f"built-ins, got {name!r}"
        )
    if not isinstance(op, MergeOperator):  # pragma: no cover - the checks above imply it
        raise InvalidTypeError(f"{type(op).__name__} is not a merge operator")
    return op
