"""Flush: an immutable memtable written out as one L0 table.

Merge operand chains are folded on the way (merge_fold.fold: with the base when the memtable
holds it, else by partial merges) unless a snapshot is live; a chain the operator fails on is
written as it is.

The table is built on the event loop in slices of FLUSH_SLICE keys (each a few C-level calls
over the memtable's dict) with a yield between slices; the bytes go to the file from the
thread pool.  The caller records the table in the manifest; until then the memtable stays in
the read path and its WAL segments stay on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from operator import itemgetter
from typing import Any

from aiokv.engine.lsm.jobs import JobContext, file_meta, new_writer
from aiokv.engine.lsm.table_file import TableFile
from aiokv.engine.lsm.version import FileMeta
from aiokv.engine.memtable import MERGE, Entry, Memtable
from aiokv.engine.merge_fold import fold
from aiokv.merge import MergeOperator

FLUSH_SLICE = 1024  # keys per slice: about a millisecond of work

_kind = itemgetter(0)
_value = itemgetter(1)
_seq = itemgetter(2)
_expiry = itemgetter(3)


def memtable_slice(
    mem: Memtable, keys: list[bytes], folded: dict[bytes, list[Entry]] | None = None
) -> tuple[list[bytes], list[int], list[int], list[int], list[bytes]]:
    """The internal entries of sorted `keys`, in table order (per key newest first);
    `folded` replaces the versions of the keys it holds."""
    table = mem.table
    history = mem.history
    if not history or history.keys().isdisjoint(keys):
        entries = list(map(table.__getitem__, keys))
    else:
        out_keys: list[bytes] = []
        entries = []
        folded = folded or {}
        for k in keys:
            older = history.get(k)
            if older is None:
                out_keys.append(k)
                entries.append(table[k])
            else:
                versions = folded.get(k) or [table[k], *reversed(older)]
                out_keys += [k] * len(versions)
                entries += versions
        keys = out_keys
    return (
        keys,
        list(map(_seq, entries)),
        list(map(_kind, entries)),
        list(map(_expiry, entries)),
        list(map(_value, entries)),
    )


async def drive(gen: Generator[None, None, Any]) -> Any:
    """Runs a pure generator to its end, yielding to the event loop between its steps."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
        await asyncio.sleep(0)


def fold_chains(
    ctx: JobContext, mem: Memtable, op: MergeOperator | None, keys: list[bytes]
) -> dict[bytes, list[Entry]] | None:
    """The folded versions of those `keys` whose newest entry is a merge operand."""
    history = mem.history
    if op is None or not history or history.keys().isdisjoint(keys):
        return None
    out: dict[bytes, list[Entry]] = {}
    table = mem.table
    now = ctx.now_ms()
    for k in keys:
        older = history.get(k)
        newest = table[k]
        if older is None or newest[0] != MERGE:
            continue
        try:
            out[k] = fold(op, k, [newest, *reversed(older)], now, False)
        except Exception:  # the operator's own error: keep the chain, reads report it
            ctx.stats.merge_failures += 1
    return out


async def flush_memtable(
    ctx: JobContext,
    mem: Memtable,
    number: int,
    op: MergeOperator | None = None,
    fold_merges: bool = False,
) -> FileMeta | None:
    """Writes `mem` to table `number` (synced); None when it holds nothing to write.

    `fold_merges`: fold operand chains with `op` (only while no snapshot is live)."""
    keys = mem.sorted_keys()
    if not keys and not mem.range_dels:
        return None
    writer = new_writer(ctx)
    tf = await TableFile.create(ctx.fs, ctx.path, number, ctx.in_pool)
    try:
        for i in range(0, len(keys), FLUSH_SLICE):
            part = keys[i : i + FLUSH_SLICE]
            folded = fold_chains(ctx, mem, op, part) if fold_merges else None
            writer.add_many(*memtable_slice(mem, part, folded))
            await tf.add(writer.take())
            await asyncio.sleep(0)
        for start, end, seq in sorted(mem.range_dels):
            writer.add_range_del(start, end, seq)
        await tf.add(await drive(writer.finish()))
        await tf.finish()
    except BaseException:
        tf.abandon()
        await ctx.remove_quietly(tf.path)
        raise
    ctx.stats.flush_bytes_written += tf.size
    ctx.stats.bytes_written += tf.size
    return file_meta(number, tf.size, writer.properties)
