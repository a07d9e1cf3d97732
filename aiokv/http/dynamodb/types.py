"""DynamoDB AttributeValues: validate the wire JSON, hold it normalized, size it, render it.

The wire form (as orjson gives it) and the internal form differ only in their payloads:

    value    := {"S": str} | {"N": n} | {"B": b} | {"BOOL": bool} | {"NULL": true}
              | {"L": [value, ...]} | {"M": {name: value, ...}}
              | {"SS": [str, ...]} | {"NS": [n, ...]} | {"BS": [b, ...]}
    wire     :  n is a numeric string, b a base64 string, sets are lists in any order
    internal :  n is a canonical Decimal (numbers.py), b is bytes, sets are tuples sorted the
                way DynamoDB orders their elements (strings and binary by unsigned bytes,
                numbers numerically)

Invariant 1: an internal value is a dict with exactly one key; the internal form of equal
values is equal (==), so conditions compare values with Python's ==.
Invariant 2: no value is nested deeper than 32 levels (a top-level attribute is level 1).
Invariant 3: sets are non-empty and hold no two equal elements.

`render` turns anything holding internal values (an item, a whole response) into JSON bytes
with one orjson call; only Decimal and bytes reach Python code.

Validation mirrors the service: first the request must deserialize (SerializationError, type
"com.amazon.coral.service#SerializationException"), then values are checked in JSON order and
the first failure wins (ValidationError).  Texts: architect/dynalite validations/index.js
(checkTypes, validateAttributeValue), nubo-db/dynamodb-conformance tests/tier3, and
nubo-db/dynoxide issue 110 for the nesting text.
"""

from __future__ import annotations

from binascii import Error as Base64Error
from binascii import a2b_base64, b2a_base64
from decimal import Decimal
from typing import Any

import orjson

from aiokv.errors import InvalidArgumentError
from aiokv.http.dynamodb.numbers import (
    NOT_NUMERIC,
    ValidationError,
    format_number,
    load_number,
    number_size,
    parse_number,
)

AttributeValue = dict[str, Any]  # internal form, see the module docstring
Item = dict[str, AttributeValue]

MAX_ITEM_SIZE = 400 * 1024  # bytes, as the service counts them (item_size)
MAX_DEPTH = 32  # nesting levels of documents; a top-level attribute is level 1
CONTAINER_OVERHEAD = 3  # bytes a List or Map costs whatever it holds
ELEMENT_OVERHEAD = 1  # bytes each List or Map element costs on top of its own size

ITEM_TOO_LARGE = "Item size has exceeded the maximum allowed size"
EMPTY_VALUE = (
    "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
)
MANY_TYPES = (
    "Supplied AttributeValue has more than one datatypes set, "
    "must contain exactly one of the supported datatypes"
)
INVALID = "One or more parameter values were invalid: "
NULL_FALSE = INVALID + "Null attribute value types must have the value of true"
EMPTY_SS = INVALID + "An string set  may not be empty"  # sic: "An", two spaces
EMPTY_NS = INVALID + "An number set  may not be empty"
EMPTY_BS = INVALID + "Binary sets should not be empty"
NS_DUPLICATES = "Input collection contains duplicates"  # sic: no prefix for number sets
TOO_DEEP = (
    "Nesting Levels have exceeded supported limits: "
    "Attributes in the item have nested levels beyond supported limit"
)

# Deserialization texts, by what arrived where something else was expected.
_STRUCT_FOUND = "Start of structure or map found where not expected"
_FIELD_TYPE = "Unexpected field type"
_VALUE_TYPE = "Unexpected value type in payload"
_NOT_BASE64 = "only base-64-encoded strings are convertible to bytes"
_BAD_BASE64 = "Invalid last non-pad Base64 character dectected"  # sic
_TRUE_WORDS = frozenset({"TRUE", "1", "YES"})  # the service's JSON reader takes these as true
_FALSE_WORDS = frozenset({"FALSE", "0", "NO"})


class SerializationError(InvalidArgumentError):
    """The request body does not deserialize into the operation's shapes."""

    type_name = "com.amazon.coral.service#SerializationException"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_value(raw: object) -> AttributeValue:
    """Validates one wire AttributeValue and returns its internal form.

    Args:
        raw: the decoded JSON, e.g. `{"N": "1.50"}`.

    Raises:
        SerializationError: if anything in `raw` has the wrong JSON type (checked over all of
            `raw` before any ValidationError is raised, as the service deserializes first).
        ValidationError: the first invalid value, with the service's message.

    >>> parse_value({"M": {"n": {"N": "1.50"}, "b": {"BS": ["AQ==", "AA=="]}}})
    {'M': {'n': {'N': Decimal('1.5')}, 'b': {'BS': (b'\\x00', b'\\x01')}}}
    """
    try:
        return _value(raw, 1)
    except ValidationError:
        _check_shapes(raw)
        raise


def parse_item(raw: object) -> Item:
    """Validates a wire map of attribute name -> AttributeValue (an Item, a Key, ...).

    Attribute names are not checked here; see `parse_value` for the rest.
    """
    if type(raw) is not dict:
        raise SerializationError(_STRUCT_FOUND if isinstance(raw, list) else _FIELD_TYPE)
    try:
        return {name: _value(value, 1) for name, value in raw.items()}
    except ValidationError:
        for value in raw.values():
            _check_shapes(value)
        raise


def value_size(value: AttributeValue) -> int:
    """Bytes an internal value counts toward its item's size (without its name).

    Strings count UTF-8 bytes, binary raw bytes, Numbers `number_size`, BOOL and NULL one
    byte, sets the sum of their elements, a List or Map 3 bytes plus 1 per element plus its
    elements (a Map's element includes its name).  Source: the developer guide's "DynamoDB
    item sizes and formats" (CapacityUnitCalculations.html).
    """
    ((kind, payload),) = value.items()
    if kind == "S":
        return len(payload) if payload.isascii() else len(payload.encode())
    if kind == "N":
        return number_size(payload)
    if kind == "B":
        return len(payload)
    if kind == "M":
        return CONTAINER_OVERHEAD + len(payload) + item_size(payload)
    if kind == "L":
        return CONTAINER_OVERHEAD + len(payload) + sum(map(value_size, payload))
    if kind == "SS":
        return sum(len(s) if s.isascii() else len(s.encode()) for s in payload)
    if kind == "NS":
        return sum(map(number_size, payload))
    if kind == "BS":
        return sum(map(len, payload))
    return 1  # BOOL, NULL


def item_size(item: Item) -> int:
    """Bytes an item counts against MAX_ITEM_SIZE: names (UTF-8) plus values.

    >>> item_size(parse_item({"id": {"S": "abc"}, "n": {"N": "-42"}, "l": {"L": [{"NULL": True}]}}))
    15

    That is 2 + 3 for id, 1 + 3 for n (a negative two-digit number) and 1 + (3 + 1 + 1) for l.
    """
    names = sum(len(n) if n.isascii() else len(n.encode()) for n in item)
    return names + sum(map(value_size, item.values()))


def to_wire(value: AttributeValue) -> dict[str, Any]:
    """The wire form of an internal value, as plain JSON types (orjson.loads would give it)."""
    return orjson.loads(render(value))  # type: ignore[no-any-return]


def render(obj: object) -> bytes:
    """JSON bytes of `obj`, which may hold internal values anywhere (items, whole responses).

    >>> render({"Item": parse_item({"n": {"N": "1e2"}, "b": {"B": "AAE="}})})
    b'{"Item":{"n":{"N":"100"},"b":{"B":"AAE="}}}'
    """
    return orjson.dumps(obj, default=_render_payload)


def load_item(wire: dict[str, Any]) -> Item:
    """The internal form of an item that `render` wrote, trusted (no validation): for items read
    back from storage.  Invalid input raises arbitrary errors or gives garbage."""
    return {name: _load(value) for name, value in wire.items()}


# -- parsing ---------------------------------------------------------------------------------------


def _value(raw: object, depth: int) -> AttributeValue:
    if type(raw) is not dict:
        if raw is None:
            raise ValidationError(EMPTY_VALUE)
        if isinstance(raw, list):
            raise SerializationError(
                "Unrecognized collection type class com.amazonaws.dynamodb.v20120810.AttributeValue"
            )
        raise SerializationError(_VALUE_TYPE)
    if depth > MAX_DEPTH:
        raise ValidationError(TOO_DEEP)
    if len(raw) == 1:  # the common case: one member
        ((kind, payload),) = raw.items()
        parse = _PARSERS.get(kind)
        if parse is not None and payload is not None:
            return {kind: parse(payload, depth)}
    # Unknown members and null ones are dropped, as the service's reader does; each member left
    # is checked in order before the count is.
    members = [(k, p) for k, p in raw.items() if p is not None and k in _PARSERS]
    if not members:
        raise ValidationError(EMPTY_VALUE)
    parsed = [{kind: _PARSERS[kind](payload, depth)} for kind, payload in members]
    if len(parsed) > 1:
        raise ValidationError(MANY_TYPES)
    return parsed[0]


def _string(payload: object, java_type: str = "String") -> str:
    if type(payload) is str:
        return payload
    if isinstance(payload, bool):
        raise SerializationError(f"{str(payload).upper()}_VALUE cannot be converted to {java_type}")
    if isinstance(payload, int):
        raise SerializationError(f"NUMBER_VALUE cannot be converted to {java_type}")
    if isinstance(payload, float):
        raise SerializationError(f"DECIMAL_VALUE cannot be converted to {java_type}")
    if isinstance(payload, list):
        raise SerializationError(f"Unrecognized collection type class java.lang.{java_type}")
    raise SerializationError(_STRUCT_FOUND)


def _blob(payload: object) -> bytes:
    if type(payload) is not str:
        if isinstance(payload, dict):
            raise SerializationError(_STRUCT_FOUND)
        if isinstance(payload, list):
            raise SerializationError("Unrecognized collection type class java.nio.ByteBuffer")
        raise SerializationError(_NOT_BASE64)
    if len(payload) % 4:
        raise SerializationError(
            f"Base64 encoded length is expected a multiple of 4 bytes but found: {len(payload)}"
        )
    try:
        return a2b_base64(payload, strict_mode=True)
    except (Base64Error, ValueError):
        raise SerializationError(_BAD_BASE64) from None


def _boolean(payload: object) -> bool:
    if payload is True or payload is False:
        return payload
    if type(payload) is str:
        word = payload.upper()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
        raise SerializationError("Unexpected token received from parser")
    if isinstance(payload, int | float):
        kind = "NUMBER" if isinstance(payload, int) else "DECIMAL"
        raise SerializationError(f"{kind}_VALUE cannot be converted to Boolean")
    if isinstance(payload, list):
        raise SerializationError("Unrecognized collection type class java.lang.Boolean")
    raise SerializationError(_STRUCT_FOUND)


def _list(payload: object) -> list[Any]:
    if type(payload) is list:
        return payload
    raise SerializationError(_STRUCT_FOUND if isinstance(payload, dict) else _FIELD_TYPE)


def _parse_s(payload: object, depth: int) -> str:
    return _string(payload)


def _parse_n(payload: object, depth: int) -> Decimal:
    return parse_number(_string(payload))


def _parse_b(payload: object, depth: int) -> bytes:
    return _blob(payload)


def _parse_bool(payload: object, depth: int) -> bool:
    return _boolean(payload)


def _parse_null(payload: object, depth: int) -> bool:
    if not _boolean(payload):
        raise ValidationError(NULL_FALSE)
    return True


def _parse_ss(payload: object, depth: int) -> tuple[str, ...]:
    strings = [_string(s) if s is not None else _null_member() for s in _list(payload)]
    if not strings:
        raise ValidationError(EMPTY_SS)
    unique = sorted(set(strings))  # code point order is UTF-8 byte order
    if len(unique) != len(strings):
        shown = ", ".join(strings)
        raise ValidationError(f"{INVALID}Input collection [{shown}] contains duplicates.")
    return tuple(unique)


def _parse_ns(payload: object, depth: int) -> tuple[Decimal, ...]:
    texts = _list(payload)
    if not texts:
        raise ValidationError(EMPTY_NS)
    numbers = [parse_number(_string(t)) if t is not None else _null_number() for t in texts]
    unique = sorted(set(numbers))
    if len(unique) != len(numbers):
        raise ValidationError(NS_DUPLICATES)
    return tuple(unique)


def _parse_bs(payload: object, depth: int) -> tuple[bytes, ...]:
    texts = _list(payload)
    blobs = [_blob(b) if b is not None else _null_member() for b in texts]
    if not blobs:
        raise ValidationError(EMPTY_BS)
    unique = sorted(set(blobs))
    if len(unique) != len(blobs):
        shown = ", ".join(texts)
        raise ValidationError(f"{INVALID}Input collection [{shown}]of type BS contains duplicates.")
    return tuple(unique)


def _parse_m(payload: object, depth: int) -> dict[str, AttributeValue]:
    if type(payload) is not dict:
        if isinstance(payload, list):
            raise SerializationError(
                "Unrecognized collection type java.util.Map<java.lang.String, "
                "com.amazonaws.dynamodb.v20120810.AttributeValue>"
            )
        raise SerializationError(_FIELD_TYPE)
    depth += 1
    return {name: _value(v, depth) for name, v in payload.items()}


def _parse_l(payload: object, depth: int) -> list[AttributeValue]:
    depth += 1
    return [_value(v, depth) for v in _list(payload)]


def _null_member() -> Any:
    # A null inside a set: the service's reader keeps it and nothing documents what follows;
    # refusing it is the safe reading.
    raise ValidationError(EMPTY_VALUE)


def _null_number() -> Decimal:
    raise ValidationError(NOT_NUMERIC)


_PARSERS: dict[str, Any] = {
    "S": _parse_s,
    "N": _parse_n,
    "B": _parse_b,
    "BOOL": _parse_bool,
    "NULL": _parse_null,
    "M": _parse_m,
    "L": _parse_l,
    "SS": _parse_ss,
    "NS": _parse_ns,
    "BS": _parse_bs,
}


def _check_shapes(raw: object) -> None:
    """Raises the SerializationError the service would give for `raw`, if any.

    Runs only after a ValidationError, so a wrong JSON type anywhere wins over it.
    """
    if type(raw) is not dict:
        if raw is not None:
            _value(raw, 1)  # raises the SerializationError
        return
    for kind, payload in raw.items():
        if payload is None or kind not in _PARSERS:
            continue
        if kind in ("S", "N"):
            _string(payload)
        elif kind == "B":
            _blob(payload)
        elif kind in ("BOOL", "NULL"):
            _boolean(payload)
        elif kind == "M":
            if type(payload) is not dict:
                _parse_m(payload, 0)  # raises the SerializationError
            for v in payload.values():
                _check_shapes(v)
        else:
            members = _list(payload)
            check: Any = {"SS": _string, "NS": _string, "BS": _blob, "L": _check_shapes}[kind]
            for member in members:
                if member is not None:
                    check(member)


# -- rendering and loading -------------------------------------------------------------------------


def _render_payload(obj: object) -> str:
    if type(obj) is Decimal:
        return format_number(obj)
    if type(obj) is bytes:
        return b2a_base64(obj, newline=False).decode("ascii")
    raise TypeError(f"cannot render {type(obj).__name__}")


def _load(value: dict[str, Any]) -> AttributeValue:
    ((kind, payload),) = value.items()
    if kind == "N":
        return {"N": load_number(payload)}
    if kind == "B":
        return {"B": a2b_base64(payload)}
    if kind == "M":
        return {"M": load_item(payload)}
    if kind == "L":
        return {"L": [_load(v) for v in payload]}
    if kind == "NS":
        return {"NS": tuple(map(load_number, payload))}
    if kind == "BS":
        return {"BS": tuple(map(a2b_base64, payload))}
    if kind == "SS":
        return {"SS": tuple(payload)}
    return value  # S, BOOL, NULL: the same payload in both forms
