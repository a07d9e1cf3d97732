"""The FIFO picker, with no I/O: TTL drops, size drops oldest first, the newest table kept."""

from __future__ import annotations

from itertools import count

import pytest

from aiokv.engine.lsm.picker import apply
from aiokv.engine.lsm.picker_fifo import FifoOptions, pick_fifo
from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta, Version
from aiokv.errors import InvalidArgumentError

KiB = 1024
_numbers = count(1)


def t(kib: int, created_ms: int = 0) -> FileMeta:
    """A flush output of `kib` KiB; later calls make newer tables (higher seqs)."""
    n = next(_numbers)
    return FileMeta(n, kib * KiB, b"a", b"z", 10 * n, 10 * n + 9, 10, 0, created_ms=created_ms)


def l0(*tables: FileMeta) -> Version:
    return Version([list(tables)])


def numbers(files: tuple[FileMeta, ...]) -> list[int]:
    return [f.number for f in files]


def run(v: Version, opts: FifoOptions, now_ms: int = 0) -> Version:
    """Picks and applies drops until none is due."""
    for _ in range(len(v.levels[0]) + 1):
        task = pick_fifo(v, opts, now_ms)
        if task is None:
            return v
        edit = apply(v, task, [])
        v = v.apply(
            [(lv, f) for _, lv, f in edit.new_files], [(lv, n) for _, lv, n in edit.deleted_files]
        )
        v.check()
    raise AssertionError("FIFO did not settle")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_table_files_size": 0}, "max_table_files_size"),
        ({"max_table_files_size": 1, "ttl_ms": -1}, "ttl_ms"),
    ],
)
def test_options_reject_bad_values(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        FifoOptions(**kwargs)


def test_empty_family_drops_nothing():
    assert pick_fifo(Version(), FifoOptions(1), 0) is None


# sizes oldest first (KiB), bound (KiB) -> how many of the oldest are dropped
@pytest.mark.parametrize(
    ("sizes", "bound", "dropped"),
    [
        ([10, 10, 10], 30, 0),  # exactly at the bound: kept
        ([10, 10, 10], 29, 1),
        ([10, 10, 10], 20, 1),
        ([10, 10, 10], 19, 2),
        ([50, 1, 1, 1], 10, 1),  # one big old table makes room for many
        ([1, 1, 1, 50], 10, 3),  # the newest is kept although it alone is over the bound
        ([50], 10, 0),  # the only table is the newest
    ],
)
def test_size_drops_oldest_while_over_the_bound_keeping_the_newest(sizes, bound, dropped):
    tables = [t(s) for s in sizes]
    task = pick_fifo(l0(*tables), FifoOptions(bound * KiB), 0)
    if not dropped:
        assert task is None
        return
    assert task is not None and task.reason == "fifo-size"
    assert numbers(task.inputs) == [f.number for f in reversed(tables[:dropped])]  # newest first


def test_a_drop_task_deletes_and_writes_nothing():
    a, b = t(10), t(10)
    task = pick_fifo(l0(a, b), FifoOptions(15 * KiB), 0)
    assert task is not None
    assert task.is_drop and not task.is_move
    assert (task.level, task.output_level, task.lower, task.bottommost) == (0, 0, (), False)
    edit = apply(l0(a, b), task, [])
    assert edit.deleted_files == [(0, 0, a.number)] and edit.new_files == []
    assert edit.compact_pointers == []


def test_apply_rejects_outputs_for_a_drop_and_a_stale_drop():
    a, b, c = t(10), t(10), t(10)
    task = pick_fifo(l0(a, b), FifoOptions(15 * KiB), 0)
    assert task is not None
    with pytest.raises(ValueError, match="drop writes nothing"):
        apply(l0(a, b), task, [c])
    with pytest.raises(ValueError, match="stale"):
        apply(l0(b, c), task, [])


def test_ttl_drops_tables_whose_writer_started_ttl_ago_or_more():
    old, edge, young = t(1, created_ms=1_000), t(1, created_ms=5_000), t(1, created_ms=5_001)
    task = pick_fifo(l0(old, edge, young), FifoOptions(1 << 30, ttl_ms=5_000), 10_000)
    assert task is not None and task.reason == "fifo-ttl" and task.is_drop
    assert numbers(task.inputs) == [edge.number, old.number]


def test_ttl_never_drops_a_table_of_unknown_age():
    unknown, old = t(1), t(1, created_ms=1)
    task = pick_fifo(l0(unknown, old), FifoOptions(1 << 30, ttl_ms=10), 1_000_000)
    assert task is not None and numbers(task.inputs) == [old.number]


def test_ttl_zero_means_no_ttl():
    assert pick_fifo(l0(t(1, created_ms=1)), FifoOptions(1 << 30), 10**12) is None


def test_ttl_comes_before_size_and_may_drop_the_newest_table():
    oldest, newest = t(100), t(1, created_ms=1)
    opts = FifoOptions(10 * KiB, ttl_ms=10)
    task = pick_fifo(l0(oldest, newest), opts, 1_000)
    assert task is not None and task.reason == "fifo-ttl"
    assert numbers(task.inputs) == [newest.number]
    # The table left is now the newest: size alone does not drop it.
    assert run(l0(oldest, newest), opts, 1_000).levels[0] == (oldest,)


def test_tables_below_l0_are_neither_counted_nor_dropped():
    deep = FileMeta(next(_numbers), 1 << 30, b"a", b"z", 1, 1, 1, 0)
    v = Version([[t(1)], *[[] for _ in range(NUM_LEVELS - 2)], [deep]])
    assert pick_fifo(v, FifoOptions(10 * KiB), 0) is None


def test_repeated_flushes_stay_within_the_bound_plus_the_newest_table():
    opts = FifoOptions(100 * KiB)
    v = Version()
    sizes = [7, 30, 3, 120, 1, 1, 64, 9, 50, 2] * 5
    for size in sizes:
        v = run(v.apply([(0, t(size))], []), opts)
        files = v.levels[0]
        total = sum(f.size for f in files)
        assert total <= opts.max_table_files_size or len(files) == 1
    assert len(v.levels[0]) >= 1
    assert v.levels[0][0].size == sizes[-1] * KiB, "the newest flush always survives"
