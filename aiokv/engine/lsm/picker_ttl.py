"""TTL garbage collection picker: which table to rewrite so that expired entries leave the disk.

Reads hide an expired entry at once; compaction drops it when it meets it.  A table nothing
compacts (no writes, or a quiet key range) would keep expired bytes forever, so the TTL GC
task rewrites, one at a time, tables whose smallest expiry has passed, at their own level:

- Bottommost (nothing older overlaps the table's range anywhere below it), the expired
  entries vanish, with the tombstones nothing needs any more.
- Otherwise each becomes a DELETE with an empty value: the value bytes go, and the tombstone
  still hides older versions below (an expired key never comes back with an older value).

An L0 table is rewritten as one table (never cut): its output keeps its sequence range, so
L0 stays ordered newest first.  Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from aiokv.engine.lsm.picker import CompactionTask
from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta, Version

_NONE: AbstractSet[int] = frozenset()
UNCUT = 1 << 62  # target size of an L0 rewrite: one output table


def expired_tables(version: Version, now_ms: int) -> list[tuple[int, FileMeta]]:
    """(level, table) of every table holding an entry expired at `now_ms`, soonest first."""
    out = [
        (lv, f) for lv, f in version.files() if f.smallest_expiry and f.smallest_expiry <= now_ms
    ]
    out.sort(key=lambda x: x[1].smallest_expiry)
    return out


def pick_expired(
    version: Version,
    now_ms: int,
    *,
    cf: int,
    target_file_size: int,
    skip: AbstractSet[int] = _NONE,
) -> CompactionTask | None:
    """A rewrite-in-place task for the table whose expiry passed first, or None.

    `skip`: table numbers not to pick (those written by this GC pass, or busy).

    >>> f = FileMeta(7, 100, b"a", b"z", 1, 5, 5, 0, smallest_expiry=1000)
    >>> t = pick_expired(Version([[], [f]]), 2000, cf=0, target_file_size=1 << 20)
    >>> (t.level, t.output_level, t.bottommost, t.reason)
    (1, 1, True, 'ttl')
    >>> pick_expired(Version([[], [f]]), 999, cf=0, target_file_size=1 << 20) is None
    True
    """
    for level, f in expired_tables(version, now_ms):
        if f.number in skip:
            continue
        return CompactionTask(
            cf,
            level,
            level,
            (f,),
            (),
            not _older_overlaps(version, level, f),
            "ttl",
            0.0,
            target_file_size if level else UNCUT,
        )
    return None


def _older_overlaps(version: Version, level: int, f: FileMeta) -> bool:
    """True if a table older than `f` (below it) holds keys in f's range."""
    lo, hi = f.smallest, f.largest
    if level == 0:
        for g in version.levels[0]:
            if g.largest_seq < f.smallest_seq and g.overlaps(lo, hi):
                return True
        level_from = 1
    else:
        level_from = level + 1
    return any(version.overlapping(lv, lo, hi) for lv in range(level_from, NUM_LEVELS))
