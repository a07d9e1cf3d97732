"""The compaction runner: executes a CompactionTask chosen by the pure picker (picker.py).

It walks its input tables as sources (each L0 table alone, a level's tables as one), merges
a slice of about MERGE_SLICE entries per source at a time in bulk, writes the survivors to
output tables cut near the target size, and yields to the event loop after every slice.

What a merge keeps (DESIGN.md, "MVCC"):
1. With no live snapshot older than an input entry, only the newest version of each key
   survives (dict newest-wins over sources oldest first: the fast path).  Otherwise each
   snapshot stripe keeps its own newest version (the slow path, per entry): nothing folds
   across a live snapshot.
2. An entry covered by a range tombstone of the inputs (higher sequence number, same stripe)
   is dropped.  An expired entry becomes a DELETE (every reader hides it already).
3. A DELETE is dropped only where nothing below can resurrect: the task is bottommost and the
   DELETE is the oldest version kept.  A range tombstone is dropped only when no table outside
   the inputs holds older data in its range and every live snapshot sees it.
4. Outputs are cut between keys (all versions of a key stay in one table); range tombstones
   are clipped to each output's share, so outputs of one level never overlap.
5. Merge operands (a slice holding a MERGE takes the per-key path) are folded by the family's
   operator (engine/merge_fold.py) inside each snapshot stripe, never across one: onto the
   stripe's base (the first non-MERGE, a DELETE where a range tombstone of the stripe covers
   the key, or nothing when the task is bottommost and no older stripe keeps anything), else
   into partial merges.  Without an operator, or when the operator raises on a key, the key's
   operands are kept as they are (down to their base): a read reports the failure.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import groupby, repeat
from operator import itemgetter, neg

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.lsm.flush import drive
from aiokv.engine.lsm.jobs import JobContext, file_meta, new_writer
from aiokv.engine.lsm.picker import CompactionTask
from aiokv.engine.lsm.runs import Run, gather
from aiokv.engine.lsm.sst_writer import SstWriter
from aiokv.engine.lsm.table_file import TableFile
from aiokv.engine.lsm.version import FileMeta, Version
from aiokv.engine.merge_fold import fold
from aiokv.merge import MergeOperator

MERGE_SLICE = 512  # entries per source per slice: about a millisecond of merging

DELETE = int(ValueKind.DELETE)
PUT_EXPIRING = int(ValueKind.PUT_EXPIRING)
MERGE = int(ValueKind.MERGE)

RangeDel = tuple[bytes, bytes, int]
Entry5 = tuple[int, int, int, bytes]  # kind, seq, expiry, value
Sorted5 = tuple[bytes, int, int, int, bytes]  # key, -seq, kind, expiry, value: sorts by key, newest

_first = itemgetter(0)
_second = itemgetter(1)
_kind5 = itemgetter(2)
_MERGE_BYTE = bytes([MERGE])


@dataclass
class _Source:
    files: Sequence[FileMeta]
    largests: list[bytes]
    lo: bytes | None = None
    lo_inclusive: bool = True
    done: bool = False


@dataclass
class _Output:
    """The output table being written and the key where it starts (for tombstone clips)."""

    number: int
    file: TableFile
    writer: SstWriter
    lower: bytes | None
    first_key: bytes | None = None
    last_key: bytes | None = None
    parts: list[RangeDel] = field(default_factory=list)


class CompactionRun:
    """One task's execution.  `await run()` returns the synced output tables."""

    def __init__(
        self,
        ctx: JobContext,
        task: CompactionTask,
        version: Version,
        snapshots: list[int],
        new_number: object,
        *,
        merge_operator: MergeOperator | None = None,
    ) -> None:
        self.ctx = ctx
        self.merge_operator = merge_operator
        self.task = task
        self.version = version
        self.snaps = sorted(snapshots)
        self._new_number = new_number
        self.outputs: list[FileMeta] = []
        self._out: _Output | None = None
        self._files: list[str] = []
        inputs = {f.number for f in task.inputs} | {f.number for f in task.lower}
        self._inputs = inputs
        self.rdels: list[RangeDel] = []
        self.keep_rdels: list[RangeDel] = []
        self.max_seq = max((f.largest_seq for _, f in task.all_files()), default=0)
        self.now = ctx.now_ms()
        self._merges = False  # some input table holds a MERGE (its properties say so)
        # Checked between slices; a worker process points it at its stop event.
        self.should_stop: Callable[[], bool] = _never

    # -- setup ----------------------------------------------------------------------------------

    def _sources(self) -> list[_Source]:
        """Sources oldest first: the output level's tables, then the inputs."""
        t = self.task
        out = []
        if t.lower:
            out.append(_Source(t.lower, [f.largest for f in t.lower]))
        if t.level == 0:
            out += [_Source([f], [f.largest]) for f in sorted(t.inputs, key=_largest_seq)]
        else:
            out.append(_Source(t.inputs, [f.largest for f in t.inputs]))
        return out

    def _load_range_dels(self) -> None:
        tables = self.ctx.tables
        for _, f in self.task.all_files():
            t = tables.get(f.number).table
            if f.range_dels:
                self.rdels.extend(t.range_dels)
            self._merges = self._merges or t.properties.merges > 0
        oldest_snap = self.snaps[0] if self.snaps else None
        for rd in self.rdels:
            start, end, seq = rd
            if (oldest_snap is None or seq <= oldest_snap) and not self._older_data_outside(
                start, end, seq
            ):
                continue  # invariant 3: nothing left for it to hide
            self.keep_rdels.append(rd)

    def _older_data_outside(self, start: bytes, end: bytes, seq: int) -> bool:
        for level in range(len(self.version.levels)):
            for f in self.version.overlapping(level, start, end):
                if f.number not in self._inputs and f.smallest_seq < seq and f.smallest < end:
                    return True
        return False

    # -- the run ----------------------------------------------------------------------------------

    async def run(self) -> list[FileMeta]:
        try:
            self._load_range_dels()
            sources = self._sources()
            while True:
                if self.should_stop():
                    raise asyncio.CancelledError("the database is closing")
                runs = [(s, self._gather(s)) for s in sources if not s.done]
                live = [(s, r) for s, r in runs if r.keys]
                if not live:
                    break
                bound = min((r.keys[-1] for _, r in live if r.truncated), default=None)
                keys, ents = self._merge([r for _, r in live], bound)
                for s, r in runs:
                    if not r.truncated and (bound is None or not r.keys or r.keys[-1] <= bound):
                        s.done = True
                    else:
                        s.lo, s.lo_inclusive = bound, False
                if keys:
                    await self._write(keys, ents)
                await asyncio.sleep(0)
            if self._out is not None or self.keep_rdels:
                await self._finish_output(last=True)
        except BaseException:
            await self._discard()
            raise
        return self.outputs

    def _gather(self, s: _Source) -> Run:
        return gather(
            self.ctx.tables,
            s.files,
            s.largests,
            s.lo,
            s.lo_inclusive,
            None,
            False,
            MERGE_SLICE,
            fill_cache=False,
        )

    def _merge(self, runs: list[Run], bound: bytes | None) -> tuple[list[bytes], list[Entry5]]:
        snaps = self.snaps
        if self._merges and any(MERGE in r.kinds for r in runs):  # a C-level scan per run
            return self._merge_per_key(runs, bound)
        if not snaps or snaps[0] >= self.max_seq:
            keys, ents = _newest_wins(runs, bound)
            return self._filter_fast(keys, ents)
        return self._merge_per_key(runs, bound)

    def _filter_fast(
        self, keys: list[bytes], ents: list[Entry5]
    ) -> tuple[list[bytes], list[Entry5]]:
        rdels = self.rdels
        bottom = self.task.bottommost
        now = self.now
        if not rdels and not bottom and all(e[0] != PUT_EXPIRING for e in ents):
            return keys, ents
        out_k: list[bytes] = []
        out_e: list[Entry5] = []
        for k, e in zip(keys, ents, strict=True):
            kind, seq, exp, _v = e
            if kind == PUT_EXPIRING and exp <= now:
                e = (DELETE, seq, 0, b"")
                kind = DELETE
            if rdels and _covered(rdels, k, seq):
                continue
            if kind == DELETE and bottom:
                continue
            out_k.append(k)
            out_e.append(e)
        return out_k, out_e

    def _merge_per_key(
        self, runs: list[Run], bound: bytes | None
    ) -> tuple[list[bytes], list[Entry5]]:
        """The slow path: each key's versions resolved stripe by stripe (invariants 1, 2, 5)."""
        allents: list[Sorted5] = []
        for r in runs:
            allents += zip(r.keys, map(neg, r.seqs), r.kinds, r.expiries, r.values, strict=True)
        allents.sort()  # by key, then newest first: (key, -seq) is unique, C-level compares
        if bound is not None:
            del allents[bisect_right(allents, bound, key=_first) :]
        out_k: list[bytes] = []
        out_e: list[Entry5] = []
        resolve = self._resolve
        simple = not self.rdels
        bottom = self.task.bottommost
        now = self.now
        for key, group in groupby(allents, _first):
            versions = list(group)
            if simple and len(versions) == 1 and versions[0][2] != MERGE:
                # The common key: one version, nothing to fold or cover (inline, no calls).
                _k, nseq, kind, exp, v = versions[0]
                if kind == PUT_EXPIRING and exp <= now:
                    kind, exp, v = DELETE, 0, b""
                if kind != DELETE or not bottom:
                    out_k.append(key)
                    out_e.append((kind, -nseq, exp, v))
                continue
            kept = resolve(key, versions)
            if kept:
                out_k += repeat(key, len(kept))
                out_e += kept
        return out_k, out_e

    def _resolve(self, key: bytes, versions: list[Sorted5]) -> list[Entry5]:
        """What a key keeps of its versions (newest first); a raising operator folds none."""
        op = self.merge_operator
        if op is None:
            return self._resolve_with(None, key, versions)
        try:
            return self._resolve_with(op, key, versions)
        except Exception:  # the operator's own failure: the read path reports it to the user
            self.ctx.stats.merge_failures += 1
            return self._resolve_with(None, key, versions)

    def _resolve_with(
        self, op: MergeOperator | None, key: bytes, versions: list[Sorted5]
    ) -> list[Entry5]:
        snaps = self.snaps
        bottom = self.task.bottommost
        newest = bisect_left(snaps, -versions[0][1])
        if not snaps or newest == bisect_left(snaps, -versions[-1][1]):
            out = self._stripe(op, key, newest, versions, bottom)
        else:  # oldest stripe first: its result decides whether a newer one is complete
            stripes = [
                (st, list(g)) for st, g in groupby(versions, lambda e: bisect_left(snaps, -e[1]))
            ]
            out = []
            for st, ents in reversed(stripes):
                out[:0] = self._stripe(op, key, st, ents, bottom and not out)
                while bottom and out and out[-1][0] == DELETE:
                    out.pop()
        if bottom:  # invariant 3: a DELETE with nothing kept below it goes
            while out and out[-1][0] == DELETE:
                out.pop()
        return out

    def _stripe(
        self, op: MergeOperator | None, key: bytes, st: int, ents: list[Sorted5], complete: bool
    ) -> list[Entry5]:
        """One stripe's survivors: its newest version, or its operands (folded with `op`)."""
        # A range tombstone of this stripe hides every older version of the key (invariant 2).
        tomb = _tombstone_in_stripe(self.rdels, key, self.snaps, st) if self.rdels else 0
        if tomb:
            ents = ents[: bisect_right(ents, -tomb, key=_second)]  # keep seq >= tomb
            if not ents:
                return []
        now = self.now
        _k, nseq, kind, exp, v = ents[0]
        if kind != MERGE:
            if kind == PUT_EXPIRING and exp <= now:
                return [(DELETE, -nseq, 0, b"")]
            return [(kind, -nseq, exp, v)]
        kinds = bytes(map(_kind5, ents))
        count = len(kinds) - len(kinds.lstrip(_MERGE_BYTE))  # the leading operands
        if op is None:
            chain = [(kind, -nseq, exp, v) for _k, nseq, kind, exp, v in ents[: count + 1]]
            if count < len(chain) and kinds[count] == PUT_EXPIRING and chain[count][2] <= now:
                chain[count] = (DELETE, chain[count][1], 0, b"")
            return chain
        fchain = [(kind, v, -nseq, exp) for _k, nseq, kind, exp, v in ents[: count + 1]]
        if count == len(fchain) and tomb and tomb < fchain[-1][2]:
            fchain.append((DELETE, b"", tomb, 0))  # the deleted base the tombstone makes
        return [(kind, seq, exp, v) for kind, v, seq, exp in fold(op, key, fchain, now, complete)]

    # -- outputs ----------------------------------------------------------------------------------

    async def _write(self, keys: list[bytes], ents: list[Entry5]) -> None:
        out = self._out
        if out is None:
            out = await self._start_output(None if not self.outputs else self._next_lower)
        kinds, seqs, exps, values = (list(c) for c in zip(*ents, strict=True))
        out.writer.add_many(keys, seqs, kinds, exps, values)
        if out.first_key is None:
            out.first_key = keys[0]
        out.last_key = keys[-1]
        await out.file.add(out.writer.take())
        if out.writer.estimated_size >= self.task.target_file_size:
            await self._finish_output(last=False)

    async def _start_output(self, lower: bytes | None) -> _Output:
        number = self._new_number()  # type: ignore[operator]
        tf = await TableFile.create(self.ctx.fs, self.ctx.path, number, self.ctx.in_pool)
        self._files.append(tf.path)
        self._out = _Output(number, tf, new_writer(self.ctx), lower)
        return self._out

    async def _finish_output(self, *, last: bool) -> None:
        out = self._out
        if out is None:
            out = await self._start_output(self._next_lower if self.outputs else None)
        upper = None if last or out.last_key is None else out.last_key + b"\x00"
        lo_clip = out.lower
        smallest = out.first_key
        largest = out.last_key
        for start, end, seq in sorted(self.keep_rdels):
            s = start if lo_clip is None or start > lo_clip else lo_clip
            e = end if upper is None or end < upper else upper
            if s < e:
                out.writer.add_range_del(s, e, seq)
                smallest = s if smallest is None or s < smallest else smallest
                if upper is None or e < upper:
                    largest = e if largest is None or e > largest else largest
        if smallest is None or largest is None:  # nothing at all to write
            out.file.abandon()
            await self.ctx.remove_quietly(out.file.path)
            self._files.remove(out.file.path)
            self._out = None
            return
        await out.file.add(await drive(out.writer.finish()))
        await out.file.finish()
        self.ctx.stats.compaction_bytes_written += out.file.size
        self.ctx.stats.bytes_written += out.file.size
        self.outputs.append(
            file_meta(out.number, out.file.size, out.writer.properties, smallest, largest)
        )
        self._next_lower = upper
        self._out = None

    _next_lower: bytes | None = None

    async def _discard(self) -> None:
        if self._out is not None:
            self._out.file.abandon()
        for path in self._files:
            await self.ctx.remove_quietly(path)


def _never() -> bool:
    return False


def _largest_seq(f: FileMeta) -> int:
    return f.largest_seq


def _newest_wins(runs: list[Run], bound: bytes | None) -> tuple[list[bytes], list[Entry5]]:
    merged: dict[bytes, Entry5] = {}
    for r in runs:  # oldest source first: newer sources overwrite
        ents = zip(r.kinds, r.seqs, r.expiries, r.values, strict=True)
        if r.plain:
            merged.update(zip(r.keys, ents, strict=True))
        else:  # versions newest first inside a run: reversed, the newest lands last and wins
            merged.update(zip(reversed(r.keys), reversed(list(ents)), strict=True))
    keys = sorted(merged)
    if bound is not None:
        keys = keys[: bisect_right(keys, bound)]
    return keys, list(map(merged.__getitem__, keys))


def _covered(rdels: list[RangeDel], key: bytes, seq: int) -> bool:
    return any(s <= key < e and seq < t for s, e, t in rdels)


def _tombstone_in_stripe(rdels: list[RangeDel], key: bytes, snaps: list[int], stripe: int) -> int:
    """The newest sequence number of a range tombstone in `stripe` covering `key` (0: none)."""
    return max(
        (t for s, e, t in rdels if s <= key < e and bisect_left(snaps, t) == stripe), default=0
    )
