"""The LSM engine: memtables over one WAL, and levels of SSTables below them.

Write path: the group committer (commit.py) appends to the WAL and applies to the active
memtable.  A memtable past `write_buffer_size` is frozen (newest first in `imms`) and a fresh
one takes the writes; the flush task writes frozen memtables to L0 tables, the compaction task
merges tables down the levels (leveled, picker.py).  Both are asyncio tasks of the engine that
work in slices; their results take effect through manifest edits (versions.py).

Read path, inline on the loop, never awaiting: active memtable, frozen memtables newest first,
then L0 tables newest first and one table per deeper level (range check, filter, index, block
cache), and the first entry found at or below the read's sequence number decides.  Range
tombstones are checked by sequence number against every source at once (`_rdels`).

Open sequence (blocking, in the thread pool): make the directory, take LOCK, read or write
IDENTITY, recover the manifest (CURRENT -> MANIFEST-N), replay the WAL segments from the
manifest's log number skipping what tables already hold, cut a torn tail, delete files nothing
refers to, write a fresh manifest, then create the next WAL segment.

Concurrency contract: reads and the swaps that change what they see (memtable switch, flush
and compaction results) run on the loop with no await between a swap's parts, so a reader
sees either the state before or after it.  Invariant 1: for any key, versions in a newer
source (memtable over frozen memtables over L0 over L1 ...) have higher sequence numbers.
Invariant 2: a WAL segment is deleted only after a synced manifest edit says its data is in
tables; a table only after a synced edit removed it from every current Version.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from bisect import bisect_left
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokv.engine.front import DEFAULT_CF, MemtableEngine, RangeDel, open_failure
from aiokv.engine.fs import OsFileSystem, join
from aiokv.engine.lsm.compaction import CompactionRun
from aiokv.engine.lsm.compaction_worker import CompactionWorker, can_run_in_worker
from aiokv.engine.lsm.family import Family
from aiokv.engine.lsm.filter import decode_filter
from aiokv.engine.lsm.flush import flush_memtable
from aiokv.engine.lsm.jobs import JobContext
from aiokv.engine.lsm.picker import CompactionTask, apply
from aiokv.engine.lsm.recovery import delete_orphans, remove_unlisted_tables, replay_wal
from aiokv.engine.lsm.scan import scan_chunk
from aiokv.engine.lsm.table_cache import BlockCache, TableCache, table_name
from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta, Version
from aiokv.engine.lsm.version_edit import VersionEdit
from aiokv.engine.lsm.versions import VersionSet
from aiokv.engine.memtable import Entry
from aiokv.engine.wal import WalWriter
from aiokv.errors import (
    ColumnFamilyError,
    StorageIOError,
)
from aiokv.family_options import (
    DEFAULT_FAMILY,
    FamilyOptions,
    decode,
    encode,
    for_new_family,
    reconcile,
)
from aiokv.options import Options

_TABLE_NAME = re.compile(r"^(\d{6,})\.sst$")


class LsmEngine(MemtableEngine):
    """See the module docstring."""

    families: dict[int, Family]

    def __init__(self, path: str | None, options: Options, pool: ThreadPoolExecutor) -> None:
        super().__init__(path, options, pool)
        self.versions = VersionSet(self.fs, path or "")
        self.block_cache = BlockCache(options.block_cache_size)
        self.tables = TableCache(
            self.fs, path or "", options.max_open_files, self.block_cache, decode_filter, self.stats
        )
        self._ctx = JobContext(
            self.fs, path or "", self._in_pool, options, self.tables, self.stats, self._clock
        )
        self._plans: dict[int, Any] = {}  # see _refresh_plan
        self._compact_wanted = asyncio.Event()
        self._compaction_lock = asyncio.Lock()
        self._worker: CompactionWorker | None = None  # started on the first compaction
        self._install_family(DEFAULT_CF, DEFAULT_FAMILY, reconcile(
            DEFAULT_FAMILY, {}, self._default_given(), options.given
        ), 0)  # fmt: skip
        self.hot_table = self.mems[DEFAULT_CF].table
        self.committer = self._make_committer(None, 0)

    # -- open and recovery ----------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | None, options: Options) -> LsmEngine:
        pool = ThreadPoolExecutor(max_workers=options.io_threads, thread_name_prefix="aiokv-io")
        engine = cls(path, options, pool)
        if path is None:
            engine._load_families()
            return engine
        try:
            loop = asyncio.get_running_loop()
            wal, last_seq = await loop.run_in_executor(pool, engine._open_files, path)
        except BaseException:
            engine.tables.close()
            engine.versions.close()
            engine._release_lock()
            pool.shutdown(wait=False)
            raise
        engine.committer = engine._make_committer(wal, last_seq)
        engine._wal_number = wal.number
        for cf in engine.families:
            engine._refresh_rdels(cf)
        engine._start_background()
        return engine

    def _open_files(self, path: str) -> tuple[WalWriter, int]:
        fs = self.fs
        try:
            self._open_dir(path, "lsm")
            had_manifest = self.versions.recover()
            self._load_families()
            vs = self.versions
            flushed = {cf: vs.family_flushed.get(cf, 0) for cf in vs.families}
            last_seq, next_number = replay_wal(
                fs, path, vs.log_number, flushed, vs.flushed_seq, self._replay_into
            )
            delete_orphans(fs, path, self.versions.current.values(), had_manifest)
            self.versions.start_manifest()
            return WalWriter.create(fs, path, next_number), last_seq
        except StorageIOError:
            raise
        except OSError as e:
            raise open_failure(path, e) from e

    # -- writes (called by the committer) -------------------------------------------------------

    # -- write stalls ---------------------------------------------------------------------------

    # -- reads ----------------------------------------------------------------------------------

    def _table_get(self, cf: int, key: bytes, seq: int | None) -> Entry | None:
        l0, levels = self._plans[cf]
        tables = self.tables
        for f in l0:
            if f.smallest <= key <= f.largest:
                h = tables.get(f.number)
                e = h.table.get(key, seq, h.block)
                if e is not None:
                    return e
        for files, largests in levels:
            i = bisect_left(largests, key)
            if i < len(files):
                f = files[i]
                if f.smallest <= key:
                    h = tables.get(f.number)
                    e = h.table.get(key, seq, h.block)
                    if e is not None:
                        return e
        return None

    def _table_chain(
        self, cf: int, key: bytes, seq: int | None, add: Callable[[list[Entry]], bool]
    ) -> None:
        l0, levels = self._plans[cf]
        tables = self.tables
        for f in l0:
            if f.smallest <= key <= f.largest:
                h = tables.get(f.number)
                if add(h.table.versions(key, seq, h.block)):
                    return
        for files, largests in levels:
            i = bisect_left(largests, key)
            if i < len(files) and files[i].smallest <= key:
                h = tables.get(files[i].number)
                if add(h.table.versions(key, seq, h.block)):
                    return

    def _table_range_dels(self, cf: int) -> list[RangeDel]:
        out: list[RangeDel] = []
        for _, f in self.versions.current[cf].files():
            if f.range_dels:
                out += self.tables.get(f.number).table.range_dels
        return out

    def _refresh_rdels(self, cf: int) -> None:
        """Called after every change of a family's sources: also rebuilds its read plan."""
        if cf in self.families:  # else dropped while a job ran
            self._refresh_plan(cf)
            super()._refresh_rdels(cf)

    def _table_stall(self) -> tuple[bool, bool]:
        current = self.versions.current
        stop = slow = False  # each family against its own L0 triggers (FIFO: none)
        for cf, fam in self.families.items():
            if fam.stalls_on_l0():
                n = len(current[cf].levels[0])
                stop = stop or n >= fam.opts.l0_stop_trigger
                slow = slow or n >= fam.opts.l0_slowdown_trigger
        return stop, slow

    @property
    def _log_number(self) -> int:
        return self.versions.log_number

    def _refresh_plan(self, cf: int) -> None:
        """What point reads walk for `cf`: L0 newest first, then each non-empty level."""
        v = self.versions.current[cf]
        levels = [(v.levels[lv], v.largests[lv]) for lv in range(1, NUM_LEVELS) if v.levels[lv]]
        self._plans[cf] = (v.levels[0], levels)

    # Up to `limit` keys of a scan's walk: (items, last key looked at or None at the end).
    scan_chunk = scan_chunk

    # -- snapshots ------------------------------------------------------------------------------

    # -- background work ------------------------------------------------------------------------

    def _start_background(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._flush_loop(), name="aiokv-flush"),
            loop.create_task(self._compact_loop(), name="aiokv-compaction"),
            loop.create_task(self._ttl_gc_loop(), name="aiokv-ttl-gc"),
        ]
        if any(self.imms.values()):
            self._flush_wanted.set()
        self._compact_wanted.set()
        self._update_stall()

    async def _flush_loop(self) -> None:
        try:
            while not self._closing:
                await self._flush_wanted.wait()
                self._flush_wanted.clear()
                while self.error is None and not self._closing:
                    # The oldest frozen memtable of any family first: it pins the oldest WAL
                    # segment, and no family starves while another keeps freezing.
                    async with self._flush_lock:
                        waiting = [(imms[-1][2], cf) for cf, imms in self.imms.items() if imms]
                        if not waiting:
                            break
                        await self._flush_oldest(min(waiting)[1])
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self.poison(e)

    async def _flush_oldest(self, cf: int) -> None:
        mem, _, last_seq = self.imms[cf][-1]
        number = self.versions.new_file_number()
        fam = self.families[cf]
        meta = await flush_memtable(fam.ctx, mem, number, fam.op, not self._snapshots)
        if len(self.families) > 1 and self.committer.wal is not None:
            # With several families a flushed one must never be ahead of the WAL: a power
            # cut would keep its part of a batch (in the table) and lose the other families'
            # part (in the unsynced WAL tail).  An empty sync batch makes every write before
            # it durable first (RocksDB syncs the WAL before a flush result for this reason).
            await self.committer.sync_wal()
        edit = VersionEdit(
            log_number=self._log_number_after(mem),
            last_seq=last_seq,
            family_flushed=[(cf, last_seq)],
        )
        if meta is not None:  # synced with its directory entry by flush_memtable
            edit.new_files.append((cf, 0, meta))
        await self.versions.log_and_apply(edit, self._in_pool)
        # No await from the version swap to here: the memtable leaves the read path now.
        self.imms[cf].pop()
        self._refresh_rdels(cf)
        self.stats.flushes += 1
        self._update_stall()
        self._compact_wanted.set()
        self._flush_wal_holders()
        await self._delete_segments_below(self.versions.log_number)

    async def _compact_loop(self) -> None:
        try:
            while not self._closing:
                await self._compact_wanted.wait()
                self._compact_wanted.clear()
                idle: set[int] = set()
                while self.error is None and not self._closing:
                    # Round robin over the families: each compacts independently, one task
                    # at a time, until none has anything to do.
                    fams = [cf for cf in self.families if cf not in idle]
                    if not fams:
                        break
                    for cf in fams:
                        async with self._compaction_lock:
                            fam = self.families.get(cf)
                            task = None
                            if fam is not None and self.error is None and not self._closing:
                                v = self.versions.current[cf]
                                task = fam.pick(v, self.versions.pointers, self._now_ms())
                            if task is None:
                                idle.add(cf)
                                continue
                            await self._run_task(task)
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self.poison(e)

    async def _run_task(self, task: CompactionTask) -> set[int]:
        """Runs a task and installs its result; returns the numbers of the tables it wrote."""
        cf = task.cf
        fam = self.families[cf]
        if task.is_drop:
            edit = apply(self.versions.current[cf], task, [])
            self.stats.fifo_drops += len(task.inputs)
        elif task.is_move:
            edit = apply(self.versions.current[cf], task, list(task.inputs))
            self.stats.trivial_moves += 1
        else:
            if self._use_worker() and can_run_in_worker(fam.op):
                outputs = await self._run_in_worker(fam, task)
            else:
                run = CompactionRun(
                    fam.ctx,
                    task,
                    self.versions.current[cf],
                    list(self._snapshots),
                    self.versions.new_file_number,
                    merge_operator=fam.op,
                )
                outputs = await run.run()
            self.stats.compaction_bytes_read += sum(f.size for _, f in task.all_files())
            edit = apply(self.versions.current[cf], task, outputs)
            self.stats.compactions += 1
        obsolete = await self.versions.log_and_apply(edit, self._in_pool)
        self._refresh_rdels(cf)
        self._update_stall()
        await self._delete_tables(obsolete)
        return set() if task.is_move else {f.number for _, _, f in edit.new_files}

    def _use_worker(self) -> bool:
        return (
            self.options.compaction_process
            and self.path is not None
            and type(self.fs) is OsFileSystem
        )

    async def _run_in_worker(self, fam: Family, task: CompactionTask) -> list[FileMeta]:
        if self._worker is None:
            self._worker = CompactionWorker()
        # Outputs are cut at the target size, so they number at most this many.
        count = task.input_bytes // task.target_file_size + 16
        numbers = [self.versions.new_file_number() for _ in range(count)]
        # Record the reservation before the worker may use it: were this process killed, a
        # restarted one must not hand out a number an orphaned worker might still write.
        await self.versions.log_and_apply(VersionEdit(), self._in_pool)
        outputs, counters = await self._worker.run(
            self.path,
            fam.worker_options(),
            task,
            self.versions.current[task.cf],
            list(self._snapshots),
            numbers,
            self._now_ms(),
            merge_operator=fam.op,
        )
        s = self.stats
        s.compaction_bytes_written += counters["compaction_bytes_written"]
        s.bytes_written += counters["bytes_written"]
        s.bytes_read += counters["bytes_read"]
        s.merge_failures += counters.get("merge_failures", 0)
        return list(outputs)

    async def _delete_tables(self, numbers: set[int]) -> None:
        path = self.path
        assert path is not None
        for n in sorted(numbers):
            self.tables.evict(n)
            with contextlib.suppress(FileNotFoundError):
                self.fs.remove(join(path, table_name(n)))  # inline, as segments above

    async def compact_range(self, cf: int, lo: bytes | None, hi: bytes | None) -> None:
        """Flushes, then compacts every table of `cf` overlapping [lo, hi] down to one level
        (tiered: everything into one run; FIFO: nothing is rewritten)."""
        if self.path is None:
            return
        await self.flush()
        written: set[int] = set()
        while self.error is None:
            async with self._compaction_lock:
                fam = self.families.get(cf)
                if fam is None:
                    raise ColumnFamilyError("the column family was dropped")
                task = fam.pick_range(self.versions.current[cf], lo, hi)
                if task is None:
                    break
                written |= await self._run_task(task)
        # Tables that only moved down (or already sat at the bottom) still hold tombstones,
        # shadowed versions and expired entries: rewrite each once, as RocksDB's
        # bottommost_level_compaction=kForceOptimized does.
        while self.error is None:
            async with self._compaction_lock:
                fam = self.families.get(cf)
                if fam is None:
                    raise ColumnFamilyError("the column family was dropped")
                v = self.versions.current[cf]
                level = max((lv for lv in range(NUM_LEVELS) if v.levels[lv]), default=0)
                todo = [f for f in v.overlapping(level, lo, hi) if f.number not in written]
                if level == 0 or not todo:
                    break
                f = todo[0]
                task = CompactionTask(
                    cf, level, level, (f,), (), True, "manual", 0.0, fam.opts.target_file_size,
                )  # fmt: skip
                written |= await self._run_task(task)
                written.add(f.number)
        self._raise_if_poisoned()
        self._compact_wanted.set()

    # -- TTL garbage collection -----------------------------------------------------------------

    async def collect_expired(self) -> int:
        """Rewrites (or, FIFO, drops) every table holding entries expired by the clock now,
        so that expired data leaves the disk even when nothing is written.  Returns the
        number of tasks run."""
        if self.path is None:
            return 0
        done = 0
        now = self._now_ms()
        for cf in list(self.families):
            written: set[int] = set()
            while self.error is None and not self._closing:
                async with self._compaction_lock:
                    fam = self.families.get(cf)
                    if fam is None:
                        break
                    task = fam.pick_expired(self.versions.current[cf], now, written)
                    if task is None:
                        break
                    written |= await self._run_task(task)
                    written |= {f.number for f in task.inputs}
                    self.stats.ttl_gc_tasks += 1
                    done += 1
        self._raise_if_poisoned()
        return done

    # -- families -------------------------------------------------------------------------------

    def _install_family(self, cf: int, name: str, fo: FamilyOptions, first_segment: int) -> None:
        """Makes a family live in memory: its memtable, read plan and job context."""
        self.families[cf] = Family(cf, name, fo, self._ctx)
        self._install_memtable(cf, fo, first_segment)
        self.versions.current.setdefault(cf, Version())
        self._refresh_rdels(cf)

    def _load_families(self) -> None:
        """At open: every family the manifest lists, with its reconciled options, then the
        families `column_families` names that do not exist yet (recorded by the manifest
        that open writes next)."""
        o = self.options
        vs = self.versions
        first = vs.log_number
        for cf, (name, blob) in sorted(vs.families.items()):
            persisted = decode(blob)
            if cf == DEFAULT_CF:
                given = self._default_given()
                names = o.given | set(o.column_families.get(DEFAULT_FAMILY, {}))
                fo = reconcile(name, persisted, given, frozenset(names))
            else:
                given = dict(o.column_families.get(name, {}))
                fo = reconcile(name, persisted, given, frozenset(given))
            self._install_family(cf, name, fo, first)
            vs.families[cf] = (name, encode(fo))
        for name, new_given in o.column_families.items():
            if self.family_id(name) is None:
                fo = for_new_family(o, new_given)
                cf = vs.max_family_id + 1
                vs.max_family_id = cf
                vs.families[cf] = (name, encode(fo))
                self._install_family(cf, name, fo, first)
        self.hot_table = self.mems[DEFAULT_CF].table

    async def create_family(self, name: str, given: dict[str, Any]) -> int:
        """Creates a family (synced in the manifest before it returns); returns its id."""
        fo = for_new_family(self.options, given)
        async with self._family_lock:
            if self.family_id(name) is not None:
                raise ColumnFamilyError(f"column family {name!r} already exists")
            self._raise_if_poisoned()
            vs = self.versions
            cf = vs.max_family_id + 1
            if self.path is not None:
                edit = VersionEdit(added_families=[(cf, name, encode(fo))], max_family_id=cf)
                try:
                    await vs.log_and_apply(edit, self._in_pool)
                except OSError as e:
                    self.poison(e)
                    raise StorageIOError(f"recording column family {name!r} failed: {e}", e) from e
            else:
                vs.max_family_id = cf
                vs.families[cf] = (name, encode(fo))
            self._install_family(cf, name, fo, self._wal_number_now())
            return cf

    async def drop_family(self, cf: int) -> None:
        """Drops a family: it leaves reads and writes at once, its tables once the manifest
        says so.  Its ops still in WAL segments are skipped by any later replay."""
        async with self._family_lock, self._flush_lock, self._compaction_lock:
            fam = self.families.pop(cf)
            self._raise_if_poisoned()
            mems = (self.mems.pop(cf), *(m for m, _, _ in self.imms.pop(cf)))
            for m in mems:
                m.set_keep_history(False)
            self._rdels.pop(cf, None)
            self._plans.pop(cf, None)
            if self.path is None:
                self.versions.families.pop(cf, None)
                self.versions.current.pop(cf, None)
                return
            try:
                obsolete = await self.versions.log_and_apply(
                    VersionEdit(dropped_families=[cf]), self._in_pool
                )
            except OSError as e:
                self.poison(e)
                raise StorageIOError(f"dropping column family {fam.name!r} failed: {e}", e) from e
            self._update_stall()
            await self._delete_tables(obsolete)

    def check(self) -> None:
        for mem in self.mems.values():
            mem.check()
        for v in self.versions.current.values():
            v.check()

    def stats_dict(self, cf: int = DEFAULT_CF) -> dict[str, int]:
        """The database's counters, with the tables and bytes per level of family `cf`."""
        s = self.stats.as_dict()
        useful, useless, positive = self.tables.filter_counters()
        s["filter_useful"] += useful
        s["filter_useless"] += useless
        s["filter_positive"] += positive
        v = self.versions.current[cf]
        for level in range(NUM_LEVELS):
            s[f"l{level}_tables"] = len(v.levels[level])
            s[f"l{level}_bytes"] = v.level_size(level)
        s["memtables_frozen"] = sum(len(x) for x in self.imms.values())
        s["block_cache_bytes"] = self.block_cache.used
        s["column_families"] = len(self.families)
        return s

    # -- shutdown -------------------------------------------------------------------------------

    async def close(self) -> None:
        await self._stop_tasks()
        if self._worker is not None:
            await self._worker.stop()
        await self.versions.drain()
        try:
            await self.committer.close(sync=self.error is None)
        finally:
            self.tables.close()
            self.versions.close()
            # After this no thread of ours touches a file: a create a cancelled flush had
            # handed to the pool has run by now.
            self._pool.shutdown(wait=True)
            if self.path is not None and self.error is None:
                # Tables a cancelled flush or a killed merge left behind (the next open
                # would delete them too).  A directory listing and a few removals.
                with contextlib.suppress(OSError):
                    remove_unlisted_tables(self.fs, self.path, self.versions.current.values())
            self._release_lock()

    def abandon(self) -> None:
        """Lets go of files and threads without syncing (an unclosed DB being collected)."""
        if self._worker is not None:
            self._worker.kill()
        for t in self._tasks:
            t.cancel()
        wal = self.committer.wal
        if wal is not None:
            wal.close()
        self.tables.close()
        self.versions.close()
        self._release_lock()
        self._pool.shutdown(wait=False)
