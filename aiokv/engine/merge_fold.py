"""Folding merge operands: the pure step behind reads, flush and compaction.  See docs/merge.md.

An entry is a memtable-shaped tuple (memtable.Entry):

    entry := (kind: ValueKind, value: bytes, seq: int, expiry_ms: int)

A chain is the versions of one key, newest first, within one snapshot stripe (no live snapshot
sits between two of its entries, so its intermediate versions are invisible to every reader):

    chain := MERGE* base?       base := PUT | PUT_EXPIRING | DELETE

The value below the operands is the base's value: a PUT's, a PUT_EXPIRING's while
expiry_ms > now_ms; none (None) for a DELETE or an expired PUT_EXPIRING.  Operands carry no
expiry: once a PUT_EXPIRING base expires, its operands apply to nothing.  So `fold` never merges
operands into a base that has yet to expire (it combines the operands and keeps the base
apart): what a read sees must not depend on when a flush or compaction folded the chain.

Invariant 1: a chain's sequence numbers strictly decrease.  The entries `fold` returns replace
the chain: `resolve` reads the same value from them as from the chain at the same now_ms
(property-tested).
Invariant 2: operands reach full_merge oldest first; partial_merge only combines neighbours.
Invariant 3: DELETE_RANGE never appears in a chain: callers apply range tombstones first (as
DELETE entries, as the memtable does); an entry of any other kind raises ValueError.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Final

from aiokv.engine.batch_format import ValueKind

if TYPE_CHECKING:
    from aiokv.merge import MergeOperator

Entry = tuple[int, bytes, int, int]  # kind, value, seq, expiry_ms: as memtable.Entry

# Unfolded operands per key the engine lets pile up in a memtable before it folds them at write
# time (RocksDB's max_successive_merges): bounds the work and memory a read of a hot counter
# pays, while a burst of merges still costs one dict update each.
MAX_OPERANDS: Final = 64

DELETE: Final = int(ValueKind.DELETE)
PUT: Final = int(ValueKind.PUT)
MERGE: Final = int(ValueKind.MERGE)
PUT_EXPIRING: Final = int(ValueKind.PUT_EXPIRING)
_MERGE_BYTE: Final = bytes([MERGE])

_kind = itemgetter(0)
_value = itemgetter(1)


def operand_run(chain: Sequence[Entry]) -> int:
    """How many MERGE entries lead the chain: kinds as bytes, the leading run stripped in C."""
    kinds = bytes(map(_kind, chain))
    return len(kinds) - len(kinds.lstrip(_MERGE_BYTE))


def _existing(base: Entry, now_ms: int) -> bytes | None:
    """The value below the operands: None for a DELETE or an expired PUT_EXPIRING."""
    kind = base[0]
    if kind == PUT or (kind == PUT_EXPIRING and base[3] > now_ms):
        return base[1]
    if kind in (DELETE, PUT_EXPIRING):
        return None
    raise ValueError(f"a merge chain cannot hold an entry of kind {kind}")


def fold(
    op: MergeOperator, key: bytes, chain: Sequence[Entry], now_ms: int, complete: bool
) -> list[Entry]:
    """The entries that replace `chain` (newest first), its operands folded where possible.

    Args:
        op: the family's merge operator.
        key: the chain's key, passed to the operator.
        chain: versions of `key`, newest first, all in one snapshot stripe.
        now_ms: the clock, for PUT_EXPIRING bases.
        complete: nothing older than the chain exists anywhere (a missing base means none).

    Returns:
        [chain[0]] if it is not a MERGE; one entry (seq of chain[0]) when a base is in the
        chain or `complete`; else the operands with neighbours combined by partial_merge.

    Raises:
        Whatever the operator raises, unchanged.

    >>> from aiokv.merge import Int64Add
    >>> fold(Int64Add(), b"k", [(MERGE, b"2", 9, 0), (MERGE, b"1", 8, 0), (PUT, b"5", 3, 0)],
    ...      now_ms=0, complete=False)
    [(1, b'8', 9, 0)]
    """
    head = chain[0]
    if head[0] != MERGE:
        return [head]
    count = operand_run(chain)
    operands = list(map(_value, chain[count - 1 :: -1]))  # oldest first
    if count < len(chain):
        base = chain[count]
        if base[0] == PUT_EXPIRING and base[3] > now_ms:
            return [*_combine(op, key, chain[:count]), base]
        merged = op.full_merge(key, _existing(base, now_ms), operands)
        return [(PUT, merged, head[2], 0)]
    if complete:
        return [(PUT, op.full_merge(key, None, operands), head[2], 0)]
    return _combine(op, key, chain)


def _combine(op: MergeOperator, key: bytes, chain: Sequence[Entry]) -> list[Entry]:
    """`chain` (operands only, newest first) with neighbours combined by partial_merge."""
    count = len(chain)
    partial = getattr(op, "partial_merge", None)
    if partial is None or count == 1:
        return list(chain)
    # Per-operand loop: partial_merge is the operator's Python code, one call per neighbour pair.
    out: list[Entry] = []
    acc = chain[count - 1]
    for entry in chain[count - 2 :: -1]:
        combined = partial(key, acc[1], entry[1])
        if combined is None:
            out.append(acc)
            acc = entry
        else:
            acc = (MERGE, combined, entry[2], entry[3])
    out.append(acc)
    out.reverse()
    return out


def resolve(op: MergeOperator, key: bytes, chain: Sequence[Entry], now_ms: int) -> bytes | None:
    """The value a read sees: `chain` newest first, ending at the base or the oldest version.

    Returns:
        None when the key has no visible value; else the head's value, or the operands merged
        onto the base (onto None when the chain has no base).

    Raises:
        Whatever the operator raises, unchanged.

    >>> from aiokv.merge import StringAppend
    >>> resolve(StringAppend(), b"k", [(MERGE, b"b", 5, 0), (PUT_EXPIRING, b"a", 4, 10)], 20)
    b'b'
    """
    head = chain[0]
    if head[0] != MERGE:
        return _existing(head, now_ms)
    count = operand_run(chain)
    operands = list(map(_value, chain[count - 1 :: -1]))
    existing = _existing(chain[count], now_ms) if count < len(chain) else None
    return op.full_merge(key, existing, operands)
