"""Size-tiered compaction picker (RocksDB's "universal" style).  Pure, no I/O.

Tiered trades space and read cost for write cost: data is rewritten only when runs of similar
size meet, about log(n) times instead of leveled's ~10 per level.  The tree is a list of
sorted runs, newest first:

    runs := each L0 table (newest first, as the Version lists L0), then L6 as a whole
    L1..L5 stay empty under tiered (see "drain" below)

`pick_tiered` does nothing while runs < run_trigger; otherwise the first rule that fires:

1. "tiered-space": size(every run but the oldest) * 100 / size(oldest run) >
   max_size_amplification_percent: merge every run into L6.  This bounds space
   amplification: the newer runs may hold overwritten versions of every key of the oldest.
2. "tiered-ratio": for each start run, newest first, extend a window while the next run's size
   <= window size * (100 + size_ratio) / 100 and width < max_merge_width; the first window of
   width >= min_merge_width wins.  Runs of like size merge, as in a binary counter.
3. "tiered-count", only while runs > run_trigger (RocksDB's rule): merge the newest
   max(runs - run_trigger + 1, min_merge_width) runs (at most max_merge_width), which brings
   the count back to the trigger.  Firing at the trigger itself rewrote the second-newest
   run at every flush: write amplification 7.15 against 4.42 in compaction_sim (1M random
   writes, trigger 4; bench/results/compaction_sim_issue4.txt).

Where a window's output goes: a window that holds the L6 run, or the oldest L0 table while L6
is empty, reaches the oldest data, so it is written to L6 (lower = every L6 table, bottommost,
cut at target_file_size).  Any other window becomes ONE new L0 table (output_level 0, no lower,
not bottommost, target_file_size 1 << 62 so that the runner never cuts it).

"tiered-drain": tables on L1..L5 (a family that was leveled before) come before everything:
the deepest such level goes whole into L6 (lower: the L6 tables in its key span; a move when
there are none), bottommost, until L1..L5 are empty.  Nothing else is picked meanwhile: the
middle levels are older than L0 and newer than L6, so no window could go to L6 yet.

Invariant 1: a window is contiguous in run order, so an L0 output's sequence range lies inside
its window's, strictly between its neighbours' ranges (L0 tables hold disjoint sequence ranges):
L0 stays ordered newest first, and newer data never lands below older data.
Invariant 2: a task never includes a table in `busy`, and concurrent windows are disjoint.
The space rule (every run) is skipped while any run is busy.
Invariant 3: every task merges at least two runs into one, or empties a middle level, so
calling pick + apply until None ends within runs + 5 steps (with no new flushes and nothing
busy) and leaves at most max(run_trigger, min_merge_width - 1) runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Final, NamedTuple

from aiokv.engine.lsm.picker import LAST_LEVEL, CompactionTask, MiB, RangeBusyError
from aiokv.engine.lsm.version import FileMeta, Version
from aiokv.errors import InvalidArgumentError

L0_UNCUT: Final = 1 << 62  # an L0 output must be one table (L0 orders tables by sequence)
_NO_BUSY: Final[frozenset[int]] = frozenset()


@dataclass(frozen=True)
class TieredOptions:
    """Tiered compaction settings of one column family (sizes in bytes, ratios in percent)."""

    size_ratio: int = 1  # a run joins a window up to (100 + size_ratio)% of the window's size
    min_merge_width: int = 2  # runs a ratio window needs
    max_merge_width: int = 1 << 30  # runs one task merges at most (no bound by default)
    max_size_amplification_percent: int = 200  # newer runs vs the oldest before a full merge
    run_trigger: int = 4  # runs at which merging starts (the engine passes l0_compaction_trigger)
    target_file_size: int = 64 * MiB  # the runner cuts L6 outputs near this size

    def __post_init__(self) -> None:
        if not 2 <= self.min_merge_width <= self.max_merge_width:
            raise InvalidArgumentError("2 <= min_merge_width <= max_merge_width")
        if min(self.size_ratio, self.max_size_amplification_percent) < 0:
            raise InvalidArgumentError("size_ratio and max_size_amplification_percent >= 0")
        if self.run_trigger < 1 or self.target_file_size < 1:
            raise InvalidArgumentError("run_trigger and target_file_size must be positive")


class _Run(NamedTuple):
    files: tuple[FileMeta, ...]
    size: int
    level: int  # 0 or LAST_LEVEL


def sorted_runs(version: Version) -> list[tuple[FileMeta, ...]]:
    """The tiered runs of `version`, newest first: each L0 table, then L6 (when it has tables).

    L1..L5 are not runs (see the module docstring).
    """
    return [r.files for r in _runs(version)]


def _runs(version: Version) -> list[_Run]:
    runs = [_Run((f,), f.size, 0) for f in version.levels[0]]
    last = version.levels[LAST_LEVEL]
    if last:
        runs.append(_Run(last, sum(f.size for f in last), LAST_LEVEL))
    return runs


def _busy(files: Sequence[FileMeta], busy: AbstractSet[int]) -> bool:
    return bool(busy) and any(f.number in busy for f in files)


def _into_last(
    version: Version, opts: TieredOptions, cf: int, l0: Sequence[FileMeta], reason: str,
    score: float,
) -> CompactionTask:  # fmt: skip
    return CompactionTask(
        cf, 0, LAST_LEVEL, tuple(l0), version.levels[LAST_LEVEL], True, reason, score,
        opts.target_file_size,
    )  # fmt: skip


def _window(
    version: Version, opts: TieredOptions, cf: int, runs: list[_Run], i: int, j: int,
    reason: str, score: float,
) -> CompactionTask:  # fmt: skip
    """The task merging runs[i:j] (see "Where a window's output goes")."""
    l0 = [f for r in runs[i:j] if r.level == 0 for f in r.files]
    n_l0 = len(version.levels[0])
    if runs[j - 1].level == LAST_LEVEL or (j == n_l0 and not version.levels[LAST_LEVEL]):
        return _into_last(version, opts, cf, l0, reason, score)
    return CompactionTask(cf, 0, 0, tuple(l0), (), False, reason, score, L0_UNCUT)


def _drain(
    version: Version, opts: TieredOptions, cf: int, busy: AbstractSet[int], reason: str
) -> CompactionTask | None:
    """The deepest non-empty level of L1..L5 whole into L6, or None if a table is busy."""
    level = max(lv for lv in range(1, LAST_LEVEL) if version.levels[lv])
    inputs = version.levels[level]
    lower = version.overlapping(LAST_LEVEL, inputs[0].smallest, inputs[-1].largest)
    if _busy(inputs, busy) or _busy(lower, busy):
        return None
    return CompactionTask(
        cf, level, LAST_LEVEL, inputs, tuple(lower), True, reason, 0.0, opts.target_file_size,
        is_move=not lower,
    )  # fmt: skip


def _has_middle(version: Version) -> bool:
    return any(version.levels[lv] for lv in range(1, LAST_LEVEL))


def _ratio_window(opts: TieredOptions, runs: list[_Run], busy: list[bool]) -> tuple[int, int]:
    """The first size-ratio window [i, j) of width >= min_merge_width, or (0, 0)."""
    grow = 100 + opts.size_ratio
    for i, first in enumerate(runs):
        if busy[i]:
            continue
        size, j = first.size, i + 1
        while (
            j < len(runs)
            and j - i < opts.max_merge_width
            and not busy[j]
            and runs[j].size * 100 <= size * grow
        ):
            size += runs[j].size
            j += 1
        if j - i >= opts.min_merge_width:
            return i, j
    return 0, 0


def pick_tiered(
    version: Version,
    opts: TieredOptions,
    *,
    cf: int = 0,
    busy: AbstractSet[int] = _NO_BUSY,
) -> CompactionTask | None:
    """The next tiered compaction of `version` (see the module docstring), or None.

    Args:
        busy: numbers of tables in running compactions; windows touching one are skipped.

    >>> def t(n, kib): return FileMeta(n, kib << 10, b"a", b"z", n, n, 1, 0)
    >>> task = pick_tiered(Version([[t(4, 1), t(3, 1), t(2, 1), t(1, 100)]]), TieredOptions())
    >>> task.reason, [f.number for f in task.inputs], task.output_level
    ('tiered-ratio', [4, 3, 2], 0)
    """
    if _has_middle(version):
        return _drain(version, opts, cf, busy, "tiered-drain")
    runs = _runs(version)
    n = len(runs)
    if n < opts.run_trigger or n < 2:
        return None
    score = n / opts.run_trigger
    flags = [_busy(r.files, busy) for r in runs]
    if not any(flags):
        newer = sum(r.size for r in runs[:-1])
        if newer * 100 > opts.max_size_amplification_percent * runs[-1].size:
            return _into_last(version, opts, cf, version.levels[0], "tiered-space", score)
    i, j = _ratio_window(opts, runs, flags)
    if j:
        return _window(version, opts, cf, runs, i, j, "tiered-ratio", score)
    if n <= opts.run_trigger:
        return None  # as RocksDB: at the trigger itself only the two rules above merge
    width = min(max(n - opts.run_trigger + 1, opts.min_merge_width), opts.max_merge_width)
    for i in range(n - width + 1):
        if not any(flags[i : i + width]):
            return _window(version, opts, cf, runs, i, i + width, "tiered-count", score)
    return None


def pick_tiered_full(
    version: Version,
    opts: TieredOptions,
    *,
    cf: int = 0,
    busy: AbstractSet[int] = _NO_BUSY,
) -> CompactionTask | None:
    """The next task of a full manual compaction (`compact_range` of a tiered family).

    Everything goes into L6, bottommost (tombstones and shadowed versions are dropped): first
    each non-empty level of L1..L5, deepest first, then every L0 table with every L6 table.
    The engine calls it until it returns None: when L0..L5 are empty (L6 is then one run;
    it is not rewritten again).  New flushes during the run can keep it going; the engine may
    stop after the task that took L0.

    Raises:
        RangeBusyError: the next step needs a busy table; call again when a compaction ends.
    """
    if _has_middle(version):
        task = _drain(version, opts, cf, busy, "manual")
        if task is None:
            raise RangeBusyError("a full compaction waits for a running compaction")
        return task
    l0 = version.levels[0]
    if not l0:
        return None
    if _busy(l0, busy) or _busy(version.levels[LAST_LEVEL], busy):
        raise RangeBusyError("a full compaction waits for a running compaction")
    return _into_last(version, opts, cf, l0, "manual", 0.0)
