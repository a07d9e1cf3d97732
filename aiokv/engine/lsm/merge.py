"""Merging sorted sources in bulk: newest-wins dicts over runs concatenated oldest first.

Used by scans (resolved values at a sequence number) and compaction (whole entries).  The
merge is done with dict updates, `sorted` and slicing (C level), not with a heap step per
entry (DESIGN.md, "Performance doctrine").

A source's piece is cut off where its walk stopped (it is `truncated`); keys beyond the
smallest such cut (the largest, walking in reverse) may still be missing newer or older
versions from that source, so a merge only emits keys up to that bound.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import Final, NamedTuple

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.lsm.runs import Run

PUT: Final = int(ValueKind.PUT)
PUT_EXPIRING: Final = int(ValueKind.PUT_EXPIRING)
MERGE: Final = int(ValueKind.MERGE)
# The value of a key whose newest version is a merge operand: the scan folds it by a point
# read once the merge decided the key wins.  Compared by identity; no stored value is it.
NEEDS_MERGE: Final = bytes(bytearray(b"<merge>"))


class Piece(NamedTuple):
    """One source's resolved keys in walk order: value None hides older sources' values."""

    keys: list[bytes]
    values: list[bytes | None]
    seqs: list[int]
    truncated: bool


def resolve_run(run: Run, seq: int, now_ms: int) -> Piece:
    """The newest version of each key with sequence number <= seq, as a forward Piece."""
    if run.plain and max(run.seqs, default=0) <= seq:
        return Piece(run.keys, run.values, run.seqs, run.truncated)  # type: ignore[arg-type]
    keys: list[bytes] = []
    values: list[bytes | None] = []
    seqs: list[int] = []
    prev = None
    for k, s, kind, exp, v in zip(
        run.keys, run.seqs, run.kinds, run.expiries, run.values, strict=True
    ):
        if k == prev or s > seq:
            continue
        prev = k
        keys.append(k)
        seqs.append(s)
        if kind == PUT or (kind == PUT_EXPIRING and exp > now_ms):
            values.append(v)
        else:
            values.append(NEEDS_MERGE if kind == MERGE else None)
    return Piece(keys, values, seqs, run.truncated)


def reversed_piece(p: Piece) -> Piece:
    return Piece(p.keys[::-1], p.values[::-1], p.seqs[::-1], p.truncated)


def merge_pieces(
    pieces: list[Piece], reverse: bool, limit: int
) -> tuple[list[bytes], list[bytes | None], list[int], bytes | None]:
    """Merges pieces (oldest source first, each in walk order) into one walk-order run.

    Returns keys, values (None: hidden), seqs, and the last key the merge looked at (None
    when every source is exhausted and nothing was found).
    """
    live = [p for p in pieces if p.keys]
    if not live:
        return [], [], [], None
    bound: bytes | None = None
    for p in live:
        if p.truncated:
            edge = p.keys[-1]
            if bound is None or (edge > bound if reverse else edge < bound):
                bound = edge
    if len(live) == 1:
        p = live[0]
        keys, values, seqs = p.keys, p.values, p.seqs
    else:
        merged: dict[bytes, tuple[bytes | None, int]] = {}
        for p in live:
            merged.update(zip(p.keys, zip(p.values, p.seqs, strict=True), strict=True))
        keys = sorted(merged)
        if bound is not None:
            keys = (
                keys[bisect_left(keys, bound) :] if reverse else keys[: bisect_right(keys, bound)]
            )
        if reverse:
            keys.reverse()
        pairs = list(map(merged.__getitem__, keys))
        values = [v for v, _ in pairs]
        seqs = [s for _, s in pairs]
    if len(keys) > limit:
        keys, values, seqs = keys[:limit], values[:limit], seqs[:limit]
    return keys, values, seqs, (keys[-1] if keys else bound)
