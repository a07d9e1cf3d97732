"""One chunk of a scan: every source re-seeked at the scan's position, merged in bulk.

A scan holds nothing across an await: each chunk walks the current memtables and the current
Version from the last key the previous chunk looked at, at the scan's sequence number.  So a
table may leave the disk as soon as no current Version lists it, and a compaction may run
between two chunks; what the scan sees is fixed by its sequence number (compaction keeps
every version a live snapshot, a scan's included, can read).

Sources are read oldest first (deepest level, then L0 oldest to newest, frozen memtables,
the active one), each resolved to its newest version per key at the sequence number, and
merged by merge.merge_pieces.
"""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Final

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.lsm.merge import NEEDS_MERGE, Piece, merge_pieces, resolve_run, reversed_piece
from aiokv.engine.lsm.runs import gather
from aiokv.engine.lsm.version import NUM_LEVELS
from aiokv.engine.memtable import Memtable

if TYPE_CHECKING:
    from aiokv.engine.front import MemtableEngine
    from aiokv.engine.lsm.engine import LsmEngine

PUT: Final = int(ValueKind.PUT)
_ONLY_PUT = {PUT}
_kind_of = itemgetter(0)  # memtable Entry fields
_value_of = itemgetter(1)
_seq_of = itemgetter(2)


def scan_chunk(
    engine: LsmEngine,
    cf: int,
    lo: bytes | None,
    lo_inclusive: bool,
    hi: bytes | None,
    reverse: bool,
    seq: int,
    limit: int,
) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
    """Up to `limit` keys of the walk; returns (items, last key looked at or None at end)."""
    now = engine._now_ms()
    pieces: list[Piece] = []  # oldest source first
    v = engine.versions.current[cf]
    tables = engine.tables
    for level in range(NUM_LEVELS - 1, 0, -1):
        files = v.levels[level]
        if files:
            run = gather(tables, files, v.largests[level], lo, lo_inclusive, hi, reverse, limit)
            if run.keys:
                p = resolve_run(run, seq, now)
                pieces.append(reversed_piece(p) if reverse else p)
    for f in reversed(v.levels[0]):
        if f.overlaps(lo, hi):
            run = gather(tables, [f], [f.largest], lo, lo_inclusive, hi, reverse, limit)
            if run.keys:
                p = resolve_run(run, seq, now)
                pieces.append(reversed_piece(p) if reverse else p)
    for imm, _, _ in reversed(engine.imms[cf]):
        pieces.append(mem_piece(engine, imm, lo, lo_inclusive, hi, reverse, seq, limit, now))
    pieces.append(
        mem_piece(engine, engine.mems[cf], lo, lo_inclusive, hi, reverse, seq, limit, now)
    )
    return resolve_pieces(engine, cf, pieces, reverse, seq, limit)


def resolve_pieces(
    engine: MemtableEngine, cf: int, pieces: list[Piece], reverse: bool, seq: int, limit: int
) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
    """Merges the sources' pieces (oldest first) and settles range tombstones and merge
    operands: the chunk's items, and the last key looked at (None at the end)."""
    keys, values, seqs, last = merge_pieces(pieces, reverse, limit)
    if last is None:
        return [], None
    if engine._rdels[cf]:
        rd = engine._range_deleted
        out = [
            (k, val)
            for k, val, s in zip(keys, values, seqs, strict=True)
            if val is not None and not rd(cf, k, s, seq)
        ]
    else:
        out = [(k, val) for k, val in zip(keys, values, strict=True) if val is not None]
    if NEEDS_MERGE in values:  # == finds it cheaply; `is` below tells it from equal values
        merged = engine._merged
        folded = [(k, merged(cf, k, seq) if v is NEEDS_MERGE else v) for k, v in out]
        out = [(k, v) for k, v in folded if v is not None]
    return out, last


def mem_piece(
    engine: MemtableEngine,
    mem: Memtable,
    lo: bytes | None,
    lo_inclusive: bool,
    hi: bytes | None,
    reverse: bool,
    seq: int,
    limit: int,
    now: int,
) -> Piece:
    """A memtable's keys of the walk, resolved at `seq` (value None: deleted or expired)."""
    keys = mem.keys_between(lo, lo_inclusive, hi, limit, reverse)
    if not keys:
        return Piece([], [], [], False)
    truncated = len(keys) >= limit
    entries = list(map(mem.table.__getitem__, keys))
    seqs = list(map(_seq_of, entries))
    if max(seqs) <= seq and set(map(_kind_of, entries)) == _ONLY_PUT:
        return Piece(keys, list(map(_value_of, entries)), seqs, truncated)
    entry_at = mem.entry_at
    visible = engine._visible
    out_k: list[bytes] = []
    out_v: list[bytes | None] = []
    out_s: list[int] = []
    for k in keys:
        e = entry_at(k, seq)
        if e is not None:
            out_k.append(k)
            out_v.append(visible(e, now))
            out_s.append(e[2])
    return Piece(out_k, out_v, out_s, truncated)
