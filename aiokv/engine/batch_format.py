"""Batch payload: the operations of one or more write batches in a WAL record.

See docs/format/wal.md.  All integers are little-endian.

    payload := base_seq: u64, count: u32, op[count]
    op      := kind: u8, cf: u32, key_len: u32, value_len: u32, key, value, [expiry_ms: u64]

`expiry_ms` is present only for PUT_EXPIRING.  For DELETE value_len is 0; for DELETE_RANGE the
key is the inclusive start and the value the exclusive end of the range.  The i-th op carries
sequence number base_seq + i; a later op on the same key wins over an earlier one.

Invariant 1: count equals the number of ops, and the ops fill the payload exactly.
Invariant 2: kind is a known ValueKind; unknown kinds are corruption, not something to skip.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import NamedTuple


class ValueKind(IntEnum):  # On disk: never renumber or reuse.
    DELETE = 0
    PUT = 1
    MERGE = 2
    DELETE_RANGE = 3
    PUT_EXPIRING = 4


class Op(NamedTuple):
    """One operation.  `expiry_ms` is 0 unless kind is PUT_EXPIRING."""

    kind: int
    cf: int
    key: bytes
    value: bytes
    expiry_ms: int = 0


PAYLOAD_HEADER = struct.Struct("<QI")  # base_seq, count
OP_HEADER = struct.Struct("<BIII")  # kind, cf, key_len, value_len
EXPIRY = struct.Struct("<Q")  # expiry_ms, after the value of a PUT_EXPIRING op
_KINDS = frozenset(int(k) for k in ValueKind)
_PUT_EXPIRING = int(ValueKind.PUT_EXPIRING)
_DELETE = int(ValueKind.DELETE)

# Hot path: bind the bound methods once.
_pack_op = OP_HEADER.pack
_pack_expiry = EXPIRY.pack


def encode_op(kind: int, cf: int, key: bytes, value: bytes, expiry_ms: int = 0) -> bytes:
    """Encodes one op.

    >>> encode_op(ValueKind.PUT, 0, b"k", b"v").hex()
    '010000000001000000010000006b76'
    """
    if kind == _PUT_EXPIRING:
        return _pack_op(kind, cf, len(key), len(value)) + key + value + _pack_expiry(expiry_ms)
    return _pack_op(kind, cf, len(key), len(value)) + key + value


def encode_payload(base_seq: int, count: int, encoded_ops: list[bytes]) -> bytes:
    """Joins already encoded ops under a payload header."""
    return b"".join([PAYLOAD_HEADER.pack(base_seq, count), *encoded_ops])


class BatchDecodeError(ValueError):
    """A payload does not follow the grammar; `offset` is relative to the payload start."""

    def __init__(self, offset: int, detail: str) -> None:
        super().__init__(detail)
        self.offset = offset
        self.detail = detail


def decode_payload(payload: bytes) -> tuple[int, list[Op]]:
    """Decodes a payload into (base_seq, ops).

    Raises:
        BatchDecodeError: the bytes do not follow the grammar.
    """
    size = len(payload)
    if size < PAYLOAD_HEADER.size:
        raise BatchDecodeError(0, f"payload of {size} bytes is shorter than its header")
    base_seq, count = PAYLOAD_HEADER.unpack_from(payload, 0)
    pos = PAYLOAD_HEADER.size
    ops: list[Op] = []
    unpack_op = OP_HEADER.unpack_from
    for _ in range(count):
        if pos + OP_HEADER.size > size:
            raise BatchDecodeError(pos, "op header runs past the payload")
        kind, cf, klen, vlen = unpack_op(payload, pos)
        if kind not in _KINDS:
            raise BatchDecodeError(pos, f"unknown value kind {kind}")
        if kind == _DELETE and vlen:
            raise BatchDecodeError(pos, "a DELETE op carries a value")
        start = pos + OP_HEADER.size
        end = start + klen + vlen
        expiry = 0
        if kind == _PUT_EXPIRING:
            if end + EXPIRY.size > size:
                raise BatchDecodeError(pos, "op runs past the payload")
            (expiry,) = EXPIRY.unpack_from(payload, end)
            nxt = end + EXPIRY.size
        else:
            nxt = end
        if nxt > size:
            raise BatchDecodeError(pos, "op runs past the payload")
        ops.append(Op(kind, cf, payload[start : start + klen], payload[start + klen : end], expiry))
        pos = nxt
    if pos != size:
        raise BatchDecodeError(pos, f"{size - pos} bytes after the last of {count} ops")
    return base_seq, ops
