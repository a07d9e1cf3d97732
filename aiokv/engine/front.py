"""The part both engines share: memtables over one WAL and one sequence, in front of a
persistent layer (the LSM's levels of tables, or the B+Tree).

`MemtableEngine` holds, per column family, the active memtable and the frozen ones (newest
first, each with the WAL segment current when it was frozen and the newest sequence it holds);
the group committer applies writes to them (apply_ops, apply_merge).  Reads run inline on the
loop: active memtable, frozen memtables, then the persistent layer through `_table_get` and
`_table_chain`; merge operands are folded on read across all of them.  A memtable past its
family's write_buffer_size is frozen (`_switch`) and the subclass's flush task moves it below.

Subclasses provide the persistent layer: `_table_get`, `_table_chain`, `_table_range_dels`,
`_table_stall`, `_log_number` and `collect_expired`.  Invariant: for any key, versions in a
newer source (active memtable over frozen ones over the persistent layer) have higher sequence
numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from operator import itemgetter
from typing import Any, TypeVar

from aiokv.engine.batch_format import Op
from aiokv.engine.commit import GroupCommitter
from aiokv.engine.fs import FileLock, FileSystem, OsFileSystem, join
from aiokv.engine.identity import ensure_identity
from aiokv.engine.lsm.merge import NEEDS_MERGE
from aiokv.engine.lsm.stats import Stats
from aiokv.engine.memtable import DELETE, MERGE, PUT, PUT_EXPIRING, Entry, Memtable
from aiokv.engine.merge_fold import MAX_OPERANDS, fold, operand_run, resolve
from aiokv.engine.pool import run_in_pool
from aiokv.engine.wal import WalWriter, list_segments, segment_name
from aiokv.errors import (
    AiokvError,
    BackgroundError,
    InvalidArgumentError,
    LockedError,
    StorageIOError,
)
from aiokv.family_options import DEFAULT_FAMILY, FamilyOptions
from aiokv.options import Options

DEFAULT_CF = 0
_ONLY_DEFAULT = {DEFAULT_CF}
_cf_of = itemgetter(1)  # Op.cf
# A slowed writer yields to the loop once per group, so that the flush and compaction slices
# run between groups; inline writes never suspend, so without this a single writer would hold
# the loop until the stop level.  A 1 ms sleep instead measured 117K puts/s against 146K on
# 2M-key fillrandom: the loop sat idle while the flush waited for the pool.
SLOWDOWN_DELAY_S = 0.0
# WAL segments past the oldest one still needed before the memtables that pin it are flushed.
MAX_WAL_SEGMENTS_KEPT = 8
_T = TypeVar("_T")

RangeDel = tuple[bytes, bytes, int]


def open_failure(path: str, e: OSError) -> AiokvError:
    """The error an engine's open raises for an OSError of the file system."""
    if e.errno in (errno.ENOTDIR, errno.EEXIST):
        return InvalidArgumentError(f"{path} cannot be a database directory: {e}")
    return StorageIOError(f"opening {path} failed: {e}", e)


class MemtableEngine:
    """See the module docstring."""

    families: dict[int, Any]  # cf -> the subclass's family object (an engine.FamilyInfo)
    committer: GroupCommitter

    def __init__(self, path: str | None, options: Options, pool: ThreadPoolExecutor) -> None:
        self.path = path
        self.options = options
        self.fs: FileSystem = options.fs or OsFileSystem()
        self._pool = pool
        self._clock = options.clock
        self.mems: dict[int, Memtable] = {}
        # Frozen memtables, newest first, each with the WAL segment that was current when it
        # was frozen (the next memtable's first segment) and the newest sequence it holds.
        self.imms: dict[int, list[tuple[Memtable, int, int]]] = {}
        self.families = {}
        self._snapshots: dict[int, int] = {}  # seq -> how many holders
        self._lock: FileLock | None = None
        self.on_poison: Callable[[BaseException], None] | None = None
        self.on_switch: Callable[[], None] | None = None
        self.error: BaseException | None = None
        self.stats = Stats()
        self._rdels: dict[int, list[RangeDel]] = {}  # per family: every range tombstone
        self._wal_number = 0  # the segment being written (or replayed)
        self._stall = 0
        self._stall_s = 0.0  # total time writers spent stalled (stats.stall_micros)
        self._room = asyncio.Event()
        self._flush_wanted = asyncio.Event()
        self._flush_lock = asyncio.Lock()
        self._family_lock = asyncio.Lock()  # one family created or dropped at a time
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self.hot_table: dict[bytes, Entry] = {}

    def _open_dir(self, path: str, engine: str) -> None:
        """Blocking, at open: makes the directory if it is missing, takes its LOCK, and reads
        (or, new, writes) its IDENTITY, which must name `engine`."""
        fs = self.fs
        if fs.exists(path) and not fs.is_dir(path):
            raise InvalidArgumentError(f"{path} is a file, not a directory")
        if not fs.exists(path):
            if not self.options.create_if_missing:
                raise InvalidArgumentError(f"{path} does not exist (create_if_missing=False)")
            fs.mkdir(path)
            fs.sync_dir(path.rstrip("/").rpartition("/")[0] or "/")  # the new entry
        try:
            self._lock = fs.lock(join(path, "LOCK"))
        except BlockingIOError:
            raise LockedError(f"{path} is in use: another open database holds its LOCK") from None
        ensure_identity(fs, path, engine, error_if_exists=self.options.error_if_exists)

    def _install_memtable(self, cf: int, fo: FamilyOptions, first_segment: int) -> None:
        """Gives a family its memtable (the default family's, made before its options were
        read, is kept and resized) and an empty list of range tombstones."""
        limit = fo.write_buffer_size if self.path is not None else 1 << 62
        mem = self.mems.get(cf)
        if mem is None:
            mem = Memtable(limit, MAX_OPERANDS)
            mem.set_keep_history(bool(self._snapshots))
            self.mems[cf] = mem
            self.imms[cf] = []
        else:
            mem.limit = limit
        mem.first_segment = first_segment
        self._rdels[cf] = []

    # -- the persistent layer (subclasses) ------------------------------------------------------

    def _table_get(self, cf: int, key: bytes, seq: int | None) -> Entry | None:
        """The key's newest entry at or below seq in the persistent layer."""
        raise NotImplementedError

    def _table_chain(
        self, cf: int, key: bytes, seq: int | None, add: Callable[[list[Entry]], bool]
    ) -> None:
        """Feeds the key's versions in the persistent layer, newest source first, to `add`
        until it returns True (the merge chain has its base)."""
        raise NotImplementedError

    def _table_range_dels(self, cf: int) -> list[RangeDel]:
        """The range tombstones the persistent layer still holds for `cf`."""
        raise NotImplementedError

    def _table_stall(self) -> tuple[bool, bool]:
        """(stop, slow): whether the persistent layer wants writers stopped or slowed."""
        raise NotImplementedError

    @property
    def _log_number(self) -> int:
        """The oldest WAL segment the persisted state still needs."""
        raise NotImplementedError

    async def collect_expired(self) -> int:
        raise NotImplementedError

    # -- writes (called by the committer) -------------------------------------------------------

    def _make_committer(self, wal: WalWriter | None, last_seq: int) -> GroupCommitter:
        o = self.options
        return GroupCommitter(
            self,
            self.fs,
            self.path or "",
            wal,
            self._pool,
            hot_put=self.mems[DEFAULT_CF].put,
            last_seq=last_seq,
            segment_size=o.wal_segment_size,
            group_size=o.group_commit_size,
            buffered_flush_s=o.buffered_flush_ms / 1000.0,
        )

    async def _in_pool(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await run_in_pool(self._pool, fn, *args)

    def _replay_into(self, segment: int, ops: list[Op], base_seq: int) -> None:
        self._wal_number = segment  # a memtable frozen now starts after this segment
        self.apply_ops(ops, base_seq)

    def apply_ops(self, ops: list[Op], base_seq: int) -> None:
        mems = self.mems
        if set(map(_cf_of, ops)) == _ONLY_DEFAULT:  # C-level check of the common case
            mem = mems[DEFAULT_CF]
            mem.apply(ops, base_seq)
            if mem.range_dels and ops and any(op[0] == 3 for op in ops):
                self._refresh_rdels(DEFAULT_CF)
            if mem.long_chains:
                self._fold_chains(DEFAULT_CF, mem)
            if mem.approximate_bytes >= mem.limit:
                self._switch(DEFAULT_CF, base_seq + len(ops) - 1)
            return
        seq = base_seq
        touched = set()
        for cf, run in groupby(ops, key=_cf_of):
            part = list(run)
            target = mems.get(cf)
            if target is not None:  # else dropped since the batch was made: its ops go nowhere
                target.apply(part, seq)
                touched.add(cf)
            seq += len(part)
        for cf in touched:
            mem = mems[cf]
            self._refresh_rdels(cf)
            if mem.long_chains:
                self._fold_chains(cf, mem)
            if mem.approximate_bytes >= mem.limit:
                self._switch(cf, base_seq + len(ops) - 1)

    def apply_merge(self, cf: int, key: bytes, operand: bytes, seq: int) -> None:
        mem = self.mems.get(cf)
        if mem is None:
            return  # dropped since the call was checked: its ops go nowhere
        full = mem.merge(key, operand, seq)
        if mem.long_chains:
            self._fold_chains(cf, mem)
        if full:
            self._switch(cf, seq)

    def memtable_full(self, last_seq: int) -> None:
        self._switch(DEFAULT_CF, last_seq)

    def _switch(self, cf: int, last_seq: int) -> None:
        """Freezes the active memtable of `cf` (it holds sequence numbers <= last_seq)."""
        old = self.mems[cf]
        new = Memtable(old.limit, old.merge_limit)
        new.set_keep_history(bool(self._snapshots))
        next_segment = self._next_segment()
        # A group already appended to the current segment (awaiting its fsync) may still be
        # applied to the new memtable: it starts at the current segment, not the next one.
        new.first_segment = min(next_segment, self._wal_number_now())
        self.mems[cf] = new
        self.imms[cf].insert(0, (old, next_segment, last_seq))
        if cf == DEFAULT_CF:
            self.hot_table = new.table
            self.committer.hot_put = new.put
            if self.on_switch is not None:
                self.on_switch()
        self._flush_wanted.set()
        self._update_stall()

    def _next_segment(self) -> int:
        """The first WAL segment that may hold writes made after a switch now."""
        committer: GroupCommitter | None = getattr(self, "committer", None)
        if committer is None or committer.wal is None:
            return self._wal_number  # replaying: the segment being read
        return committer.request_rotation()

    def _wal_number_now(self) -> int:
        wal = self.committer.wal if hasattr(self, "committer") else None
        return wal.number if wal is not None else self._wal_number

    def poison(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.committer.fail_queued(exc)  # writers waiting in the queue must not wait forever
        self._room.set()
        if self.on_poison is not None:
            self.on_poison(exc)

    # -- write stalls -----------------------------------------------------------------------------

    def stall_level(self) -> int:
        # Closing: the flush task is gone, so no room will come; queued groups go through.
        return 0 if self._closing else self._stall

    def _update_stall(self) -> None:
        imms = max(map(len, self.imms.values()))
        stop, slow = self._table_stall()
        o = self.options
        if self.error is not None:
            level = 0
        elif imms >= o.max_write_buffer_number or stop:
            level = 2
        elif imms >= o.max_write_buffer_number - 1 or slow:
            level = 1
        else:
            level = 0
        if level < self._stall:
            self._room.set()
        self._stall = level
        if hasattr(self, "committer"):
            if level:
                self.committer.inline_ok = False
            elif self.committer.wal is not None or self.path is None:
                self.committer.refresh_inline()

    async def wait_for_room(self, level: int) -> None:
        start = time.perf_counter()
        if level == 1:
            self.stats.stalls_slowdown += 1
            await asyncio.sleep(SLOWDOWN_DELAY_S)
        else:
            self.stats.stalls_stop += 1
            while self._stall == 2 and self.error is None and not self._closing:
                self._room.clear()
                await self._room.wait()
        self._stall_s += time.perf_counter() - start
        self.stats.stall_micros = int(self._stall_s * 1e6)

    # -- reads ------------------------------------------------------------------------------------

    def _visible(self, e: Entry | None, now_ms: int) -> bytes | None:
        if e is None:
            return None
        kind = e[0]
        if kind == PUT:
            return e[1]
        if kind == PUT_EXPIRING and e[3] > now_ms:
            return e[1]
        return NEEDS_MERGE if kind == MERGE else None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def get(self, cf: int, key: bytes, seq: int | None) -> bytes | None:
        mem = self.mems[cf]
        e = mem.table.get(key) if seq is None else mem.entry_at(key, seq)
        if e is None:
            e = self._get_below(cf, key, seq)
            if e is None:
                return None
        return self._value(cf, key, e, seq)

    def _value(self, cf: int, key: bytes, e: Entry, seq: int | None) -> bytes | None:
        """What a read at `seq` sees of `key` given its newest entry `e` at or below seq."""
        if self._rdels[cf] and self._range_deleted(cf, key, e[2], seq):
            return None
        kind = e[0]
        if kind == PUT:
            return e[1]
        if kind == PUT_EXPIRING and e[3] > self._now_ms():
            return e[1]
        if kind == MERGE:
            return self._merged(cf, key, seq)
        return None

    def entry(self, cf: int, key: bytes) -> Entry | None:
        """The key's newest visible state as an entry (kind PUT or PUT_EXPIRING, merges
        folded), or None when missing, deleted or expired: for expire() and ttl()."""
        mem = self.mems[cf]
        e = mem.table.get(key)
        if e is None:
            e = self._get_below(cf, key, None)
            if e is None:
                return None
        if self._rdels[cf] and self._range_deleted(cf, key, e[2], None):
            return None
        kind = e[0]
        now = self._now_ms()
        if kind == MERGE:
            chain = self._merge_chain(cf, key, None)
            value = self._merged(cf, key, None, chain)
            if value is None:
                return None
            base = chain[-1]
            if base[0] == PUT_EXPIRING and base[3] > now:  # the value changes when it expires
                return (PUT_EXPIRING, value, e[2], base[3])
            return (PUT, value, e[2], 0)
        if kind == PUT or (kind == PUT_EXPIRING and e[3] > now):
            return e
        return None

    def _merge_chain(self, cf: int, key: bytes, seq: int | None) -> list[Entry]:
        """The key's versions at `seq`, newest first, down to the newest non-MERGE one (a
        version a range tombstone covers ends the chain as a DELETE)."""
        chain: list[Entry] = []
        covered = self._range_deleted if self._rdels[cf] else None

        def add(entries: list[Entry]) -> bool:  # True once the chain has its base
            if covered is None:  # the leading run of operands found in C, not per entry
                run = operand_run(entries)
                if run < len(entries):
                    chain.extend(entries[: run + 1])
                    return True
                chain.extend(entries)
                return False
            for e in entries:
                if covered is not None and covered(cf, key, e[2], seq):
                    chain.append((DELETE, b"", e[2], 0))
                    return True
                chain.append(e)
                if e[0] != MERGE:
                    return True
            return False

        if add(self.mems[cf].versions_at(key, seq)):
            return chain
        for imm, _, _ in self.imms[cf]:
            if add(imm.versions_at(key, seq)):
                return chain
        self._table_chain(cf, key, seq, add)
        return chain

    def _merged(
        self, cf: int, key: bytes, seq: int | None, chain: list[Entry] | None = None
    ) -> bytes | None:
        """The value of a key whose newest version is a merge operand: folded on read.  The
        operator's exception, if it raises, reaches the caller; nothing is changed."""
        op = self.families[cf].op
        if op is None:
            raise InvalidArgumentError(
                f"column family {self.families[cf].name!r} holds merge operands but has no "
                "merge operator"
            )
        if chain is None:
            chain = self._merge_chain(cf, key, seq)
        return resolve(op, key, chain, self._now_ms())

    def _fold_chains(self, cf: int, mem: Memtable) -> None:
        """Folds the operand chains past MAX_OPERANDS (RocksDB's max_successive_merges):
        a read of the key folds everything down to its base once, and its result replaces
        the chain.  Skipped while a snapshot is live (it may read an operand in between)
        or when the operator raises (the chain stays; the next read surfaces the error)."""
        keys = mem.long_chains
        mem.long_chains = set()
        op = self.families[cf].op
        if op is None or mem.keep_history:
            return
        now = self._now_ms()
        for key in keys:
            if mem.table[key][0] != MERGE:
                continue
            chain = self._merge_chain(cf, key, None)
            local = len(mem.versions_at(key, None))
            try:
                if len(chain) <= local:  # the chain ends in this memtable: fold it whole
                    folded = fold(op, key, chain, now, True)
                else:  # the rest lies below: combine this memtable's operands only
                    folded = fold(op, key, chain[:local], now, False)
            except Exception:
                self.stats.merge_failures += 1
                mem.fold_floor[key] = local + MAX_OPERANDS
                continue
            if len(folded) < local:
                mem.replace_chain(key, folded)
            else:  # nothing to combine (no partial_merge): try again MAX_OPERANDS later
                mem.fold_floor[key] = local + MAX_OPERANDS

    def get_latest(self, key: bytes) -> bytes | None:
        """get(DEFAULT_CF, key, None) for a checked key the active memtable does not hold:
        the facade's get fast path after a memtable miss."""
        for imm, _, _ in self.imms[DEFAULT_CF]:
            e = imm.table.get(key)
            if e is not None:
                break
        else:
            e = self._table_get(DEFAULT_CF, key, None)
            if e is None:
                return None
        return self._value(DEFAULT_CF, key, e, None)

    def _get_below(self, cf: int, key: bytes, seq: int | None) -> Entry | None:
        for imm, _, _ in self.imms[cf]:
            e = imm.table.get(key) if seq is None else imm.entry_at(key, seq)
            if e is not None:
                return e
        return self._table_get(cf, key, seq)

    def _range_deleted(self, cf: int, key: bytes, eseq: int, seq: int | None) -> bool:
        top = seq if seq is not None else 1 << 64
        return any(s <= key < e and eseq < t <= top for s, e, t in self._rdels[cf])

    def _refresh_rdels(self, cf: int) -> None:
        """Called after every change of a family's sources: also rebuilds its read plan."""
        if cf not in self.families:
            return  # dropped while a job ran
        out: list[RangeDel] = list(self.mems[cf].range_dels)
        for imm, _, _ in self.imms[cf]:
            out += imm.range_dels
        self._rdels[cf] = out + self._table_range_dels(cf)

    def get_many(self, cf: int, keys: list[bytes], seq: int | None) -> list[bytes | None]:
        get = self.get
        return [get(cf, k, seq) for k in keys]

    # -- snapshots --------------------------------------------------------------------------------

    def acquire_snapshot(self, seq: int | None = None) -> int:
        """Pins `seq` (default: the newest published one) so its versions stay readable."""
        if seq is None:
            seq = self.committer.last_seq
        if not self._snapshots:
            for mem in self.mems.values():
                mem.set_keep_history(True)
        self._snapshots[seq] = self._snapshots.get(seq, 0) + 1
        return seq

    def release_snapshot(self, seq: int) -> None:
        n = self._snapshots.get(seq, 0) - 1
        if n > 0:
            self._snapshots[seq] = n
            return
        self._snapshots.pop(seq, None)
        if not self._snapshots:
            for mem in self.mems.values():
                mem.set_keep_history(False)

    # -- WAL segments and flush -------------------------------------------------------------------

    def _flush_wal_holders(self) -> None:
        """Freezes the memtables that keep old WAL segments alive: a quiet family that holds
        a few unflushed writes would otherwise pin every segment written since (RocksDB
        bounds this with max_total_wal_size)."""
        oldest = self._log_number
        if self._wal_number_now() - oldest <= MAX_WAL_SEGMENTS_KEPT:
            return
        for cf, mem in self.mems.items():
            if not self.imms[cf] and (mem.table or mem.range_dels) and mem.first_segment <= oldest:
                self._switch(cf, self.committer.last_seq)

    def _log_number_after(self, flushed: Memtable | None) -> int:
        """The oldest WAL segment still needed once `flushed` is in a table: the first
        segment of the oldest memtable of any family that holds data (one WAL serves all)."""
        needed = self._wal_number_now()
        for cf, mem in self.mems.items():
            for m in (mem, *(m for m, _, _ in self.imms[cf] if m is not flushed)):
                if m.table or m.range_dels:
                    needed = min(needed, m.first_segment)
        return needed

    async def _delete_segments_below(self, log_number: int) -> None:
        # Listing and unlinking are cheap metadata calls, made inline: a pool job can wait
        # long for the GIL while the loop is busy (see table_file.py).
        path = self.path
        assert path is not None
        current = self._wal_number_now()
        for n in list_segments(self.fs, path):
            if n < log_number and n < current:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.remove(join(path, segment_name(n)))

    async def flush(self) -> None:
        """Freezes the active memtables and waits until every frozen one is in a table."""
        if self.path is None:
            return
        for cf, mem in self.mems.items():
            if mem.table or mem.range_dels:
                self._switch(cf, self.committer.last_seq)
        while any(self.imms.values()) and self.error is None:
            self._flush_wanted.set()
            await asyncio.sleep(0.001)
        self._raise_if_poisoned()

    def _raise_if_poisoned(self) -> None:
        if self.error is not None:
            raise BackgroundError(self.error)

    async def _ttl_gc_loop(self) -> None:
        interval = self.options.ttl_gc_interval
        try:
            while not self._closing:
                await asyncio.sleep(interval)
                if self.error is None and not self._closing:
                    await self.collect_expired()
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self.poison(e)

    # -- families ---------------------------------------------------------------------------------

    def has_family(self, cf: int) -> bool:
        return cf in self.families

    def family_id(self, name: str) -> int | None:
        for cf, fam in self.families.items():
            if fam.name == name:
                return cf
        return None

    def _default_given(self) -> dict[str, Any]:
        o = self.options
        given = {f: getattr(o, f) for f in o.given}
        given.update(o.column_families.get(DEFAULT_FAMILY, {}))
        return given

    async def _stop_tasks(self) -> None:
        """Closing: wakes stalled writers and ends the background tasks."""
        self._closing = True
        self._room.set()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
