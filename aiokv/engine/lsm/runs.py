"""Sorted runs: slices of internal entries gathered from tables, for scans and compaction.

A walk over one level (or one L0 table) gathers whole decoded blocks' slices into parallel
lists with `list.extend` (C level), never one Python frame per entry.  A run is always in
forward order, key ascending and, for one key, sequence number descending (the table order).

Invariant 1: a truncated run holds every version of each of its keys: a walk that stops
inside a key's versions (they may span two blocks) drops that key, and the next walk starts
at it.  So the caller may resolve each key from the run alone.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple

from aiokv.engine.lsm.block import Block
from aiokv.engine.lsm.table_cache import TableCache
from aiokv.engine.lsm.version import FileMeta


class Run(NamedTuple):
    """Parallel lists of entries in table order, and how the walk ended."""

    keys: list[bytes]
    seqs: list[int]
    kinds: list[int]
    expiries: list[int]
    values: list[bytes]
    truncated: bool  # entries remain beyond the run in the walk's direction
    plain: bool  # every entry is a PUT without expiry and no key repeats


EMPTY_RUN = Run([], [], [], [], [], False, True)


def gather(
    tables: TableCache,
    files: Sequence[FileMeta],
    largests: Sequence[bytes],
    lo: bytes | None,
    lo_inclusive: bool,
    hi: bytes | None,
    reverse: bool,
    limit: int,
    *,
    fill_cache: bool = True,
) -> Run:
    """About `limit` entries of non-overlapping `files` (sorted; `largests` their largest keys)
    in walk order: forward walks up from lo (inclusive if lo_inclusive) to hi (exclusive);
    reverse walks down from below hi to lo (inclusive).  The run is in forward order.
    """
    while True:
        run = _walk(tables, files, largests, lo, lo_inclusive, hi, reverse, limit, fill_cache)
        if run is not None:
            return run
        limit *= 2  # one key has more versions than the walk took: take more


def _walk(
    tables: TableCache,
    files: Sequence[FileMeta],
    largests: Sequence[bytes],
    lo: bytes | None,
    lo_inclusive: bool,
    hi: bytes | None,
    reverse: bool,
    limit: int,
    fill_cache: bool,
) -> Run | None:
    parts: list[tuple[Block, int, int]] = []
    n = 0
    truncated = False
    done = False
    if not reverse:
        fi = 0 if lo is None else bisect_left(largests, lo)
        while fi < len(files) and not done:
            f = files[fi]
            if hi is not None and f.smallest >= hi:
                break
            h = tables.get(f.number)
            t = h.table
            bi = 0 if lo is None else t.block_index_for(lo)
            while bi < t.block_count:
                if n >= limit:
                    truncated = done = True
                    break
                b = h.block(bi) if fill_cache else h.peek(bi)
                keys = b.keys
                s = 0 if lo is None else (bisect_left if lo_inclusive else bisect_right)(keys, lo)
                e = len(keys) if hi is None or keys[-1] < hi else bisect_left(keys, hi)
                if s < e:
                    parts.append((b, s, e))
                    n += e - s
                if e < len(keys):
                    done = True  # reached hi
                    break
                bi += 1
            fi += 1
    else:
        fi = len(files) - 1 if hi is None else min(bisect_left(largests, hi), len(files) - 1)
        while fi >= 0 and not done:
            f = files[fi]
            if lo is not None and f.largest < lo:
                break
            h = tables.get(f.number)
            t = h.table
            bi = t.block_count - 1
            if hi is not None:
                bi = min(t.block_index_for(hi), bi)
            while bi >= 0:
                if n >= limit:
                    truncated = done = True
                    break
                b = h.block(bi) if fill_cache else h.peek(bi)
                keys = b.keys
                s = 0 if lo is None or keys[0] >= lo else bisect_left(keys, lo)
                e = len(keys) if hi is None or keys[-1] < hi else bisect_left(keys, hi)
                if s < e:
                    parts.append((b, s, e))
                    n += e - s
                if s > 0:
                    done = True  # reached lo
                    break
                bi -= 1
            fi -= 1
        parts.reverse()
    if not parts:
        return EMPTY_RUN
    return _assemble(parts, truncated, reverse)


def _assemble(parts: list[tuple[Block, int, int]], truncated: bool, reverse: bool) -> Run | None:
    keys: list[bytes] = []
    seqs: list[int] = []
    kinds: list[int] = []
    expiries: list[int] = []
    values: list[bytes] = []
    plain = True
    for b, s, e in parts:
        if plain and keys and b.keys[s] == keys[-1]:
            plain = False  # a key's versions continue across a block boundary
        keys += b.keys[s:e]
        seqs += b.seqs[s:e]
        kinds += b.kinds[s:e]
        exp = b.expiries
        expiries += repeat(0, e - s) if exp is None else exp[s:e]
        values += b.values(s, e)
        plain = plain and b.plain
    if truncated:
        # Invariant 1: the boundary key may have more versions beyond the run.
        if reverse:
            cut = bisect_right(keys, keys[0])
            if cut == len(keys):
                return None
            del keys[:cut], seqs[:cut], kinds[:cut], expiries[:cut], values[:cut]
        else:
            cut = bisect_left(keys, keys[-1])
            if cut == 0:
                return None
            del keys[cut:], seqs[cut:], kinds[cut:], expiries[cut:], values[cut:]
    return Run(keys, seqs, kinds, expiries, values, truncated, plain)
