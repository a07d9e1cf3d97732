"""The block cache (decoded blocks, bounded in bytes) and the table cache (open tables, bounded
in count).

Both are consulted inline by gets and scans on the event loop.  The block cache is a CLOCK
cache (an LRU approximation, as RocksDB's HyperClockCache): a hit is one dict lookup and one
attribute store (`block.ref = True`); the eviction hand gives every referenced block a second
chance.  An OrderedDict LRU measured slower on random gets over a large cache: `move_to_end`
touches the neighbouring links, cache misses that a get cannot afford.  Decoded blocks are
charged at `Block.nbytes`, an honest estimate of their memory, raw bytes plus per-key objects.

Concurrency contract: used from the event loop thread only; nothing here awaits.
Invariant 1: `BlockCache.used` is the sum of `nbytes` of the blocks it holds, and it is at most
`capacity` after every insertion (a block bigger than the whole cache is returned, not kept).
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import islice

from aiokv.engine.fs import FileSystem, MappedFile, join
from aiokv.engine.lsm.block import Block
from aiokv.engine.lsm.filter import FilterReader
from aiokv.engine.lsm.sst_reader import Table
from aiokv.engine.lsm.stats import Stats

BLOCK_KEY_SHIFT = 32  # cache key = table number << 32 | block index: one int, cheap to hash


def table_name(number: int) -> str:
    return f"{number:06d}.sst"


class BlockCache:
    """An LRU of decoded blocks bounded in bytes.  See the module docstring."""

    __slots__ = ("_map", "capacity", "used")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        # Insertion order is the clock: the hand is the front of the dict.
        self._map: dict[int, Block] = {}

    def __len__(self) -> int:
        return len(self._map)

    def insert(self, key: int, block: Block) -> None:
        charge = block.nbytes
        if charge > self.capacity:
            return
        m = self._map
        old = m.pop(key, None)
        if old is not None:
            self.used -= old.nbytes
        m[key] = block
        self.used += charge
        while self.used > self.capacity:
            self._evict_some()

    def _evict_some(self) -> None:
        """Sweeps the hand over a few entries: referenced ones go to the back with their bit
        cleared, the first unreferenced one is evicted."""
        m = self._map
        for k in list(islice(m, 64)):
            b = m[k]
            if b.ref:
                b.ref = False
                del m[k]
                m[k] = b
            else:
                del m[k]
                self.used -= b.nbytes
                return

    def clear(self) -> None:
        self._map.clear()
        self.used = 0


class TableHandle:
    """An open table with its block lookups routed through the block cache."""

    __slots__ = ("_base", "_file", "_map", "_stats", "cache", "ref", "table")

    def __init__(self, table: Table, file: MappedFile, cache: BlockCache, stats: Stats) -> None:
        self.table = table
        self._file = file
        self.cache = cache
        self._map = cache._map
        self._stats = stats
        self.ref = False  # the table cache's CLOCK bit
        self._base = table.number << BLOCK_KEY_SHIFT

    def block(self, i: int) -> Block:
        """Block i of the table, from the cache or decoded (and checked) from the file."""
        k = self._base | i
        b = self._map.get(k)
        if b is not None:
            b.ref = True
            self._stats.block_cache_hits += 1
            return b
        b = self.table.read_block(i)
        s = self._stats
        s.block_cache_misses += 1
        s.bytes_read += b.raw_size
        self.cache.insert(k, b)
        return b

    def peek(self, i: int) -> Block:
        """Block i from the cache, or decoded without caching it (compaction inputs: a
        table about to be replaced must not push hot blocks out)."""
        b = self._map.get(self._base | i)
        if b is not None:
            return b
        b = self.table.read_block(i)
        self._stats.bytes_read += b.raw_size
        return b

    def close(self) -> None:
        self._file.close()


class TableCache:
    """Open tables by number, at most `capacity` at once (least recently used closed first)."""

    __slots__ = ("_decode_filter", "_fs", "_open", "_path", "block_cache", "capacity", "stats")

    def __init__(
        self,
        fs: FileSystem,
        path: str,
        capacity: int,
        block_cache: BlockCache,
        decode_filter: Callable[[bytes], FilterReader | None],
        stats: Stats,
    ) -> None:
        self._fs = fs
        self._path = path
        self.capacity = capacity
        self.block_cache = block_cache
        self._decode_filter = decode_filter
        self.stats = stats
        self._open: dict[int, TableHandle] = {}  # a CLOCK, like the block cache

    def get(self, number: int) -> TableHandle:
        """The open handle of table `number`, opening it (and closing the coldest) if needed.

        Raises:
            CorruptionError: the table's footer, index, filter or properties fail their checks.
            OSError: the file cannot be mapped.
        """
        h = self._open.get(number)
        if h is not None:
            h.ref = True
            return h
        path = join(self._path, table_name(number))
        mapped = self._fs.map_file(path)
        try:
            table = Table.open(number, path, mapped.buf, self._decode_filter)
        except BaseException:
            mapped.close()
            raise
        h = TableHandle(table, mapped, self.block_cache, self.stats)
        self.stats.table_opens += 1
        self._open[number] = h
        h.ref = True  # so that the sweep below cannot close the handle it returns
        m = self._open
        while len(m) > self.capacity:
            k = next(iter(m))
            old = m.pop(k)
            if old.ref:
                old.ref = False
                m[k] = old  # a second chance: to the back
            else:
                self._retire(old)
                old.close()
        return h

    def evict(self, number: int) -> None:
        """Closes table `number` if open (its file is about to be deleted)."""
        h = self._open.pop(number, None)
        if h is not None:
            self._retire(h)
            h.close()

    def _retire(self, h: TableHandle) -> None:
        """Moves a closing table's filter counters into the database's statistics."""
        t = h.table
        s = self.stats
        s.filter_useful += t.filter_useful
        s.filter_useless += t.filter_useless
        s.filter_positive += t.filter_checked - t.filter_useful - t.filter_useless
        t.filter_checked = t.filter_useful = t.filter_useless = 0

    def filter_counters(self) -> tuple[int, int, int]:
        """(useful, useless, positive) of the open tables, not yet retired."""
        useful = useless = checked = 0
        for h in self._open.values():
            t = h.table
            useful += t.filter_useful
            useless += t.filter_useless
            checked += t.filter_checked
        return useful, useless, checked - useful - useless

    def close(self) -> None:
        for h in self._open.values():
            h.close()
        self._open.clear()
        self.block_cache.clear()
