"""FIFO compaction picker: which whole tables to delete, oldest first.  Pure, no I/O.

A FIFO column family never rewrites data: every table is a flush output and stays on L0
until it is dropped whole.  It suits logs, metrics and sessions, whose value fades with age
and whose store must stay within a size or an age.  Two rules, in this order:

1. TTL (`ttl_ms` > 0): drop every table with `created_ms` != 0 and
   `now_ms - created_ms >= ttl_ms`.  A table's writer starts after each of its entries was
   written, so every entry of such a table is at least `ttl_ms` old.  A table with
   `created_ms` == 0 (age unknown) is never dropped by age, only by size.
2. Size: drop the oldest tables (smallest largest_seq: the end of L0's list) while the
   bytes that remain exceed `max_table_files_size`.

The newest table is never dropped by size, even when it alone exceeds the bound, so the bound
is soft by at most one table.  RocksDB drops oldest tables until it is under the bound, which
can delete the table that was just flushed: writes acknowledged a moment ago would vanish
before anyone could read them.  A size bound caps history; it should not erase the present.
(TTL still drops the newest table once it is old enough: that is what a TTL asks for.)

Invariant 1: a task is a drop (`is_drop`, level 0 -> 0, no lower, no outputs); its inputs are
L0 tables, newest first as L0 lists them, and they are the oldest tables of L0 for a size drop.
Invariant 2: tables on L1..L6 (a family that was leveled before) are neither counted nor
dropped: FIFO families are created FIFO, and the engine does not switch an existing family's
compaction style.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokv.engine.lsm.picker import CompactionTask
from aiokv.engine.lsm.version import FileMeta, Version
from aiokv.errors import InvalidArgumentError

_NO_LIMIT = 1 << 62  # a drop writes nothing, so the runner's output size never matters


@dataclass(frozen=True)
class FifoOptions:
    """FIFO settings of one column family.

    Attributes:
        max_table_files_size: bytes of tables to keep (> 0); the oldest go beyond it.
        ttl_ms: tables older than this are dropped whole (0: no TTL).
    """

    max_table_files_size: int
    ttl_ms: int = 0

    def __post_init__(self) -> None:
        if self.max_table_files_size < 1:
            raise InvalidArgumentError("max_table_files_size must be > 0")
        if self.ttl_ms < 0:
            raise InvalidArgumentError("ttl_ms must be >= 0 (0: no TTL)")


def _drop(cf: int, files: list[FileMeta], reason: str) -> CompactionTask:
    return CompactionTask(
        cf, 0, 0, tuple(files), (), False, reason, 0.0, _NO_LIMIT, is_drop=True
    )  # fmt: skip


def pick_fifo(
    version: Version, opts: FifoOptions, now_ms: int, *, cf: int = 0
) -> CompactionTask | None:
    """The next drop of a FIFO family (see the module docstring), or None.

    Args:
        now_ms: the clock, in the unit of `FileMeta.created_ms` (the engine's wall clock).

    Returns:
        A drop task with reason "fifo-ttl" (tried first) or "fifo-size"; the engine logs
        `apply(version, task, [])` and deletes the files once no Version lists them.

    >>> def t(n, kib, ms=0): return FileMeta(n, kib << 10, b"a", b"z", n, n, 1, 0, created_ms=ms)
    >>> v = Version([[t(1, 40, 1000), t(2, 40, 2000), t(3, 40, 3000)]])
    >>> [f.number for f in pick_fifo(v, FifoOptions(100 << 10), 0).inputs]
    [1]
    >>> task = pick_fifo(v, FifoOptions(1 << 30, ttl_ms=1500), 3600)
    >>> task.reason, [f.number for f in task.inputs]
    ('fifo-ttl', [2, 1])
    """
    l0 = version.levels[0]
    if opts.ttl_ms:
        old = [f for f in l0 if f.created_ms and now_ms - f.created_ms >= opts.ttl_ms]
        if old:
            return _drop(cf, old, "fifo-ttl")
    total = sum(f.size for f in l0)
    keep = len(l0)
    while keep > 1 and total > opts.max_table_files_size:
        keep -= 1
        total -= l0[keep].size
    if keep == len(l0):
        return None
    return _drop(cf, list(l0[keep:]), "fifo-size")
