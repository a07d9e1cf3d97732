"""What flush and compaction jobs share: their context, table writers and FileMeta building."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiokv.engine.fs import FileSystem
from aiokv.engine.lsm.filter import new_filter_builder
from aiokv.engine.lsm.sst_writer import SstWriter, TableProperties
from aiokv.engine.lsm.stats import Stats
from aiokv.engine.lsm.table_cache import TableCache
from aiokv.engine.lsm.version import FileMeta
from aiokv.options import Options


@dataclass
class JobContext:
    fs: FileSystem
    path: str
    in_pool: Callable[..., Awaitable[Any]]
    options: Options
    tables: TableCache
    stats: Stats
    clock: Callable[[], float]

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def remove_quietly(self, path: str) -> None:
        """Removes a half-written file; a failure leaves it for the next open to delete."""
        with contextlib.suppress(OSError):
            await self.in_pool(self.fs.remove, path)


def new_writer(ctx: JobContext) -> SstWriter:
    o = ctx.options
    return SstWriter(
        block_size=o.block_size,
        filter_builder=new_filter_builder(o.filter, o.bloom_bits_per_key),
        created_ms=ctx.now_ms(),  # FIFO compaction ages whole tables by it
    )


def file_meta(
    number: int,
    size: int,
    p: TableProperties,
    smallest: bytes | None = None,
    largest: bytes | None = None,
) -> FileMeta:
    """The FileMeta of a finished table; the range may be given (compaction clips it)."""
    return FileMeta(
        number=number,
        size=size,
        smallest=p.smallest if smallest is None else smallest,
        largest=p.largest if largest is None else largest,
        smallest_seq=p.smallest_seq,
        largest_seq=p.largest_seq,
        entries=p.entries,
        tombstones=p.tombstones,
        smallest_expiry=p.smallest_expiry,
        range_dels=p.range_dels,
        created_ms=p.created_ms,
    )
