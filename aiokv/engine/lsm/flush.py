"""Flush: an immutable memtable written out as one L0 table.

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
from aiokv.engine.memtable import Memtable

FLUSH_SLICE = 1024  # keys per slice: about a millisecond of work

_kind = itemgetter(0)
_value = itemgetter(1)
_seq = itemgetter(2)
_expiry = itemgetter(3)


def memtable_slice(
    mem: Memtable, keys: list[bytes]
) -> tuple[list[bytes], list[int], list[int], list[int], list[bytes]]:
    """The internal entries of sorted `keys`, in table order (per key newest first)."""
    table = mem.table
    history = mem.history
    if not history or history.keys().isdisjoint(keys):
        entries = list(map(table.__getitem__, keys))
    else:
        out_keys: list[bytes] = []
        entries = []
        for k in keys:
            older = history.get(k)
            if older is None:
                out_keys.append(k)
                entries.append(table[k])
            else:
                versions = [table[k], *reversed(older)]
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


async def flush_memtable(ctx: JobContext, mem: Memtable, number: int) -> FileMeta | None:
    """Writes `mem` to table `number` (synced); None when it holds nothing to write."""
    keys = mem.sorted_keys()
    if not keys and not mem.range_dels:
        return None
    writer = new_writer(ctx)
    tf = await TableFile.create(ctx.fs, ctx.path, number, ctx.in_pool)
    try:
        for i in range(0, len(keys), FLUSH_SLICE):
            writer.add_many(*memtable_slice(mem, keys[i : i + FLUSH_SLICE]))
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
