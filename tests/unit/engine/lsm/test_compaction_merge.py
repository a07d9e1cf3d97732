"""Compaction folds merge operands per snapshot stripe, onto their base or a range tombstone."""

from __future__ import annotations

import pickle
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import pytest

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.fs import OsFileSystem, join
from aiokv.engine.lsm.compaction import MERGE_SLICE, CompactionRun
from aiokv.engine.lsm.compaction_worker import CompactionWorker, can_run_in_worker
from aiokv.engine.lsm.filter import decode_filter
from aiokv.engine.lsm.jobs import JobContext, file_meta
from aiokv.engine.lsm.picker import CompactionTask
from aiokv.engine.lsm.runs import gather
from aiokv.engine.lsm.sst_writer import SstWriter, finish_sync
from aiokv.engine.lsm.stats import Stats
from aiokv.engine.lsm.table_cache import BlockCache, TableCache, table_name
from aiokv.engine.lsm.version import FileMeta, Version
from aiokv.engine.memfs import MemFileSystem
from aiokv.engine.merge_fold import resolve
from aiokv.merge import Int64Add, StringAppend
from aiokv.options import Options

DELETE, PUT, MERGE, PUT_EXPIRING = (
    int(ValueKind.DELETE),
    int(ValueKind.PUT),
    int(ValueKind.MERGE),
    int(ValueKind.PUT_EXPIRING),
)
PATH = "/db"
NOW_MS = 1_000_000

# key, seq, kind, value, expiry_ms (0 unless PUT_EXPIRING)
Row = tuple[bytes, int, int, bytes, int]
RangeDel = tuple[bytes, bytes, int]


@dataclass
class CountingStats(Stats):
    merge_failures: int = 0  # the field the engine's Stats carries (kept here if it already does)


class AppendNoPartial:
    """An operator without partial_merge: appends operands with '+'."""

    name = "test.append_no_partial"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        return b"+".join(operands if existing is None else [existing, *operands])


class Exploding:
    """full_merge raises on the key b"bad" and works elsewhere, as a user's bug would."""

    name = "test.exploding"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        if key == b"bad":
            raise ZeroDivisionError("user code")
        return b"|".join(operands if existing is None else [existing, *operands])


async def _inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


class Store:
    """Tables on a file system and a CompactionRun over them."""

    def __init__(self, fs: Any = None, path: str = PATH) -> None:
        self.fs = fs if fs is not None else MemFileSystem()
        self.path = path
        if not self.fs.exists(path):
            self.fs.mkdir(path)
        self.stats = CountingStats()
        self.tables = TableCache(self.fs, path, 64, BlockCache(0), decode_filter, self.stats)
        opts = Options(block_size=256)
        self.ctx = JobContext(
            self.fs, path, _inline, opts, self.tables, self.stats, lambda: NOW_MS / 1000
        )
        self.number = 0

    def new_number(self) -> int:
        self.number += 1
        return self.number

    def table(
        self, rows: Iterable[Row], rdels: Sequence[tuple[bytes, bytes, int]] = ()
    ) -> FileMeta:
        rows = sorted(rows, key=lambda r: (r[0], -r[1]))
        w = SstWriter(block_size=256)
        if rows:
            k, s, kinds, v, e = (list(c) for c in zip(*rows, strict=True))
            w.add_many(k, s, kinds, e, v)
        for rd in rdels:
            w.add_range_del(*rd)
        data = w.take() + finish_sync(w)
        n = self.new_number()
        f = self.fs.create(join(self.path, table_name(n)))
        f.append(data)
        f.sync()
        f.close()
        return file_meta(n, len(data), w.properties)

    async def compact(
        self,
        l0: Sequence[FileMeta],
        l1: Sequence[FileMeta] = (),
        *,
        op: Any = None,
        bottommost: bool = True,
        snapshots: Sequence[int] = (),
        target: int = 1 << 20,
    ) -> list[FileMeta]:
        l0 = sorted(l0, key=lambda f: f.largest_seq, reverse=True)
        task = CompactionTask(0, 0, 1, tuple(l0), tuple(l1), bottommost, "manual", 0.0, target)
        run = CompactionRun(
            self.ctx, task, Version([l0, l1]), list(snapshots), self.new_number, merge_operator=op
        )
        return await run.run()

    def rows(self, metas: Sequence[FileMeta]) -> list[Row]:
        out: list[Row] = []
        for m in metas:
            r = gather(self.tables, [m], [m.largest], None, True, None, False, 1 << 30)
            out += zip(r.keys, r.seqs, r.kinds, r.values, r.expiries, strict=True)
        return out

    def raw(self, metas: Sequence[FileMeta]) -> list[bytes]:
        return [self.fs.read_file(join(self.path, table_name(m.number))) for m in metas]


def m(key: bytes, seq: int, operand: bytes) -> Row:
    return (key, seq, MERGE, operand, 0)


def put(key: bytes, seq: int, value: bytes, expiry: int = 0) -> Row:
    return (key, seq, PUT_EXPIRING if expiry else PUT, value, expiry)


def read(rows: list[Row], key: bytes, seq: int, op: Any) -> bytes | None:
    """What a reader at `seq` sees of `key` in the rows (newest first per key)."""
    chain = [(kind, v, s, e) for k, s, kind, v, e in rows if k == key and s <= seq]
    return resolve(op, key, chain, NOW_MS) if chain else None


async def test_counter_operands_across_two_l0_tables_fold_into_one_put_when_bottommost():
    st = Store()
    older = st.table([m(b"c", 1, b"1"), m(b"c", 2, b"2")])
    newer = st.table([m(b"c", 3, b"3")])
    out = await st.compact([older, newer], op=Int64Add())
    assert st.rows(out) == [(b"c", 3, PUT, b"6", 0)]


async def test_operands_over_a_base_in_the_lower_level_fold_with_it():
    st = Store()
    base = st.table([put(b"c", 1, b"10")])
    ops = st.table([m(b"c", 2, b"2"), m(b"c", 3, b"3")])
    out = await st.compact([ops], [base], op=Int64Add(), bottommost=False)
    assert st.rows(out) == [(b"c", 3, PUT, b"15", 0)]


async def test_operands_without_a_base_below_the_bottom_combine_by_partial_merge():
    st = Store()
    a = st.table([m(b"c", 1, b"1"), m(b"c", 2, b"2")])
    b = st.table([m(b"c", 3, b"-10")])
    out = await st.compact([a, b], op=Int64Add(), bottommost=False)
    assert st.rows(out) == [(b"c", 3, MERGE, b"-7", 0)]


async def test_an_operator_without_partial_merge_keeps_every_operand_below_the_bottom():
    st = Store()
    a = st.table([m(b"c", 1, b"x"), m(b"c", 2, b"y")])
    b = st.table([m(b"c", 3, b"z")])
    out = await st.compact([a, b], op=AppendNoPartial(), bottommost=False)
    assert st.rows(out) == [
        (b"c", 3, MERGE, b"z", 0),
        (b"c", 2, MERGE, b"y", 0),
        (b"c", 1, MERGE, b"x", 0),
    ]
    # ... and at the bottom they fold into one value.
    out = await st.compact([a, b], op=AppendNoPartial())
    assert st.rows(out) == [(b"c", 3, PUT, b"x+y+z", 0)]


async def test_a_live_snapshot_between_operands_keeps_the_stripes_apart():
    st = Store()
    a = st.table([m(b"c", 1, b"1"), m(b"c", 2, b"2")])
    b = st.table([m(b"c", 3, b"3"), m(b"c", 4, b"4")])
    op = Int64Add()
    out = await st.compact([a, b], op=op, snapshots=[2])
    rows = st.rows(out)
    # The old stripe folds into a PUT at its newest seq; the new one cannot fold across the
    # snapshot, so it keeps a (partial) operand on top.
    assert rows == [(b"c", 4, MERGE, b"7", 0), (b"c", 2, PUT, b"3", 0)]
    assert read(rows, b"c", 2, op) == b"3"
    assert read(rows, b"c", 4, op) == b"10"


async def test_a_range_tombstone_between_operands_cuts_the_chain():
    st = Store()
    old = st.table([m(b"c", 1, b"5"), put(b"d", 2, b"100")])
    new = st.table([m(b"c", 4, b"7"), m(b"d", 5, b"1")], rdels=[(b"a", b"z", 3)])
    out = await st.compact([old, new], op=Int64Add(), bottommost=False)
    # The operands below the tombstone are deleted: the newer ones fold onto nothing.
    assert st.rows(out) == [(b"c", 4, PUT, b"7", 0), (b"d", 5, PUT, b"1", 0)]


async def test_a_range_tombstone_in_an_older_stripe_stays_and_drops_only_its_stripe():
    st = Store()
    old = st.table([put(b"c", 1, b"5")], rdels=[(b"a", b"z", 3)])
    new = st.table([m(b"c", 4, b"7")])
    out = await st.compact([old, new], op=Int64Add(), bottommost=False, snapshots=[3])
    # The PUT under the tombstone goes (and with it the tombstone: nothing is left to hide);
    # the operand above the snapshot is not folded across it.
    assert st.rows(out) == [(b"c", 4, MERGE, b"7", 0)]


async def test_an_expired_base_counts_as_absent_and_a_live_one_stays_apart():
    st = Store()
    base = st.table([put(b"e", 1, b"100", NOW_MS - 1), put(b"l", 2, b"100", NOW_MS + 5000)])
    ops = st.table([m(b"e", 3, b"1"), m(b"l", 4, b"1")])
    out = await st.compact([ops], [base], op=Int64Add(), bottommost=False)
    # The live base may expire later, and then its operand applies to nothing: folding it
    # now would make reads depend on when the compaction ran.
    assert st.rows(out) == [
        (b"e", 3, PUT, b"1", 0),
        (b"l", 4, MERGE, b"1", 0),
        (b"l", 2, PUT_EXPIRING, b"100", NOW_MS + 5000),
    ]


async def test_a_raising_operator_leaves_the_key_unfolded_and_counts_a_failure():
    st = Store()
    a = st.table([m(b"bad", 1, b"x"), m(b"good", 2, b"x"), put(b"bad", 0 + 3, b"b")])
    b = st.table([m(b"bad", 4, b"y"), m(b"bad", 5, b"z"), m(b"good", 6, b"y")])
    out = await st.compact([a, b], op=Exploding())
    assert st.rows(out) == [
        (b"bad", 5, MERGE, b"z", 0),
        (b"bad", 4, MERGE, b"y", 0),
        (b"bad", 3, PUT, b"b", 0),  # the base stays; the operand below it was shadowed
        (b"good", 6, PUT, b"x|y", 0),
    ]
    assert st.stats.merge_failures == 1


async def test_without_an_operator_operands_are_kept_down_to_their_base():
    st = Store()
    a = st.table([put(b"c", 1, b"old"), put(b"c", 2, b"base"), m(b"c", 3, b"x")])
    b = st.table([m(b"c", 4, b"y")])
    out = await st.compact([a, b])
    assert st.rows(out) == [
        (b"c", 4, MERGE, b"y", 0),
        (b"c", 3, MERGE, b"x", 0),
        (b"c", 2, PUT, b"base", 0),
    ]


def _plain_rows(seed: int) -> tuple[list[Row], list[Row]]:
    old: list[Row] = []
    new: list[Row] = []
    seq = 1
    for i in range(900):
        k = b"p%05d" % i
        old.append(put(k, seq, b"v%d" % i, NOW_MS + 10 if i % 7 == 0 else 0))
        seq += 1
    for i in range(0, 900, 3):
        k = b"p%05d" % i
        if i % 2:
            new.append((k, seq, DELETE, b"", 0))
        else:
            new.append(put(k, seq, b"w%d-%d" % (i, seed), NOW_MS - 10 if i % 5 == 0 else 0))
        seq += 1
    return old, new


@pytest.mark.parametrize("bottommost", [True, False])
async def test_keys_without_merges_keep_todays_output_byte_for_byte(bottommost):
    outputs = []
    for op in (None, Int64Add()):
        st = Store()
        old, new = _plain_rows(1)
        out = await st.compact([st.table(old), st.table(new)], op=op, bottommost=bottommost)
        outputs.append(st.raw(out))
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("bottommost", [True, False])
async def test_plain_keys_beside_merges_resolve_as_on_the_fast_path(bottommost):
    old, new = _plain_rows(2)
    fast = Store()
    fast_rows = fast.rows(
        await fast.compact([fast.table(old), fast.table(new)], op=Int64Add(), bottommost=bottommost)
    )
    mixed = Store()
    counters = [m(b"p%05dc" % i, 5000 + i, b"1") for i in range(0, 900, 4)]
    out = await mixed.compact(
        [mixed.table(old + counters), mixed.table(new)], op=Int64Add(), bottommost=bottommost
    )
    rows = mixed.rows(out)
    assert [r for r in rows if not r[0].endswith(b"c")] == fast_rows
    kind = PUT if bottommost else MERGE
    assert [r for r in rows if r[0].endswith(b"c")] == [
        (k, s, kind, b"1", 0) for k, s, *_ in counters
    ]


async def test_counters_fold_across_many_slices_and_outputs_never_split_a_key():
    st = Store()
    keys = [b"k%05d" % i for i in range(3 * MERGE_SLICE)]
    tables = []
    seq = 1
    for t in range(3):
        rows = []
        for k in keys:
            rows.append(m(k, seq, b"%d" % (t + 1)))
            seq += 1
        tables.append(st.table(rows))
    op = Int64Add()
    out = await st.compact(tables, op=op, target=16 * 1024)
    assert len(out) > 1
    rows = st.rows(out)
    assert [(r[0], r[2], r[3]) for r in rows] == [(k, PUT, b"6") for k in keys]
    # Without an operator every operand stays, and each key's versions share one output table.
    out = await st.compact(tables, target=16 * 1024)
    assert len(out) > 1
    per_table = [{r[0] for r in st.rows([f])} for f in out]
    assert sum(map(len, per_table)) == len(keys)
    assert len(st.rows(out)) == 3 * len(keys)
    assert all(a.largest < b.smallest for a, b in pairwise(out))


async def test_snapshots_keep_plain_versions_per_stripe_without_merges():
    st = Store()
    a = st.table([put(b"c", 1, b"1"), put(b"c", 2, b"2"), put(b"d", 3, b"x")])
    b = st.table([put(b"c", 5, b"5"), put(b"c", 6, b"6")], rdels=[(b"d", b"e", 4)])
    out = await st.compact([a, b], op=None, snapshots=[2, 3])
    assert st.rows(out) == [
        (b"c", 6, PUT, b"6", 0),
        (b"c", 2, PUT, b"2", 0),
        (b"d", 3, PUT, b"x", 0),
    ]


def model_read(
    rows: list[Row], rdels: list[RangeDel], key: bytes, seq: int, op: Any
) -> bytes | None:
    """The value a reader at `seq` sees: range tombstones it sees hide everything older."""
    tomb = max((t for s, e, t in rdels if s <= key < e and t <= seq), default=0)
    chain = [(kind, v, s, e) for k, s, kind, v, e in rows if k == key and tomb <= s <= seq]
    chain.sort(key=lambda c: -c[2])
    if tomb:
        chain.append((DELETE, b"", tomb, 0))
    return resolve(op, key, chain, NOW_MS) if chain else None


@pytest.mark.parametrize("op", [Int64Add(), StringAppend(b","), AppendNoPartial()])
@pytest.mark.parametrize("bottommost", [True, False])
async def test_every_snapshot_reads_the_same_values_after_compaction(op, bottommost):
    for seed in range(25):
        rng = random.Random(seed)
        keys = [b"k%d" % i for i in range(5)]
        tables: list[tuple[list[Row], list[RangeDel]]] = [([], []) for _ in range(3)]
        seq = 0
        for t in range(3):  # table t holds seqs above table t - 1's (L0 order)
            for _ in range(rng.randrange(4, 14)):
                seq += 1
                k = rng.choice(keys)
                r = rng.random()
                if r < 0.55:
                    tables[t][0].append(m(k, seq, b"%d" % rng.randrange(-9, 10)))
                elif r < 0.7:
                    tables[t][0].append(put(k, seq, b"%d" % rng.randrange(100)))
                elif r < 0.8:
                    exp = NOW_MS + rng.choice([-5, 5])
                    tables[t][0].append(put(k, seq, b"%d" % rng.randrange(100), exp))
                elif r < 0.9:
                    tables[t][0].append((k, seq, DELETE, b"", 0))
                else:
                    a, b = sorted(rng.sample(range(6), 2))
                    tables[t][1].append((b"k%d" % a, b"k%d" % b, seq))
        snaps = sorted(rng.sample(range(1, seq + 1), rng.randrange(0, 4)))
        st = Store()
        metas = [st.table(rows, rdels) for rows, rdels in tables if rows or rdels]
        out = await st.compact(metas, op=op, bottommost=bottommost, snapshots=snaps)
        before = [r for rows, _ in tables for r in rows]
        before_rd = [rd for _, rdels in tables for rd in rdels]
        after = st.rows(out)
        after_rd = [rd for f in out for rd in st.tables.get(f.number).table.range_dels]
        for at in [*snaps, seq]:
            for k in keys:
                want = model_read(before, before_rd, k, at, op)
                got = model_read(after, after_rd, k, at, op)
                assert got == want, (seed, k, at)


def test_builtin_operators_can_run_in_the_worker_and_unpicklable_ones_cannot():
    assert can_run_in_worker(None)
    assert can_run_in_worker(Int64Add())
    assert can_run_in_worker(StringAppend(b";"))

    class Local:  # a class inside a function does not pickle
        name = "test.local"

        def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
            return b""

    assert not can_run_in_worker(Local())
    holder = AppendNoPartial()
    holder.hook = lambda: None  # type: ignore[attr-defined]
    assert not can_run_in_worker(holder)
    assert can_run_in_worker(AppendNoPartial())

    main_cls = type("Main", (AppendNoPartial,), {"__module__": "__main__"})
    assert not can_run_in_worker(main_cls())


def test_an_operator_renamed_by_its_pickle_cannot_run_in_the_worker():
    class Renames(AppendNoPartial):
        def __reduce__(self) -> Any:
            return (AppendNoPartial, ())

    Renames.__qualname__ = Renames.__name__ = "AppendNoPartial"  # pickles by the base's path
    op = Renames()
    op.name = "test.other"
    assert pickle.loads(pickle.dumps(op)).name != op.name
    assert not can_run_in_worker(op)


async def test_worker_process_folds_counters_with_int64add(tmp_path):
    st = Store(OsFileSystem(), str(tmp_path))
    older = st.table([m(b"c", 1, b"1"), m(b"c", 2, b"2"), put(b"p", 3, b"v")])
    newer = st.table([m(b"c", 4, b"3"), m(b"x", 5, b"9")])
    task = CompactionTask(0, 0, 1, (newer, older), (), True, "manual", 0.0, 1 << 20)
    worker = CompactionWorker()
    try:
        outputs, counters = await worker.run(
            str(tmp_path),
            {"block_size": 256},
            task,
            Version([[newer, older]]),
            [],
            [100, 101, 102],
            NOW_MS,
            merge_operator=Int64Add(),
        )
    finally:
        await worker.stop()
    assert [f.number for f in outputs] == [100]
    assert st.rows(outputs) == [
        (b"c", 4, PUT, b"6", 0),
        (b"p", 3, PUT, b"v", 0),
        (b"x", 5, PUT, b"9", 0),
    ]
    assert counters["compaction_bytes_written"] == outputs[0].size
    assert counters.get("merge_failures", 0) == 0
