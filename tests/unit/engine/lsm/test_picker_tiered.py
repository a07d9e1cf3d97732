"""The tiered (universal) picker, with no I/O: runs, the three rules, where outputs go, busy
tables, draining L1..L5, manual full compaction, and convergence under pick + apply.

Cases are tables of run sizes in KiB, newest first; `L6` sizes are the tables of the last level.
The convergence tests model each table as a {key: seq} dict, so a merge is exact and a get
(L0 newest first, then L1..L6) can be checked to return the newest write of every key.
"""

from __future__ import annotations

import random
from itertools import count

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiokv.engine.lsm import picker_tiered
from aiokv.engine.lsm.picker import CompactionTask, apply
from aiokv.engine.lsm.picker_tiered import (
    L0_UNCUT,
    TieredOptions,
    pick_tiered,
    pick_tiered_full,
    sorted_runs,
)
from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta, Version
from aiokv.errors import InvalidArgumentError

KiB = 1024
OPTS = TieredOptions(target_file_size=64 * KiB)
_numbers = count(1)


def k(i: int) -> bytes:
    return b"%06d" % i


def tree(l0: list[int], l6: list[int] = (), **mid: list[FileMeta]) -> Version:
    """L0 tables of the given KiB sizes (newest first), L6 tables over disjoint key spans."""
    base = next(_numbers) * 1000
    l0_files = [
        FileMeta(next(_numbers), s * KiB, k(0), k(999), base - 10 * i - 9, base - 10 * i, 1, 0)
        for i, s in enumerate(l0)
    ]
    l6_files = [
        FileMeta(next(_numbers), s * KiB, k(100 * i), k(100 * i + 99), 1, 2, 1, 0)
        for i, s in enumerate(l6)
    ]
    levels = [l0_files] + [mid.get(f"L{i}", []) for i in range(1, NUM_LEVELS - 1)] + [l6_files]
    return Version(levels)


def positions(v: Version, task: CompactionTask) -> list[int]:
    """Indexes of the task's runs in sorted_runs(v)."""
    runs = sorted_runs(v)
    taken = {f.number for _, f in task.all_files()}
    return [i for i, r in enumerate(runs) if r[0].number in taken]


def merged(task: CompactionTask, number: int) -> FileMeta:
    """One table standing for the output of `task` (what the runner would write)."""
    files = [f for _, f in task.all_files()]
    return FileMeta(
        number, sum(f.size for f in files), min(f.smallest for f in files),
        max(f.largest for f in files), min(f.smallest_seq for f in files),
        max(f.largest_seq for f in files), sum(f.entries for f in files), 0,
    )  # fmt: skip


def applied(v: Version, task: CompactionTask, outputs: list[FileMeta]) -> Version:
    edit = apply(v, task, outputs)
    out = v.apply(
        [(lv, f) for _, lv, f in edit.new_files], [(lv, n) for _, lv, n in edit.deleted_files]
    )
    out.check()
    return out


# -- options and runs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_merge_width": 1},
        {"min_merge_width": 5, "max_merge_width": 4},
        {"size_ratio": -1},
        {"max_size_amplification_percent": -1},
        {"run_trigger": 0},
        {"target_file_size": 0},
    ],
)
def test_options_reject_bad_values(kwargs):
    with pytest.raises(InvalidArgumentError):
        TieredOptions(**kwargs)


def test_runs_are_each_l0_table_newest_first_then_l6_whole():
    v = tree([1, 2, 3], [4, 5])
    runs = sorted_runs(v)
    assert [sum(f.size for f in r) // KiB for r in runs] == [1, 2, 3, 9]
    assert runs[-1] == v.levels[6]
    assert sorted_runs(tree([])) == []


@pytest.mark.parametrize(("l0", "l6"), [([1, 1, 1], []), ([1, 1], [1]), ([], [1, 2, 3])])
def test_fewer_runs_than_the_trigger_pick_nothing(l0, l6):
    assert pick_tiered(tree(l0, l6), OPTS) is None


def test_one_run_picks_nothing_even_with_trigger_one():
    opts = TieredOptions(run_trigger=1)
    assert pick_tiered(tree([5]), opts) is None
    assert pick_tiered(tree([], [5, 5]), opts) is None


# -- the three rules ------------------------------------------------------------------------------

# (l0 sizes, l6 sizes, options) -> (reason, run positions, output level)
CASES = [
    # space: 40 KiB newer vs 15 KiB oldest is 267% > 200%: everything into L6
    ([10, 10, 10, 10], [15], {}, ("tiered-space", [0, 1, 2, 3, 4], 6)),
    # exactly 200%: not over; the ratio window then reaches L6
    ([10, 10, 10, 10], [20], {}, ("tiered-ratio", [0, 1, 2, 3, 4], 6)),
    # space with no L6: the oldest L0 table is the oldest run
    ([5, 5, 5, 5], [], {}, ("tiered-space", [0, 1, 2, 3], 6)),
    # like sizes merge; the big oldest run stops the window, which stays in L0
    ([1, 1, 1, 100], [], {}, ("tiered-ratio", [0, 1, 2], 0)),
    ([1, 1, 1, 3], [100], {}, ("tiered-ratio", [0, 1, 2, 3], 0)),
    # the window holds the oldest L0 table and L6 is empty: it goes to L6
    ([5, 5, 5, 10], [], {}, ("tiered-ratio", [0, 1, 2, 3], 6)),
    # the window holds the L6 run
    ([10, 10, 10], [20], {}, ("tiered-ratio", [0, 1, 2, 3], 6)),
    # the first start run with a wide enough window wins, not the newest
    ([1, 9, 9, 100], [], {}, ("tiered-ratio", [1, 2], 0)),
    # size_ratio widens what counts as alike
    ([10, 11, 30, 100, 300], [], {}, ("tiered-count", [0, 1], 0)),
    ([10, 11, 30, 100], [], {"size_ratio": 10}, ("tiered-ratio", [0, 1], 0)),
    # min_merge_width: a pair is not enough
    ([1, 1, 50, 50, 50, 1000], [], {"min_merge_width": 3}, ("tiered-ratio", [2, 3, 4], 0)),
    # max_merge_width caps a window
    ([1, 1, 1, 1, 1, 1], [100], {"max_merge_width": 3}, ("tiered-ratio", [0, 1, 2], 0)),
    # no alike runs: count merges the newest runs - trigger + 1
    ([1, 3, 9, 27], [100], {}, ("tiered-count", [0, 1], 0)),
    ([1, 3, 9, 27, 81, 243], [1000], {}, ("tiered-count", [0, 1, 2, 3], 0)),
    ([1, 3, 9, 27, 81, 243], [1000], {"max_merge_width": 3}, ("tiered-count", [0, 1, 2], 0)),
    ([1, 3, 9, 27], [100], {"min_merge_width": 3}, ("tiered-count", [0, 1, 2], 0)),
    # count reaching the oldest L0 table with no L6
    ([1, 3, 9, 27], [], {"run_trigger": 2}, ("tiered-count", [0, 1, 2], 0)),
    ([1, 3, 9, 27], [], {"run_trigger": 1}, ("tiered-count", [0, 1, 2, 3], 6)),
    # 13 KiB newer vs 27 KiB oldest is 48%: over a 40% bound
    ([1, 3, 9, 27], [], {"max_size_amplification_percent": 40}, ("tiered-space", [0, 1, 2, 3], 6)),
]  # fmt: skip


@pytest.mark.parametrize(("l0", "l6", "kw", "want"), CASES)
def test_rules_pick_the_expected_window(l0, l6, kw, want):
    opts = TieredOptions(target_file_size=64 * KiB, **kw)
    v = tree(l0, l6)
    task = pick_tiered(v, opts)
    assert task is not None
    reason, runs, out = want
    assert (task.reason, positions(v, task), task.output_level) == (reason, runs, out)
    assert task.level == 0 and not task.is_move and not task.is_drop
    assert list(task.inputs) == [f for f in v.levels[0] if f in task.inputs], "L0 order kept"
    assert task.score == len(sorted_runs(v)) / opts.run_trigger
    if out == 6:
        assert task.lower == v.levels[6] and task.bottommost
        assert task.target_file_size == opts.target_file_size
    else:
        assert task.lower == () and not task.bottommost
        assert task.target_file_size == L0_UNCUT


def test_window_outputs_keep_l0_newest_first_after_apply():
    v = tree([1, 1, 1, 3, 50], [100])
    task = pick_tiered(v, OPTS)
    assert task is not None and task.output_level == 0 and positions(v, task) == [0, 1, 2, 3]
    out = merged(task, 10_000)
    after = applied(v, task, [out])  # check() asserts L0 is newest first
    assert after.levels[0] == (out, v.levels[0][4])
    assert after.levels[6] == v.levels[6]


def test_a_middle_window_output_sits_between_its_neighbours():
    v = tree([1, 1000, 1, 1, 1, 5000])  # a big run takes the smaller ones after it
    task = pick_tiered(v, OPTS)
    assert task is not None and positions(v, task) == [1, 2, 3, 4] and task.output_level == 0
    out = merged(task, 10_001)
    after = applied(v, task, [out])
    assert after.levels[0] == (v.levels[0][0], out, v.levels[0][5])


def test_apply_rejects_an_l0_output_cut_in_two_or_outside_the_inputs_sequences():
    v = tree([1, 1, 1, 100])
    task = pick_tiered(v, OPTS)
    assert task is not None and task.output_level == 0
    out = merged(task, 20_000)
    a = FileMeta(20_001, 1, k(0), k(10), out.smallest_seq, out.largest_seq, 1, 0)
    b = FileMeta(20_002, 1, k(11), k(999), out.smallest_seq, out.largest_seq, 1, 0)
    with pytest.raises(ValueError, match="one table"):
        apply(v, task, [a, b])
    late = FileMeta(20_003, 1, k(0), k(999), out.smallest_seq, out.largest_seq + 1, 1, 0)
    with pytest.raises(ValueError, match="sequences"):
        apply(v, task, [late])
    assert apply(v, task, []).new_files == []  # everything was dropped: allowed


# -- busy tables -----------------------------------------------------------------------------------


def test_busy_table_splits_a_ratio_window():
    v = tree([1, 1, 1, 1, 1, 100])
    busy = {v.levels[0][2].number}
    task = pick_tiered(v, OPTS, busy=busy)
    assert task is not None and positions(v, task) == [0, 1]
    assert all(f.number not in busy for _, f in task.all_files())


def test_busy_start_run_is_skipped():
    v = tree([1, 1, 1, 1, 100])
    task = pick_tiered(v, OPTS, busy={v.levels[0][0].number})
    assert task is not None and positions(v, task) == [1, 2, 3]


def test_busy_run_blocks_the_space_rule():
    v = tree([10, 10, 10, 10], [15])  # would be tiered-space
    task = pick_tiered(v, OPTS, busy={v.levels[0][3].number})
    assert task is not None and task.reason == "tiered-ratio" and positions(v, task) == [0, 1, 2]
    assert task.output_level == 0, "the oldest L0 table is busy, so the window stays in L0"


def test_busy_l6_blocks_every_window_reaching_it():
    v = tree([10, 10, 10], [20])  # would merge all four runs into L6
    task = pick_tiered(v, OPTS, busy={v.levels[6][0].number})
    assert task is not None and positions(v, task) == [0, 1, 2] and task.output_level == 0


def test_count_window_slides_past_busy_runs():
    v = tree([1, 3, 9, 27], [100])
    task = pick_tiered(v, OPTS, busy={v.levels[0][0].number})
    assert task is not None and task.reason == "tiered-count" and positions(v, task) == [1, 2]


def test_everything_busy_picks_nothing():
    v = tree([1, 3, 9, 27], [100])
    assert pick_tiered(v, OPTS, busy=v.numbers()) is None


def test_concurrent_windows_are_disjoint_and_both_apply():
    v = tree([1, 1, 50, 50, 5000])
    first = pick_tiered(v, OPTS)
    assert first is not None and positions(v, first) == [0, 1]
    busy = {f.number for _, f in first.all_files()}
    second = pick_tiered(v, OPTS, busy=busy)
    assert second is not None and positions(v, second) == [2, 3]
    v = applied(v, second, [merged(second, 30_000)])
    v = applied(v, first, [merged(first, 30_001)])
    assert [f.number for f in v.levels[0]][:2] == [30_001, 30_000]


# -- L1..L5 ----------------------------------------------------------------------------------------


def mid(lo: int, hi: int, kib: int = 10) -> FileMeta:
    return FileMeta(next(_numbers), kib * KiB, k(lo), k(hi), 50, 60, 1, 0)


def test_a_middle_level_drains_into_l6_first_deepest_first():
    v = tree([1, 1, 1, 1, 1], [10, 10, 10], L2=[mid(0, 50)], L4=[mid(120, 150), mid(160, 180)])
    task = pick_tiered(v, OPTS)
    assert task is not None and task.reason == "tiered-drain"
    assert (task.level, task.output_level, task.bottommost) == (4, 6, True)
    assert task.inputs == v.levels[4] and task.lower == (v.levels[6][1],)
    assert not task.is_move and task.target_file_size == OPTS.target_file_size
    v = applied(v, task, [FileMeta(40_000, 1, k(100), k(199), 1, 60, 1, 0)])
    task = pick_tiered(v, OPTS)
    assert task is not None and task.level == 2 and task.lower == (v.levels[6][0],)


def test_a_middle_level_with_nothing_below_moves():
    v = tree([], [10], L3=[mid(500, 600)])
    task = pick_tiered(v, OPTS)
    assert task is not None and task.is_move and task.lower == ()
    v = applied(v, task, [])
    assert v.levels[3] == () and len(v.levels[6]) == 2
    assert pick_tiered(v, OPTS) is None


def test_a_busy_middle_level_picks_nothing():
    v = tree([1, 1, 1, 1, 1], [], L5=[mid(0, 9)])
    assert pick_tiered(v, OPTS, busy={v.levels[5][0].number}) is None


# -- manual full compaction ------------------------------------------------------------------------


def test_full_compaction_takes_every_run_into_l6():
    v = tree([1, 2], [10, 10])
    task = pick_tiered_full(v, OPTS, cf=3)
    assert task is not None and task.reason == "manual" and task.cf == 3
    assert task.inputs == v.levels[0] and task.lower == v.levels[6] and task.bottommost
    assert task.output_level == 6
    v = applied(v, task, [FileMeta(50_000, 1, k(0), k(999), 1, 10**9, 1, 0)])
    assert pick_tiered_full(v, OPTS) is None


def test_full_compaction_of_a_single_l0_table_rewrites_it_into_l6():
    task = pick_tiered_full(tree([5]), OPTS)
    assert task is not None and task.output_level == 6 and not task.is_move


def test_full_compaction_drains_middle_levels_then_waits_for_busy_tables():
    # The class the picker raises (picker.RangeBusyError): a doctest run of picker.py under
    # --import-mode=importlib re-executes that module, so a direct import could be a twin.
    busy_error = picker_tiered.RangeBusyError
    v = tree([1], [10], L1=[mid(0, 5)])
    task = pick_tiered_full(v, OPTS)
    assert task is not None and task.level == 1 and task.reason == "manual"
    with pytest.raises(busy_error):
        pick_tiered_full(v, OPTS, busy={v.levels[1][0].number})
    v = tree([1], [10])
    for busy in (v.levels[0][0], v.levels[6][0]):
        with pytest.raises(busy_error):
            pick_tiered_full(v, OPTS, busy={busy.number})
    assert pick_tiered_full(tree([]), OPTS) is None


# -- convergence with exact data -------------------------------------------------------------------


class Store:
    """Tables as {key: seq}; flushes, then pick + apply until the picker returns None."""

    def __init__(self, opts: TieredOptions) -> None:
        self.opts = opts
        self.v = Version()
        self.data: dict[int, dict[int, int]] = {}
        self.latest: dict[int, int] = {}
        self.seq = 0
        self.number = 1_000_000
        self.reasons: list[str] = []
        # runs left once settled, plus one
        self.bound = max(opts.run_trigger, opts.min_merge_width - 1) + 1

    def _table(self, kv: dict[int, int]) -> FileMeta:
        self.number += 1
        self.data[self.number] = kv
        ks, seqs = sorted(kv), kv.values()
        return FileMeta(self.number, len(kv) * KiB, k(ks[0]), k(ks[-1]), min(seqs), max(seqs),
                        len(kv), 0)  # fmt: skip

    def flush(self, keys: list[int]) -> None:
        kv = {}
        for key in keys:
            self.seq += 1
            kv[key] = self.latest[key] = self.seq
        self.v = self.v.apply([(0, self._table(kv))], [])

    def merge(self, task: CompactionTask) -> list[FileMeta]:
        kv: dict[int, int] = {}
        for f in sorted((f for _, f in task.all_files()), key=lambda f: f.largest_seq):
            kv.update(self.data[f.number])  # oldest first: the newest version wins
        if task.output_level == 0:
            return [self._table(kv)]
        ks = sorted(kv)
        per = max(1, task.target_file_size // KiB)
        return [self._table({x: kv[x] for x in ks[i : i + per]}) for i in range(0, len(ks), per)]

    def settle(self) -> None:
        limit = len(sorted_runs(self.v)) + NUM_LEVELS
        for _ in range(limit):
            task = pick_tiered(self.v, self.opts)
            if task is None:
                assert len(sorted_runs(self.v)) < self.bound
                return
            self.reasons.append(task.reason)
            before = len(sorted_runs(self.v))
            self.v = applied(self.v, task, self.merge(task))
            assert len(sorted_runs(self.v)) < before
            for _, f in task.all_files():
                del self.data[f.number]
        raise AssertionError("the tiered picker did not settle")

    def check_gets(self) -> None:
        for key, seq in self.latest.items():
            found = next(
                (d[key] for f in self.v.levels[0] if key in (d := self.data[f.number])), None
            )
            if found is None and (f := self.v.file_for(6, k(key))) is not None:
                found = self.data[f.number].get(key)
            assert found == seq, f"key {key}: got seq {found}, want {seq}"


@pytest.mark.parametrize("trigger", [2, 4, 8])
@pytest.mark.parametrize("flush_sizes", [(90, 110), (5, 300)])
def test_repeated_pick_and_apply_converges_and_keeps_every_newest_version(trigger, flush_sizes):
    rng = random.Random(trigger)
    store = Store(TieredOptions(target_file_size=64 * KiB, run_trigger=trigger))
    for _ in range(150):
        store.flush([rng.randrange(5000) for _ in range(rng.randint(*flush_sizes))])
        store.settle()
    store.check_gets()
    if flush_sizes == (90, 110):  # like-sized flushes: the ratio rule does the merging
        assert "tiered-ratio" in store.reasons


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 200), min_size=1, max_size=40),
    trigger=st.integers(1, 6),
    ratio=st.integers(0, 50),
    width=st.tuples(st.integers(2, 4), st.integers(0, 4)),
    amp=st.integers(0, 400),
)
def test_any_flush_pattern_settles_under_the_trigger(sizes, trigger, ratio, width, amp):
    opts = TieredOptions(
        size_ratio=ratio, min_merge_width=width[0], max_merge_width=width[0] + width[1],
        max_size_amplification_percent=amp, run_trigger=trigger, target_file_size=32 * KiB,
    )  # fmt: skip
    store = Store(opts)
    key = count()
    for n in sizes:
        store.flush([next(key) % 997 for _ in range(n)])
        store.settle()
        assert len(sorted_runs(store.v)) < store.bound
    store.check_gets()
