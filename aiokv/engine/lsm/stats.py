"""Per-database statistics: plain int counters bumped inline (one attribute add each).

`DB.stats()` returns them as a dict.  Counters only grow; figures such as the cache hit ratio
are derived by the reader.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Stats:
    """Counters of one database.

    Attributes:
        block_cache_hits, block_cache_misses: data block lookups served from, or not from,
            the block cache.
        filter_useful: table lookups a filter answered "absent" (no block read).
        filter_useless: lookups a filter let through that found nothing (false positives).
        filter_positive: lookups a filter let through that found the key.
        bytes_read: table bytes read into decoded blocks (cache misses, flush and compaction
            inputs).
        bytes_written: table bytes written (flush and compaction outputs).
        flushes, compactions, trivial_moves: background jobs finished.
        compaction_bytes_read, compaction_bytes_written: the compaction share of bytes_*.
        stalls_slowdown: writes delayed because L0 or the memtables piled up.
        stalls_stop: writes that waited for a flush or compaction to make room.
        stall_micros: total time writers spent delayed or waiting.
        table_opens: tables opened (mapped and their index and filter decoded).
        merge_failures: merge operand chains a flush, compaction or write-time fold left
            unfolded because the merge operator raised (reads of the key surface the error).
        fifo_drops: tables FIFO compaction deleted whole (past the family's ttl or size).
        ttl_gc_tasks: tables the TTL GC task rewrote or dropped because entries expired.
    """

    block_cache_hits: int = 0
    block_cache_misses: int = 0
    filter_useful: int = 0
    filter_useless: int = 0
    filter_positive: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    flushes: int = 0
    flush_bytes_written: int = 0
    compactions: int = 0
    trivial_moves: int = 0
    compaction_bytes_read: int = 0
    compaction_bytes_written: int = 0
    stalls_slowdown: int = 0
    stalls_stop: int = 0
    stall_micros: int = 0
    table_opens: int = 0
    merge_failures: int = 0
    fifo_drops: int = 0
    ttl_gc_tasks: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
