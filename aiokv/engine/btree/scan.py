"""One chunk of a scan over the B+Tree engine: the tree at the scan's checkpoint, the
memtables a later checkpoint moved into the tree (for an older snapshot), then the frozen and
active memtables, merged as the LSM's scan merges its sources (lsm/scan.py)."""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING

from aiokv.engine.btree import tree, tree_read
from aiokv.engine.lsm.merge import NEEDS_MERGE, Piece
from aiokv.engine.lsm.scan import mem_piece, resolve_pieces
from aiokv.engine.memtable import MERGE, PUT, PUT_EXPIRING

if TYPE_CHECKING:
    from aiokv.engine.btree.engine import BTreeEngine

_key = itemgetter(0)
_cell = itemgetter(1)
_kind = itemgetter(0)
_ONLY_PUT = {PUT}


def scan_chunk(
    engine: BTreeEngine,
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
    mems: list[Piece] = []  # every memtable's piece, oldest first
    root, cp, view = engine._tree_at(cf, seq)
    if view is not None:
        for txn, rcf, mem in reversed(engine._retired):
            if txn > view and rcf == cf:
                mems.append(mem_piece(engine, mem, lo, lo_inclusive, hi, reverse, seq, limit, now))
    for imm, _, _ in reversed(engine.imms[cf]):
        mems.append(mem_piece(engine, imm, lo, lo_inclusive, hi, reverse, seq, limit, now))
    mems.append(mem_piece(engine, engine.mems[cf], lo, lo_inclusive, hi, reverse, seq, limit, now))
    if root and not engine._rdels[cf] and not any(p.keys for p in mems):
        # The tree alone, as a scan over checkpointed data mostly is: pairs straight from the
        # leaves when every value is a plain one.
        plain = tree_read.scan_plain(engine.reader, root, lo, lo_inclusive, hi, reverse, limit)
        if plain is not None:
            return plain, plain[-1][0] if plain else None
    items = tree.scan(engine.reader, root, lo, lo_inclusive, hi, reverse, limit) if root else []
    if not items:
        return resolve_pieces(engine, cf, mems, reverse, seq, limit)
    cells = list(map(_cell, items))
    values: list[bytes | None] = [
        c[1] if c[0] == PUT or (c[0] == PUT_EXPIRING and c[2] > now)
        else NEEDS_MERGE if c[0] == MERGE else None
        for c in cells
    ]  # fmt: skip
    keys = list(map(_key, items))
    tree_piece = Piece(keys, values, [cp] * len(keys), len(items) >= limit)
    return resolve_pieces(engine, cf, [tree_piece, *mems], reverse, seq, limit)
