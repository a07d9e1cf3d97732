"""The leveled picker, with no I/O: targets, scores, picks, busy tables, manual ranges, apply.

Tables are modelled as {key: seq} dicts (`Tree`), one key per KiB, so a merge is exact and a
get can be checked to return the newest write of every key.
"""

from __future__ import annotations

import random
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiokv.engine.lsm.picker import (
    CompactionTask,
    LeveledOptions,
    RangeBusyError,
    apply,
    base_level,
    level_targets,
    pick,
    pick_range,
    scores,
)
from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta, Version
from aiokv.errors import InvalidArgumentError

KiB = 1024
OPTS = LeveledOptions(max_bytes_for_level_base=256 * KiB, target_file_size=64 * KiB)
_numbers = count(1)


def k(i: int) -> bytes:
    return b"%06d" % i


def t(lo: int, hi: int, kib: int = 64) -> FileMeta:
    """A table over keys lo..hi; numbers (and seqs) increase, so later tables are newer."""
    n = next(_numbers)
    return FileMeta(n, kib * KiB, k(lo), k(hi), n, n, hi - lo + 1, 0)


def tree(**levels: list[FileMeta]) -> Version:
    """tree(L0=[...], L6=[...])."""
    return Version([levels.get(f"L{i}", []) for i in range(NUM_LEVELS)])


def kib(values: list[int]) -> list[int]:
    return [v // KiB for v in values]


class Tree:
    """A version with the keys of every table, driven by the real picker and apply()."""

    def __init__(self, opts: LeveledOptions = OPTS) -> None:
        self.opts = opts
        self.v = Version()
        self.data: dict[int, dict[int, int]] = {}
        self.latest: dict[int, int] = {}
        self.seq = 0
        self.number = 1_000_000
        self.pointers: dict[int, bytes] = {}
        self.tasks: list[CompactionTask] = []

    def _table(self, kv: dict[int, int]) -> FileMeta:
        self.number += 1
        self.data[self.number] = kv
        ks = sorted(kv)
        lo, hi = min(kv.values()), max(kv.values())
        return FileMeta(self.number, len(kv) * KiB, k(ks[0]), k(ks[-1]), lo, hi, len(kv), 0)

    def _write(self, keys: list[int]) -> dict[int, int]:
        kv = {}
        for key in keys:
            self.seq += 1
            kv[key] = self.latest[key] = self.seq
        return kv

    def flush(self, keys: list[int]) -> FileMeta:
        f = self._table(self._write(keys))
        self.v = self.v.apply([(0, f)], [])
        return f

    def place(self, level: int, keys: list[int]) -> FileMeta:
        """A table written straight to `level` (build deeper levels first: they are older)."""
        f = self._table(self._write(keys))
        self.v = self.v.apply([(level, f)], [])
        return f

    def run(self, task: CompactionTask) -> None:
        outputs = []
        if not task.is_move:
            merged: dict[int, int] = {}
            for _, f in task.all_files():
                for key, s in self.data[f.number].items():
                    if merged.get(key, -1) < s:
                        merged[key] = s
            ks = sorted(merged)
            per = max(1, task.target_file_size // KiB)
            for i in range(0, len(ks), per):
                outputs.append(self._table({x: merged[x] for x in ks[i : i + per]}))
        edit = apply(self.v, task, outputs)
        self.v = self.v.apply(
            [(lv, f) for _, lv, f in edit.new_files], [(lv, n) for _, lv, n in edit.deleted_files]
        )
        for _, lv, key in edit.compact_pointers:
            self.pointers[lv] = key
        self.tasks.append(task)
        self.v.check()

    def settle(self, limit: int = 10_000) -> None:
        for _ in range(limit):
            task = pick(self.v, self.opts, pointers=self.pointers)
            if task is None:
                return
            self.run(task)
        raise AssertionError("the picker did not settle")

    def compact_range(self, lo: bytes | None, hi: bytes | None, limit: int = 10_000) -> None:
        for _ in range(limit):
            task = pick_range(self.v, self.opts, lo, hi)
            if task is None:
                return
            assert task.reason == "manual"
            self.run(task)
        raise AssertionError("pick_range did not terminate")

    def get(self, key: int) -> int | None:
        """The seq a get finds: L0 newest first, then one table per level."""
        kb = k(key)
        tables = [f for f in self.v.levels[0] if f.smallest <= kb <= f.largest]
        tables += [f for lv in range(1, NUM_LEVELS) if (f := self.v.file_for(lv, kb))]
        for f in tables:
            if key in self.data[f.number]:
                return self.data[f.number][key]
        return None

    def check_contents(self) -> None:
        self.v.check()
        stored = set().union(*(self.data[f.number] for _, f in self.v.files()))
        assert stored == set(self.latest), "key coverage changed"
        for key, seq in self.latest.items():
            assert self.get(key) == seq, f"key {key}: an older version is visible"


# -- options --------------------------------------------------------------------------------------


def test_max_compaction_bytes_defaults_to_25_target_files():
    assert LeveledOptions(target_file_size=KiB).max_compaction_bytes == 25 * KiB
    assert LeveledOptions(max_compaction_bytes=7).max_compaction_bytes == 7


@pytest.mark.parametrize(
    "bad",
    [{"l0_compaction_trigger": 0}, {"level_multiplier": 1}, {"target_file_size": 0},
     {"max_bytes_for_level_base": 0}, {"max_compaction_bytes": -1}],
)  # fmt: skip
def test_bad_options_are_refused(bad):
    with pytest.raises(InvalidArgumentError):
        LeveledOptions(**bad)


# -- level targets --------------------------------------------------------------------------------


def test_an_l0_only_tree_compacts_into_the_last_level():
    v = tree(L0=[t(0, 9)])
    assert kib(level_targets(v, OPTS)) == [256, 0, 0, 0, 0, 0, 256]
    assert base_level(v, OPTS) == 6


def test_a_bottom_level_up_to_the_base_size_is_the_base_and_its_own_target():
    v = tree(L6=[t(0, 9, kib=256)])
    assert kib(level_targets(v, OPTS)) == [256, 0, 0, 0, 0, 0, 256]
    assert base_level(v, OPTS) == 6


def test_the_level_above_the_bottom_is_used_once_the_bottom_passes_the_base_size():
    v = tree(L6=[t(0, 9, kib=257)])
    assert base_level(v, OPTS) == 5
    assert kib(level_targets(v, OPTS)) == [256, 0, 0, 0, 0, 256, 257]  # 25 KiB, floored


def test_targets_shrink_by_the_multiplier_from_the_bottom_up():
    v = tree(L6=[t(0, 9, kib=30_000)], L5=[t(0, 9, kib=100)])
    assert kib(level_targets(v, OPTS)) == [256, 0, 0, 256, 300, 3000, 30_000]
    assert base_level(v, OPTS) == 3  # L3's 30 KiB > 256 / 10; L2's 3 KiB would not be
    v = tree(L6=[t(0, 9, kib=2_560)])
    assert kib(level_targets(v, OPTS)) == [256, 0, 0, 0, 0, 256, 2560]  # 256 is not > 256


def test_a_bottom_above_l6_sizes_the_tree_from_there():
    v = tree(L3=[t(0, 9, kib=3_000)])
    assert kib(level_targets(v, OPTS)) == [256, 256, 300, 3000, 0, 0, 0]
    assert base_level(v, OPTS) == 1


def test_a_huge_tree_uses_l1_with_a_target_above_the_base_size():
    v = tree(L6=[t(0, 9, kib=256 * 10**6)])
    targets = kib(level_targets(v, OPTS))
    assert base_level(v, OPTS) == 1
    assert targets[1:] == [2560, 25_600, 256_000, 2_560_000, 25_600_000, 256_000_000]


def test_the_multiplier_option_is_used():
    opts = LeveledOptions(max_bytes_for_level_base=256 * KiB, level_multiplier=4)
    v = tree(L6=[t(0, 9, kib=4_096)])
    assert kib(level_targets(v, opts)) == [256, 0, 0, 0, 256, 1024, 4096]


# -- scores ---------------------------------------------------------------------------------------


def test_l0_score_is_its_table_count_over_the_trigger():
    v = tree(L0=[t(0, 9, kib=1) for _ in range(3)])
    assert scores(v, OPTS)[0] == 0.75


def test_l0_score_also_counts_bytes_against_the_base_size():
    v = tree(L0=[t(0, 9, kib=512)])
    assert scores(v, OPTS)[0] == 2.0


def test_busy_tables_do_not_count_in_scores():
    l0 = [t(0, 9, kib=1) for _ in range(4)]
    l5 = [t(0, 9, kib=300), t(10, 19, kib=300)]
    v = tree(L0=l0, L5=l5, L6=[t(0, 99, kib=2_570)])  # L5's target: 257 KiB
    assert scores(v, OPTS) == [1.0, 0, 0, 0, 0, 600 / 257, 0]
    assert scores(v, OPTS, {l0[0].number, l5[0].number}) == [0.75, 0, 0, 0, 0, 300 / 257, 0]


def test_the_bottom_level_scores_zero_however_large():
    v = tree(L6=[t(0, 9, kib=10**7)])
    assert scores(v, OPTS) == [0.0] * NUM_LEVELS


def test_an_unused_level_holding_tables_scores_at_least_one_and_drains():
    v = tree(L2=[t(0, 9, kib=1)], L6=[t(0, 99, kib=100)])
    assert scores(v, OPTS)[2] > 1.0
    task = pick(v, OPTS)
    assert task is not None and (task.level, task.output_level, task.reason) == (2, 3, "drain")
    assert task.is_move  # nothing on L3 overlaps


# -- pick -----------------------------------------------------------------------------------------


def test_nothing_due_picks_nothing():
    assert pick(Version(), OPTS) is None
    assert pick(tree(L0=[t(0, 9, kib=1)], L6=[t(0, 9)]), OPTS) is None


def test_l0_at_its_trigger_compacts_every_l0_table_with_the_overlapping_base_tables():
    base = [t(0, 9), t(20, 29), t(60, 69)]
    l0 = [t(5, 25, kib=1), t(8, 30, kib=1), t(0, 28, kib=1), t(1, 2, kib=1)]
    task = pick(tree(L0=l0, L6=base), OPTS)
    assert task is not None and (task.level, task.output_level, task.reason) == (0, 6, "l0")
    assert {f.number for f in task.inputs} == {f.number for f in l0}
    assert [f.largest_seq for f in task.inputs] == sorted((f.largest_seq for f in l0), reverse=True)
    assert task.lower == tuple(base[:2])
    assert not task.is_move and task.bottommost and task.score == 1.0


def test_l0_below_its_trigger_waits():
    assert pick(tree(L0=[t(0, 9, kib=1) for _ in range(3)], L6=[t(0, 9)]), OPTS) is None


def test_the_oldest_l0_tables_that_overlap_nothing_move_to_base():
    old_a, old_b, c = t(0, 9, kib=1), t(20, 29, kib=1), t(40, 49, kib=1)
    d = t(45, 60, kib=1)  # overlaps c: c and d must be merged, newest winning
    task = pick(tree(L0=[old_a, old_b, c, d], L6=[t(100, 200)]), OPTS)
    assert task is not None and task.is_move and task.output_level == 6
    assert set(task.inputs) == {old_a, old_b} and task.lower == ()


def test_an_l0_table_that_overlaps_a_newer_one_is_not_moved():
    tr = Tree()
    for lo in (0, 5, 10, 200):  # the oldest overlaps the second: all four are merged
        tr.flush(list(range(lo, lo + 8)))
    tr.place(6, [500])  # keep nothing below from overlapping (a move would be possible)
    task = pick(tr.v, OPTS)
    assert task is not None and not task.is_move and len(task.inputs) == 4
    tr.run(task)
    tr.check_contents()


def test_a_busy_l0_table_blocks_every_l0_compaction():
    l0 = [t(0, 9, kib=1) for _ in range(8)]
    v = tree(L0=l0, L6=[t(0, 9)])
    assert pick(v, OPTS, busy={l0[-1].number}) is None


def test_a_busy_base_table_under_l0_blocks_the_l0_compaction():
    base = [t(0, 9), t(50, 59)]
    v = tree(L0=[t(0, 9, kib=1) for _ in range(4)], L6=base)
    assert pick(v, OPTS, busy={base[1].number}) is not None  # not under L0's range
    assert pick(v, OPTS, busy={base[0].number}) is None


def _due_l5(n: int = 6) -> tuple[Version, list[FileMeta], list[FileMeta]]:
    """L5 holds n tables (each 64 KiB over 10 keys) over a 2570 KiB L6: target 257 KiB."""
    l5 = [t(i * 100, i * 100 + 9) for i in range(n)]
    l6 = [t(i * 100 + 5, i * 100 + 50, kib=2570 // n) for i in range(n)]
    return tree(L5=l5, L6=l6), l5, l6


def test_a_level_compaction_takes_one_table_and_its_overlaps_below():
    v, l5, l6 = _due_l5()
    task = pick(v, OPTS)
    assert task is not None and (task.level, task.output_level, task.reason) == (5, 6, "size")
    assert task.inputs == (l5[0],) and task.lower == (l6[0],)
    assert task.score == scores(v, OPTS)[5] and task.bottommost


def test_a_level_compaction_never_takes_a_busy_table():
    v, l5, l6 = _due_l5()
    assert pick(v, OPTS, busy={l5[0].number}).inputs == (l5[1],)
    assert pick(v, OPTS, busy={l6[0].number, l6[1].number}).inputs == (l5[2],)
    every = {f.number for f in l5}
    assert pick(v, OPTS, busy=every) is None


def test_round_robin_starts_after_the_pointer_and_wraps():
    v, l5, _ = _due_l5()
    assert pick(v, OPTS, pointers={5: l5[2].largest}).inputs == (l5[3],)
    assert pick(v, OPTS, pointers={5: k(250)}).inputs == (l5[3],)  # between tables
    assert pick(v, OPTS, pointers={5: l5[-1].largest}).inputs == (l5[0],)


def test_round_robin_advances_through_the_level_and_wraps():
    tr = Tree(LeveledOptions(max_bytes_for_level_base=4 * KiB, target_file_size=2 * KiB))
    for i in range(80):
        tr.place(6, list(range(i * 10, i * 10 + 5)))  # 400 KiB: L5's target is 40 KiB
    for i in range(40):
        tr.place(5, [i * 20 + 7, i * 20 + 8])  # 80 KiB
    tr.pointers[5] = k(20 * 30)
    picked = []
    for _ in range(15):
        task = pick(tr.v, tr.opts, pointers=tr.pointers)
        assert task is not None and task.level == 5
        picked.append(int(task.inputs[0].smallest))
        tr.run(task)
        assert tr.pointers[5] == task.inputs[0].largest
    assert picked == [i * 20 + 7 for i in [*range(30, 40), *range(5)]]
    tr.check_contents()


def test_a_table_overlapping_nothing_below_moves():
    v, l5, _ = _due_l5()
    v = tree(L5=[*l5, t(1000, 1010)], L6=list(v.levels[6]))
    task = pick(v, OPTS, pointers={5: l5[-1].largest})
    assert task is not None and task.is_move and task.inputs[0].smallest == k(1000)
    assert task.lower == ()


def test_a_candidate_over_max_compaction_bytes_yields_to_one_that_fits():
    opts = LeveledOptions(
        max_bytes_for_level_base=256 * KiB,
        target_file_size=64 * KiB,
        max_compaction_bytes=500 * KiB,
    )
    l5 = [t(0, 9, kib=150), t(100, 109, kib=150), t(200, 209, kib=150)]
    l6 = [t(0, 50, kib=1000), t(100, 150, kib=100), t(200, 250, kib=1470)]
    v = tree(L5=l5, L6=l6)
    assert pick(v, opts).inputs == (l5[1],)
    alone = tree(L5=[l5[0], l5[2]], L6=[l6[0], l6[2]])
    assert pick(alone, opts).inputs == (l5[0],), "the first feasible when none fits"


def test_bottommost_is_set_only_when_no_deeper_level_overlaps():
    l4 = [t(0, 9, kib=200), t(100, 109, kib=200)]  # L4's target: 257 KiB
    l5 = [t(0, 5, kib=400)]  # under the first L4 table only
    v = tree(L4=l4, L5=l5, L6=[t(3, 4, kib=25_700)])
    first = pick(v, OPTS)
    assert first is not None and first.inputs == (l4[0],) and not first.bottommost
    second = pick(v, OPTS, pointers={4: l4[0].largest})
    assert second is not None and second.inputs == (l4[1],) and second.bottommost


def test_the_highest_score_wins_and_ties_go_to_the_upper_level():
    v, l5, _ = _due_l5(8)  # L5 score 512 / 257
    l0 = [t(0, 9, kib=1) for _ in range(4)]
    v = tree(L0=l0, L5=list(v.levels[5]), L6=list(v.levels[6]))
    assert pick(v, OPTS).level == 5
    v = tree(L0=[*l0, *(t(0, 9, kib=1) for _ in range(4))], L5=l5, L6=list(v.levels[6]))
    assert pick(v, OPTS).level == 0


def test_l0_compacts_into_a_draining_level_never_below_it():
    l0 = [t(20, 30, kib=1) for _ in range(5)]
    l5 = [t(22, 28, kib=1)]  # unused (L6 is small) but holds older versions of 22..28
    v = tree(L0=l0, L5=l5, L6=[t(0, 99, kib=100)])
    assert base_level(v, OPTS) == 5
    task = pick(v, OPTS)
    assert task is not None and (task.level, task.output_level) == (0, 5)
    assert task.lower == tuple(l5)


def test_concurrent_picks_on_a_level_share_no_table_and_stop_at_the_target():
    v, l5, _ = _due_l5(8)  # 512 KiB on L5, target 257: busy bytes no longer count
    busy: set[int] = set()
    tasks = []
    while (task := pick(v, OPTS, busy=busy)) is not None:
        tasks.append(task)
        busy |= {f.number for _, f in task.all_files()}
    assert [task.inputs for task in tasks] == [(f,) for f in l5[:4]]


def _random_tree(seed: int) -> Tree:
    """Tables on random levels (deeper ones older), then L0 flushes: several levels due."""
    rng = random.Random(seed)
    tr = Tree(
        LeveledOptions(
            max_bytes_for_level_base=rng.choice([4, 8, 16]) * KiB,
            level_multiplier=rng.choice([2, 3, 10]),
            target_file_size=rng.choice([2, 4]) * KiB,
            max_compaction_bytes=rng.choice([4, 12, 40]) * KiB,
        )
    )
    for level in range(NUM_LEVELS - 1, 0, -1):
        n = rng.choice([0, 0, 1, 3, 6])
        bounds = sorted(rng.sample(range(1000), 2 * n))
        for a, b in zip(bounds[::2], bounds[1::2], strict=True):
            inner = rng.sample(range(a + 1, b), min(b - a - 1, rng.randrange(6)))
            tr.place(level, [a, b, *inner])
    for _ in range(rng.randrange(9)):
        lo = rng.randrange(1000)
        tr.flush(rng.sample(range(lo, lo + rng.choice([5, 50, 400])), 4))
    return tr


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 2**32))
def test_concurrent_picks_never_share_tables_or_output_ranges(seed):
    tr = _random_tree(seed)
    busy: set[int] = set()
    tasks: list[CompactionTask] = []
    while (task := pick(tr.v, tr.opts, busy=busy, pointers=tr.pointers)) is not None:
        numbers = {f.number for _, f in task.all_files()}
        assert not numbers & busy
        for other in tasks:
            if other.output_level == task.output_level:
                assert task.largest < other.smallest or other.largest < task.smallest
        busy |= numbers
        tasks.append(task)
    for task in tasks:  # finishing them one after another gives valid versions
        tr.run(task)
    tr.check_contents()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32))
def test_settling_any_tree_keeps_versions_valid_newest_visible_and_levels_in_bounds(seed):
    tr = _random_tree(seed)
    tr.settle()
    tr.check_contents()
    assert all(s < 1.0 for s in scores(tr.v, tr.opts))


def test_random_writes_settle_with_every_level_in_bounds():
    rng = random.Random(7)
    tr = Tree(LeveledOptions(max_bytes_for_level_base=16 * KiB, target_file_size=4 * KiB))
    for _ in range(300):
        tr.flush(rng.sample(range(5000), 8))
        tr.settle()
    tr.check_contents()
    assert all(s < 1.0 for s in scores(tr.v, tr.opts))
    assert {task.reason for task in tr.tasks} >= {"l0", "size"}
    assert base_level(tr.v, tr.opts) < 6, "the tree grew past one level"


def test_sequential_writes_only_move_tables():
    tr = Tree(LeveledOptions(max_bytes_for_level_base=16 * KiB, target_file_size=4 * KiB))
    for i in range(200):
        tr.flush(list(range(i * 8, i * 8 + 8)))
        tr.settle()
    assert tr.tasks and all(task.is_move for task in tr.tasks)
    tr.check_contents()


# -- pick_range -----------------------------------------------------------------------------------


def _layered() -> Tree:
    tr = Tree(LeveledOptions(max_bytes_for_level_base=8 * KiB, target_file_size=2 * KiB))
    rng = random.Random(3)
    for level in (6, 5, 3):
        for i in range(0, 1000, 50):
            if rng.random() < 0.6:
                tr.place(level, sorted(rng.sample(range(i, i + 50), 4)))
    for _ in range(3):
        tr.flush(rng.sample(range(1000), 6))
    return tr


@pytest.mark.parametrize("span", [(None, None), (200, 400), (7, 7), (900, None)])
def test_compact_range_ends_with_the_range_in_one_level(span):
    tr = _layered()
    lo, hi = (None if x is None else k(x) for x in span)
    before = [lv for lv in range(NUM_LEVELS) if tr.v.overlapping(lv, lo, hi)]
    assert len(before) > 1
    tr.compact_range(lo, hi)
    levels = {lv for lv in range(NUM_LEVELS) if tr.v.overlapping(lv, lo, hi)}
    assert levels <= {6}, "everything overlapping sits on the bottom level"
    tr.check_contents()
    assert pick_range(tr.v, tr.opts, lo, hi) is None


def test_a_full_compact_range_leaves_one_level():
    tr = _layered()
    tr.compact_range(None, None)
    assert [lv for lv in range(NUM_LEVELS) if tr.v.levels[lv]] == [6]
    tr.check_contents()


def test_compact_range_of_an_l0_only_tree_goes_to_the_last_level():
    tr = Tree()
    tr.flush([1, 2, 3])
    tr.flush([2, 3, 4])
    tr.compact_range(None, None)
    assert [len(files) for files in tr.v.levels] == [0, 0, 0, 0, 0, 0, 1]
    tr.check_contents()


def test_compact_range_has_nothing_to_do_when_the_range_is_in_one_level():
    v = tree(L0=[t(500, 600)], L6=[t(0, 9), t(10, 19)])
    assert pick_range(v, OPTS, k(0), k(19)) is None
    assert pick_range(v, OPTS, k(0), k(500)) is not None


def test_compact_range_splits_a_level_by_max_compaction_bytes():
    l5 = [t(i * 10, i * 10 + 5) for i in range(10)]
    l6 = [t(i * 10 + 2, i * 10 + 8, kib=1000) for i in range(10)]
    opts = LeveledOptions(max_bytes_for_level_base=256 * KiB, max_compaction_bytes=2200 * KiB)
    task = pick_range(tree(L5=l5, L6=l6), opts, None, None)
    assert task is not None and task.inputs == tuple(l5[:2]) and task.lower == tuple(l6[:2])


def test_a_range_run_rewrites_the_lower_tables_in_its_gaps():
    l5 = [t(0, 9), t(20, 29)]
    l6 = [t(0, 5), t(12, 15), t(25, 27), t(40, 45)]
    task = pick_range(tree(L5=l5, L6=l6), OPTS, None, None)
    assert task is not None and task.inputs == tuple(l5) and task.lower == tuple(l6[:3])


def test_compact_range_moves_a_table_with_nothing_below():
    l5 = [t(0, 9), t(20, 29)]
    task = pick_range(tree(L5=l5, L6=[t(25, 27)]), OPTS, None, None)
    assert task is not None and task.is_move and task.inputs == (l5[0],)


def test_compact_range_raises_when_its_next_step_is_busy():
    l0 = [t(0, 9, kib=1)]
    with pytest.raises(RangeBusyError):
        pick_range(tree(L0=l0, L6=[t(0, 9)]), OPTS, None, None, busy={l0[0].number})
    l5, l6 = [t(0, 9)], [t(0, 9)]
    with pytest.raises(RangeBusyError):
        pick_range(tree(L5=l5, L6=l6), OPTS, None, None, busy={l6[0].number})


# -- apply ----------------------------------------------------------------------------------------


def test_apply_replaces_inputs_and_lower_by_the_outputs_and_sets_the_pointer():
    v, l5, l6 = _due_l5()
    task = pick(v, OPTS, cf=3)
    assert task is not None
    out = [FileMeta(900, 10, l5[0].smallest, k(20), 1, 9, 5, 0)]
    edit = apply(v, task, out)
    assert edit.deleted_files == [(3, 5, l5[0].number), (3, 6, l6[0].number)]
    assert edit.new_files == [(3, 6, out[0])]
    assert edit.compact_pointers == [(3, 5, l5[0].largest)]


def test_a_move_re_adds_its_inputs_on_the_output_level():
    l5 = [t(0, 9)]
    v = tree(L5=l5, L6=[t(50, 59)])
    task = pick_range(v, OPTS, None, None)
    assert task is not None and task.is_move
    for outputs in ([], list(task.inputs)):
        edit = apply(v, task, outputs)
        assert edit.deleted_files == [(0, 5, l5[0].number)]
        assert edit.new_files == [(0, 6, l5[0])]
    with pytest.raises(ValueError, match="move"):
        apply(v, task, [t(0, 9)])


def test_an_l0_compaction_sets_no_pointer():
    v = tree(L0=[t(0, 9, kib=1) for _ in range(4)], L6=[t(0, 9)])
    task = pick(v, OPTS)
    assert task is not None and apply(v, task, [t(0, 9)]).compact_pointers == []


def test_a_stale_task_is_refused():
    v, l5, _ = _due_l5()
    task = pick(v, OPTS)
    assert task is not None
    newer = v.apply([], [(5, l5[0].number)])
    with pytest.raises(ValueError, match="stale"):
        apply(newer, task, [])


def test_outputs_that_overlap_or_leave_the_task_range_are_refused():
    v, _, _ = _due_l5()
    task = pick(v, OPTS)
    assert task is not None
    with pytest.raises(ValueError, match="overlap"):
        apply(v, task, [t(0, 5), t(5, 9)])
    with pytest.raises(ValueError, match="range"):
        apply(v, task, [t(0, 5000)])
