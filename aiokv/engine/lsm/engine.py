"""The LSM engine: per-family memtables over one WAL, with the group committer.

Issue 2 scope: every write lives in the memtables, and the WAL holds all of it; SSTables, the
manifest and flush arrive with issue 3 and slot in below the memtables on the read path.

Open sequence (blocking, in the thread pool): make the directory, take LOCK, read or write
IDENTITY, replay every WAL segment in order into fresh memtables, cut a torn tail off the last
segment (or remove a segment whose creation was cut short) and sync that, then create the next
segment.  Replay is idempotent: running it twice over the same files gives the same state.

Concurrency contract: reads run inline on the loop and never await; every write goes through
`committer`, which calls `apply_ops` (or the memtable's `put`) with no await between applying a
group and publishing its sequence numbers, so a reader never sees part of a group.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from operator import itemgetter

from aiokv.engine.batch_format import BatchDecodeError, Op, decode_payload
from aiokv.engine.commit import GroupCommitter
from aiokv.engine.fs import FileLock, FileSystem, OsFileSystem, join
from aiokv.engine.identity import ensure_identity
from aiokv.engine.memtable import PUT, PUT_EXPIRING, Entry, Memtable
from aiokv.engine.wal import WalWriter, list_segments, read_segment, segment_name
from aiokv.engine.wal_format import RecordType
from aiokv.errors import (
    CorruptionError,
    InvalidArgumentError,
    LockedError,
    StorageIOError,
)
from aiokv.options import Options

DEFAULT_CF = 0
_ONLY_DEFAULT = {DEFAULT_CF}
_cf_of = itemgetter(1)  # Op.cf
_kind_of = itemgetter(0)  # memtable Entry fields
_value_of = itemgetter(1)
_seq_of = itemgetter(2)
_ONLY_PUT = {PUT}


class LsmEngine:
    """See the module docstring."""

    def __init__(self, path: str | None, options: Options, pool: ThreadPoolExecutor) -> None:
        self.path = path
        self.options = options
        self.fs: FileSystem = options.fs or OsFileSystem()
        self._pool = pool
        self._clock = options.clock
        self.mems: dict[int, Memtable] = {DEFAULT_CF: Memtable()}
        self.hot_table: dict[bytes, Entry] = self.mems[DEFAULT_CF].table
        self._snapshots: dict[int, int] = {}  # seq -> how many holders
        self._lock: FileLock | None = None
        self.on_poison: Callable[[BaseException], None] | None = None
        self.error: BaseException | None = None
        self.committer: GroupCommitter = self._make_committer(None, 0)

    def _make_committer(self, wal: WalWriter | None, last_seq: int) -> GroupCommitter:
        o = self.options
        # Issue 3's memtable switch must reset committer.hot_put and hot_table (Engine.hot_table).
        committer = GroupCommitter(
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
        return committer

    # -- open and recovery ----------------------------------------------------------------------

    @classmethod
    async def open(cls, path: str | None, options: Options) -> LsmEngine:
        pool = ThreadPoolExecutor(max_workers=options.io_threads, thread_name_prefix="aiokv-io")
        engine = cls(path, options, pool)
        if path is None:
            return engine
        try:
            loop = asyncio.get_running_loop()
            wal, last_seq = await loop.run_in_executor(pool, engine._open_files, path)
        except BaseException:
            engine._release_lock()
            pool.shutdown(wait=False)
            raise
        engine.committer = engine._make_committer(wal, last_seq)
        return engine

    def _open_files(self, path: str) -> tuple[WalWriter, int]:
        fs = self.fs
        try:
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
                raise LockedError(
                    f"{path} is in use: another open database holds its LOCK"
                ) from None
            ensure_identity(fs, path, "lsm", error_if_exists=self.options.error_if_exists)
            last_seq, next_number = self._replay(path)
            return WalWriter.create(fs, path, next_number), last_seq
        except OSError as e:
            if isinstance(e, StorageIOError):
                raise
            if e.errno in (errno.ENOTDIR, errno.EEXIST):
                raise InvalidArgumentError(f"{path} cannot be a database directory: {e}") from e
            raise StorageIOError(f"opening {path} failed: {e}", e) from e

    def _replay(self, path: str) -> tuple[int, int]:
        """Replays every segment; returns (last sequence number, next segment number)."""
        numbers = list_segments(self.fs, path)
        last_seq = 0
        for i, number in enumerate(numbers):
            replay = read_segment(self.fs, path, number)
            for rec in replay.records:
                if rec.type != RecordType.BATCH:
                    continue
                try:
                    base, ops = decode_payload(rec.payload)
                except BatchDecodeError as e:
                    raise CorruptionError(replay.path, rec.offset, e.detail) from None
                if base + len(ops) - 1 <= last_seq:
                    continue  # already applied: replay is idempotent
                if base != last_seq + 1:
                    raise CorruptionError(
                        replay.path, rec.offset, f"sequence {base} follows {last_seq}"
                    )
                self.apply_ops(ops, base)
                last_seq = base + len(ops) - 1
            if replay.torn_at is not None and i != len(numbers) - 1:
                raise CorruptionError(
                    replay.path, replay.torn_at, "damage in a sealed (not the last) segment"
                )
        if numbers:
            # What was replayed from the last segment may have reached the OS but never the
            # disk (a kill -9).  It is made durable, its torn tail cut, before a new segment
            # follows it: wal.py invariant 2, every segment but the last is whole.
            self._seal_last(path, numbers[-1], replay.torn_at)
        return last_seq, (numbers[-1] + 1 if numbers else 1)

    def _seal_last(self, path: str, number: int, torn_at: int | None) -> None:
        fs = self.fs
        seg = join(path, segment_name(number))
        if torn_at == 0:  # its creation was cut short: it never held a record
            fs.remove(seg)
            fs.sync_dir(path)
            return
        f = fs.open_append(seg)
        try:
            if torn_at is not None:
                f.truncate(torn_at)
            f.sync()
        finally:
            f.close()

    # -- writes (called by the committer) -------------------------------------------------------

    def apply_ops(self, ops: list[Op], base_seq: int) -> None:
        mems = self.mems
        if set(map(_cf_of, ops)) == _ONLY_DEFAULT:  # C-level check of the common case
            mems[DEFAULT_CF].apply(ops, base_seq)
            return
        seq = base_seq
        for cf, run in groupby(ops, key=lambda op: op.cf):
            part = list(run)
            mems[cf].apply(part, seq)
            seq += len(part)

    def poison(self, exc: BaseException) -> None:
        self.error = exc
        if self.on_poison is not None:
            self.on_poison(exc)

    # -- reads ----------------------------------------------------------------------------------

    def _visible(self, e: Entry | None, now_ms: int) -> bytes | None:
        if e is None:
            return None  # issue 3: fall through to the immutable memtables and SSTs
        kind = e[0]
        if kind == PUT:
            return e[1]
        if kind == PUT_EXPIRING and e[3] > now_ms:
            return e[1]
        return None

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def get(self, cf: int, key: bytes, seq: int | None) -> bytes | None:
        mem = self.mems[cf]
        e = mem.table.get(key) if seq is None else mem.entry_at(key, seq)
        return self._visible(e, self._now_ms())

    def get_many(self, cf: int, keys: list[bytes], seq: int | None) -> list[bytes | None]:
        mem = self.mems[cf]
        now = self._now_ms()
        visible = self._visible
        if seq is None:
            return [visible(e, now) for e in map(mem.table.get, keys)]
        entry_at = mem.entry_at
        return [visible(entry_at(k, seq), now) for k in keys]

    def scan_chunk(
        self,
        cf: int,
        lo: bytes | None,
        lo_inclusive: bool,
        hi: bytes | None,
        reverse: bool,
        seq: int,
        limit: int,
    ) -> tuple[list[tuple[bytes, bytes]], bytes | None]:
        """Up to `limit` keys of the walk; returns (items, last key looked at or None at end)."""
        mem = self.mems[cf]
        keys = mem.keys_between(lo, lo_inclusive, hi, limit, reverse)
        if not keys:
            return [], None
        entries = list(map(mem.table.__getitem__, keys))  # every indexed key is in the table
        if max(map(_seq_of, entries)) <= seq and set(map(_kind_of, entries)) == _ONLY_PUT:
            # The common chunk: plain PUTs older than the snapshot, resolved at C speed.
            return list(zip(keys, map(_value_of, entries), strict=False)), keys[-1]
        now = self._now_ms()
        entry_at = mem.entry_at
        visible = self._visible
        out = [(k, v) for k in keys if (v := visible(entry_at(k, seq), now)) is not None]
        return out, keys[-1]

    # -- snapshots ------------------------------------------------------------------------------

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

    # -- families (issue 4 adds creation) -------------------------------------------------------

    def has_family(self, cf: int) -> bool:
        return cf in self.mems

    def check(self) -> None:
        for mem in self.mems.values():
            mem.check()

    # -- shutdown -------------------------------------------------------------------------------

    async def close(self) -> None:
        try:
            await self.committer.close(sync=self.error is None)
        finally:
            self._release_lock()
            self._pool.shutdown(wait=True)

    def abandon(self) -> None:
        """Lets go of files and threads without syncing (an unclosed DB being collected)."""
        wal = self.committer.wal
        if wal is not None:
            wal.close()
        self._release_lock()
        self._pool.shutdown(wait=False)

    def _release_lock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None
