"""The value of a MERGE cell: a chain of versions a checkpoint could not fold into one value.

A checkpoint folds a key's merge operands onto its base (merge_fold.fold).  It cannot when the
operator raises, when the family has no operator any more, or when the base is a PUT_EXPIRING
whose expiry is still ahead (the value then changes when it expires).  The cell then keeps
the chain, newest first, and reads fold it, as they fold operands in memtables.

    chain := version+
    version := kind: u8, expiry_ms: u64, length: u32, value: length bytes   (little endian)

The versions carry no sequence numbers: a cell's versions are older than anything in the
memtables, and a read gives them the sequence number its tree was checkpointed at.

>>> decode_chain(encode_chain([(2, b"+1", 0, 0), (4, b"7", 0, 99)]))
[(2, b'+1', 0, 0), (4, b'7', 0, 99)]
"""

from __future__ import annotations

import struct
from typing import Final

from aiokv.engine.memtable import Entry
from aiokv.errors import CorruptionError

_HEAD: Final = struct.Struct("<BQI")


def encode_chain(entries: list[Entry]) -> bytes:
    """The cell value of `entries` (newest first); their sequence numbers are dropped."""
    pack = _HEAD.pack
    return b"".join(pack(k, x, len(v)) + v for k, v, _, x in entries)


def decode_chain(blob: bytes, seq: int = 0, where: str = "", offset: int = 0) -> list[Entry]:
    """The versions of a MERGE cell, newest first, each with sequence number `seq` (the
    engine gives the sequence number of the checkpoint whose tree it read).

    Raises:
        CorruptionError: the blob is cut short or empty (`where`, `offset` name the page).
    """
    out: list[Entry] = []
    pos = 0
    size = _HEAD.size
    while pos < len(blob):
        if pos + size > len(blob):
            raise CorruptionError(where, offset, "a merge chain is cut short")
        kind, expiry, n = _HEAD.unpack_from(blob, pos)
        pos += size
        if pos + n > len(blob):
            raise CorruptionError(where, offset, "a merge chain value is cut short")
        out.append((kind, blob[pos : pos + n], seq, expiry))
        pos += n
    if not out:
        raise CorruptionError(where, offset, "an empty merge chain")
    return out
