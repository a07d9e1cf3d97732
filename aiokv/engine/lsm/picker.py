"""Leveled compaction picker: which tables to merge next, and the edit that records it.

Pure planning, no I/O (the runner, compaction.py, executes a task and cuts its outputs near
`target_file_size`).  `pick` chooses from a Version, `pick_range` serves `compact_range`, and
`apply` turns a task and its outputs into the VersionEdit the engine logs to the manifest.

Level sizing, bottom-up (RocksDB's "dynamic level bytes"; `level_targets`):

    bottom   = the deepest level >= 1 that holds a table (none: the tree is only L0)
    raw[bottom] = its bytes;  raw[L] = raw[L + 1] // level_multiplier  for L < bottom
    L is used  iff  L == bottom, or raw[L + 1] > max_bytes_for_level_base
               (so raw[L] > max_bytes_for_level_base / level_multiplier)
    base     = the highest used level; L0 compacts straight into it (L6 when there is no bottom),
               or the highest level >= 1 holding a table if that one is higher (see "unused")
    target[L] = max(raw[L], max_bytes_for_level_base)  for used L above bottom
    target[bottom] = raw[bottom];  target[L] = 0 for unused L;  target[0] = max_bytes_for_level_base

The floor at max_bytes_for_level_base (RocksDB has it too) keeps a small base level from
turning the tree into an hourglass: with bottom at 300 MiB, a raw 30 MiB base would take each
256 MiB L0 batch and then rewrite about ten bytes of bottom for every byte it pushes down.

Scores (`scores`; counting only tables not in `busy`):

    L0      max(tables / l0_compaction_trigger, bytes / target[0])
    used L  bytes / target[L], except bottom: 0 (its target is its own size; nothing below)
    unused  1 + bytes / max_bytes_for_level_base when it holds tables (the tree shrank and base
            moved down: the level drains into the one below); otherwise 0.  Until it is empty,
            L0 compacts into it: L0's newer data must never land below a level holding older.

Invariant 1: a task never includes a table in `busy`, and its output range on its output level
does not overlap a running task's.  Tasks into one level L >= 1 that share no table have
disjoint output spans (invariant 3: each covers its span of L completely), and two of them
never come from different levels: an L0 task goes to base, above which every level is empty,
and L0 is never picked while an L0 task runs.
Invariant 2: L0 -> base takes every L0 table, or moves the oldest tables that overlap no other
L0 table and nothing on base: a newer version of a key never ends up below an older one.
Invariant 3: a task's `lower` holds every output-level table that overlaps its inputs' range,
so the outputs never overlap the rest of the output level.
Invariant 4: keys are user keys; a user key lives in one table per level (the runner never
cuts an output between two versions of a key), so `smallest`/`largest` bound it exactly.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import pairwise
from typing import Final, NamedTuple

from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta, Version
from aiokv.engine.lsm.version_edit import VersionEdit
from aiokv.errors import InvalidArgumentError

MiB: Final = 1024 * 1024
LAST_LEVEL: Final = NUM_LEVELS - 1
_NO_BUSY: Final[frozenset[int]] = frozenset()


@dataclass(frozen=True)
class LeveledOptions:
    """Leveled compaction settings of one column family (sizes in bytes).

    `max_compaction_bytes` = 0 means 25 * target_file_size (resolved on construction).
    """

    l0_compaction_trigger: int = 4  # L0 tables that start an L0 -> base compaction
    l0_slowdown_trigger: int = 20  # the engine slows writers down from here
    l0_stop_trigger: int = 36  # ... and makes them wait from here
    max_bytes_for_level_base: int = 256 * MiB
    level_multiplier: int = 10
    target_file_size: int = 64 * MiB  # the runner cuts outputs near this size
    max_compaction_bytes: int = 0  # bound on one task's input bytes, except L0 -> base

    def __post_init__(self) -> None:
        if self.max_compaction_bytes == 0:
            object.__setattr__(self, "max_compaction_bytes", 25 * self.target_file_size)
        if self.l0_compaction_trigger < 1 or self.level_multiplier < 2:
            raise InvalidArgumentError("l0_compaction_trigger >= 1 and level_multiplier >= 2")
        if min(self.max_bytes_for_level_base, self.target_file_size) < 1:
            raise InvalidArgumentError("level and file sizes must be positive")
        if self.max_compaction_bytes < 0:
            raise InvalidArgumentError("max_compaction_bytes must be >= 0")


@dataclass(frozen=True, slots=True)
class CompactionTask:
    """Merge `inputs` (on `level`) with `lower` (on `output_level`) into `output_level`.

    Attributes:
        inputs: tables of `level` (L0: newest first, as the Version lists them).
        lower: the tables of `output_level` that overlap the inputs' key range.
        bottommost: no level below `output_level` overlaps [smallest, largest], so the runner
            may drop tombstones (and entries they shadow) that no live snapshot needs.
        reason: "l0", "size", "drain" (an unused level above base) or "manual"; the tiered
            and FIFO pickers (picker_tiered.py, picker_fifo.py) name theirs.
        score: the level's score when picked (0 for manual tasks).
        is_move: the inputs move to `output_level` as they are; nothing is rewritten.
        is_drop: the inputs are deleted whole; nothing is written (FIFO).  The runner never
            sees such a task: the engine logs `apply(version, task, [])` and is done.
    """

    cf: int
    level: int
    output_level: int
    inputs: tuple[FileMeta, ...]
    lower: tuple[FileMeta, ...]
    bottommost: bool
    reason: str
    score: float
    target_file_size: int
    is_move: bool = False
    is_drop: bool = False

    def all_files(self) -> Iterator[tuple[int, FileMeta]]:
        """Every (level, table) the task reads, inputs first."""
        for f in self.inputs:
            yield self.level, f
        for f in self.lower:
            yield self.output_level, f

    @property
    def smallest(self) -> bytes:
        return min(f.smallest for _, f in self.all_files())

    @property
    def largest(self) -> bytes:
        return max(f.largest for _, f in self.all_files())

    @property
    def input_bytes(self) -> int:
        return sum(f.size for _, f in self.all_files())


class RangeBusyError(Exception):
    """`pick_range`'s next step needs a table a running compaction holds: wait, call again."""


class _Shape(NamedTuple):
    targets: list[int]
    base: int
    bottom: int  # 0: no level >= 1 holds a table


def _shape(version: Version, opts: LeveledOptions) -> _Shape:
    sizes = [sum(f.size for f in files) for files in version.levels]
    bottom = max((lv for lv in range(1, NUM_LEVELS) if version.levels[lv]), default=0)
    base_max = opts.max_bytes_for_level_base
    targets = [0] * NUM_LEVELS
    targets[0] = base_max
    if not bottom:
        targets[LAST_LEVEL] = base_max
        return _Shape(targets, LAST_LEVEL, 0)
    raw = targets[bottom] = sizes[bottom]
    base = bottom
    while base > 1 and raw > base_max:
        raw //= opts.level_multiplier
        base -= 1
        targets[base] = max(raw, base_max)
    top = min(lv for lv in range(1, NUM_LEVELS) if version.levels[lv])
    return _Shape(targets, min(base, top), bottom)


def level_targets(version: Version, opts: LeveledOptions) -> list[int]:
    """Target bytes of each level, sized bottom-up (see the module docstring); 0: unused.

    >>> f = FileMeta(1, 3000 * MiB, b"a", b"z", 1, 1, 1, 0)
    >>> [t // MiB for t in level_targets(Version([[], [], [], [], [], [], [f]]), LeveledOptions())]
    [256, 0, 0, 0, 256, 300, 3000]
    """
    return _shape(version, opts).targets


def base_level(version: Version, opts: LeveledOptions) -> int:
    """The level L0 compacts into (see the module docstring; L6 while the tree is only L0)."""
    return _shape(version, opts).base


def _scores(
    version: Version, opts: LeveledOptions, busy: AbstractSet[int], shape: _Shape
) -> list[float]:
    out = [0.0] * NUM_LEVELS
    for level, files in enumerate(version.levels):
        live = [f.size for f in files if f.number not in busy] if busy else [f.size for f in files]
        size, target = sum(live), shape.targets[level]
        if level == 0:
            out[0] = max(len(live) / opts.l0_compaction_trigger, size / target)
        elif level == shape.bottom or not live:
            continue
        elif target:
            out[level] = size / target
        else:
            out[level] = 1.0 + size / opts.max_bytes_for_level_base
    return out


def scores(
    version: Version, opts: LeveledOptions, busy: AbstractSet[int] = _NO_BUSY
) -> list[float]:
    """Each level's compaction score (see the module docstring); >= 1 means due."""
    return _scores(version, opts, busy, _shape(version, opts))


def _hull(files: Sequence[FileMeta]) -> tuple[bytes, bytes]:
    return min(f.smallest for f in files), max(f.largest for f in files)


def _any_busy(files: Sequence[FileMeta], busy: AbstractSet[int]) -> bool:
    return bool(busy) and any(f.number in busy for f in files)


def _task(
    version: Version,
    opts: LeveledOptions,
    cf: int,
    level: int,
    out: int,
    inputs: Sequence[FileMeta],
    lower: Sequence[FileMeta],
    reason: str,
    score: float,
    is_move: bool = False,
) -> CompactionTask:
    lo, hi = _hull([*inputs, *lower])
    deeper = range(out + 1, NUM_LEVELS)
    bottommost = not any(version.overlapping(lv, lo, hi) for lv in deeper)
    return CompactionTask(
        cf, level, out, tuple(inputs), tuple(lower), bottommost, reason, score,
        opts.target_file_size, is_move,
    )  # fmt: skip


def _l0_task(
    version: Version, opts: LeveledOptions, shape: _Shape, cf: int, busy: AbstractSet[int],
    reason: str, score: float,
) -> CompactionTask | None:  # fmt: skip
    l0, base = version.levels[0], shape.base
    if not l0 or _any_busy(l0, busy):
        return None
    # Trivial move: the oldest tables, while each overlaps no other L0 table and nothing on
    # base.  Sequential loads then reach base with no rewrite at all.
    moves: list[FileMeta] = []
    for f in reversed(l0):
        alone = not any(g is not f and g.overlaps(f.smallest, f.largest) for g in l0)
        if not alone or version.overlapping(base, f.smallest, f.largest):
            break
        moves.append(f)
    if moves:
        moves.reverse()  # newest first, as L0 lists them
        return _task(version, opts, cf, 0, base, moves, (), reason, score, is_move=True)
    lower = version.overlapping(base, *_hull(l0))
    if _any_busy(lower, busy):
        return None
    return _task(version, opts, cf, 0, base, l0, lower, reason, score)


def _candidate(
    version: Version, busy: AbstractSet[int], level: int, f: FileMeta
) -> list[FileMeta] | None:
    """The lower tables for input `f` of `level`, or None if a needed table is busy."""
    if busy and f.number in busy:
        return None
    lower = version.overlapping(level + 1, f.smallest, f.largest)
    if _any_busy(lower, busy):
        return None
    return lower


def _level_task(
    version: Version, opts: LeveledOptions, shape: _Shape, cf: int, busy: AbstractSet[int],
    level: int, score: float, pointer: bytes | None,
) -> CompactionTask | None:  # fmt: skip
    """One table of `level` round-robin after `pointer`, with its overlaps on level + 1.

    The first candidate whose task fits max_compaction_bytes wins; if none fits, the first
    feasible one does (a table must never be stuck because its overlap is large).
    """
    files = version.levels[level]
    if level >= LAST_LEVEL or not files:
        return None
    reason = "size" if shape.targets[level] else "drain"
    start = 0 if pointer is None else bisect_right(version.largests[level], pointer)
    fallback: tuple[FileMeta, list[FileMeta]] | None = None
    for i in range(len(files)):
        f = files[(start + i) % len(files)]
        lower = _candidate(version, busy, level, f)
        if lower is None:
            continue
        if f.size + sum(g.size for g in lower) <= opts.max_compaction_bytes:
            return _task(version, opts, cf, level, level + 1, [f], lower, reason, score, not lower)
        if fallback is None:
            fallback = (f, lower)
    if fallback is None:
        return None
    return _task(version, opts, cf, level, level + 1, [fallback[0]], fallback[1], reason, score)


def pick(
    version: Version,
    opts: LeveledOptions,
    *,
    cf: int = 0,
    busy: AbstractSet[int] = _NO_BUSY,
    pointers: Mapping[int, bytes] | None = None,
) -> CompactionTask | None:
    """The most urgent compaction of `version`, or None if no level is due.

    Levels are tried by score, highest first (ties: the upper level), among scores >= 1; a
    level whose task would need a busy table yields to the next.

    Args:
        busy: numbers of tables in running compactions.
        pointers: level -> largest input key of that level's last compaction (the manifest's
            compact pointers); the next table of that level is the first after it.
    """
    shape = _shape(version, opts)
    sc = _scores(version, opts, busy, shape)
    for level in sorted(range(NUM_LEVELS), key=lambda lv: (-sc[lv], lv)):
        if sc[level] < 1.0:
            break
        if level == 0:
            task = _l0_task(version, opts, shape, cf, busy, "l0", sc[0])
        else:
            pointer = pointers.get(level) if pointers else None
            task = _level_task(version, opts, shape, cf, busy, level, sc[level], pointer)
        if task is not None:
            return task
    return None


def pick_range(
    version: Version,
    opts: LeveledOptions,
    lo: bytes | None,
    hi: bytes | None,
    *,
    cf: int = 0,
    busy: AbstractSet[int] = _NO_BUSY,
) -> CompactionTask | None:
    """The next task of `compact_range(lo, hi)`, or None once it is done.

    Done means every table overlapping [lo, hi] (hi inclusive, None unbounded) sits on the
    destination: the tree's bottom level (base while the tree is only L0).  Each call takes
    the highest level above it that holds an overlapping table: L0 goes whole to base (as in
    `pick`); a level L >= 1 sends a run of its overlapping tables, in key order, to L + 1,
    within max_compaction_bytes (at least one table; a table with no overlap below moves).
    The engine calls it until it returns None.  Without new writes into the range this ends:
    every task removes a table from the highest such level and adds tables only below it.
    Writes that keep landing in the range can keep it going; the engine may stop once a task's
    level is above the previous task's (as RocksDB, which compacts each level once).

    Raises:
        RangeBusyError: the next step needs a busy table; call again when a compaction ends.
    """
    shape = _shape(version, opts)
    dest = shape.bottom or shape.base
    for level in range(dest):
        files = version.overlapping(level, lo, hi)
        if not files:
            continue
        if level == 0:
            task = _l0_task(version, opts, shape, cf, busy, "manual", 0.0)
        else:
            task = _range_run(version, opts, shape, cf, busy, level, files)
        if task is None:
            raise RangeBusyError(f"compact_range waits for a compaction on L{level}")
        return task
    return None


def _range_run(
    version: Version, opts: LeveledOptions, shape: _Shape, cf: int, busy: AbstractSet[int],
    level: int, files: list[FileMeta],
) -> CompactionTask | None:  # fmt: skip
    """The first feasible table of `files` (consecutive on `level`), grown into a run."""
    out = level + 1
    for i, f in enumerate(files):
        lower = _candidate(version, busy, level, f)
        if lower is None:
            continue
        if not lower:
            return _task(version, opts, cf, level, out, [f], (), "manual", 0.0, True)
        run = [f]
        for g in files[i + 1 :]:
            if not _candidate(version, busy, level, g):
                break  # busy, or it moves on its own next time
            # The run's lower covers its whole span: tables of `out` in the gaps between
            # inputs are rewritten too, else an output cut across a gap would overlap them.
            wider = version.overlapping(out, f.smallest, g.largest)
            if (
                _any_busy(wider, busy)
                or sum(h.size for h in (*run, g, *wider)) > opts.max_compaction_bytes
            ):
                break
            run.append(g)
            lower = wider
        return _task(version, opts, cf, level, out, run, lower, "manual", 0.0)
    return None


def apply(version: Version, task: CompactionTask, outputs: Sequence[FileMeta]) -> VersionEdit:
    """The edit that replaces the task's tables by `outputs` on its output level.

    Inputs and lower are deleted and outputs added on `output_level`; a move re-adds its
    inputs there instead (pass no outputs, or the inputs themselves); a drop only deletes
    (pass no outputs).  The compact pointer of `level` (>= 1) is set to the inputs' largest
    key: the next pick there starts after it.  An output on L0 (a tiered merge of adjacent L0
    tables) must be one table within the inputs' sequence range: L0 is ordered by sequence,
    and only then does it take the place of its inputs between their neighbours.

    Raises:
        ValueError: the task is stale (a table is no longer where it says), a move or drop was
            given other outputs, the outputs are unsorted, overlap, or leave the task's key
            range, or an L0 output is not one table inside the inputs' sequence range.
    """
    for level, f in task.all_files():
        if f not in version.levels[level]:
            raise ValueError(f"stale task: table {f.number} is not on L{level}")
    cf, out = task.cf, task.output_level
    if task.is_drop:
        if outputs:
            raise ValueError("a drop writes nothing: pass no outputs")
    elif task.is_move:
        if outputs and tuple(outputs) != task.inputs:
            raise ValueError("a move rewrites nothing: its outputs are its inputs (or none)")
        outputs = task.inputs
    else:
        for a, b in pairwise(outputs):
            if not a.largest < b.smallest:
                raise ValueError(f"outputs {a.number} and {b.number} overlap or are unsorted")
        if outputs and (outputs[0].smallest < task.smallest or outputs[-1].largest > task.largest):
            raise ValueError("outputs leave the task's key range")
        if out == 0 and outputs:
            _check_l0_output(task, outputs)
    edit = VersionEdit()
    edit.deleted_files = [(cf, level, f.number) for level, f in task.all_files()]
    edit.new_files = [(cf, out, f) for f in outputs]
    if task.level >= 1:
        edit.compact_pointers = [(cf, task.level, max(f.largest for f in task.inputs))]
    return edit


def _check_l0_output(task: CompactionTask, outputs: Sequence[FileMeta]) -> None:
    if len(outputs) != 1:
        raise ValueError(f"an L0 output must be one table, not {len(outputs)}")
    lo = min(f.smallest_seq for _, f in task.all_files())
    hi = max(f.largest_seq for _, f in task.all_files())
    if not lo <= outputs[0].smallest_seq <= outputs[0].largest_seq <= hi:
        raise ValueError("an L0 output's sequences leave its inputs' range")
