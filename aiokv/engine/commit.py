"""Group commit: many writers, one WAL record and at most one fsync per group.

Three ways in, by durability:

- `put_inline` / `write_inline` (default durability, nothing queued): the caller's own coroutine
  encodes the record, hands it to the OS with one small write, applies it to the memtable and
  returns without suspending.  With nothing to wait for, a queue would only add a task switch.
- `write_buffered` (buffered=True, nothing queued): the ops are applied and acknowledged at
  once; their bytes wait in memory for at most `buffered_flush_ms` (or the next write that does
  reach the WAL, which carries them first) before they are handed to the OS.
- `commit` (sync=True, or anything arriving while a group is in flight): the writer queues a
  Pending and awaits it.  One committer task takes every queued batch (up to
  `group_commit_size` bytes), assigns sequence numbers, writes one record, fsyncs once in the
  thread pool if any writer of the group asked for sync, applies the group, publishes its
  sequence numbers and wakes every writer.  A group that holds a sync writer is synced.

Invariants:
1. Records reach the WAL in sequence order, and `last_seq` (the published sequence number that
   snapshots read at) only moves past a group once the whole group is applied.
2. A failed write or sync poisons: `error` is set, the failed group gets StorageIOError, every
   queued and later writer gets BackgroundError, and the bytes of the failed group are cut from
   the segment (best effort) so that nothing unacknowledged reappears.  Nothing is retried.
3. A writer cancelled while its Pending is still queued is dropped whole; once its group is
   taken, it is committed whole.  Either way nothing is half-applied.
"""

from __future__ import annotations

import asyncio
import errno
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

from aiokv.engine.batch_format import OP_HEADER, Op, ValueKind, encode_payload
from aiokv.engine.fs import FileSystem
from aiokv.engine.pool import run_in_pool
from aiokv.engine.wal import WalWriter
from aiokv.engine.wal_format import RecordType, encode_put_record
from aiokv.errors import BackgroundError, StorageIOError

_T = TypeVar("_T")
_BATCH = int(RecordType.BATCH)
_PUT = int(ValueKind.PUT)
_MERGE = int(ValueKind.MERGE)
_pack_op = OP_HEADER.pack
INLINE_WRITE_MAX = 1 << 20  # larger records are written from the thread pool, off the loop


class CommitTarget(Protocol):
    """What the committer applies groups to (the engine)."""

    def apply_ops(self, ops: list[Op], base_seq: int) -> None: ...

    def poison(self, exc: BaseException) -> None: ...

    def memtable_full(self, last_seq: int) -> None:
        """The hot memtable reached its limit; `last_seq` is the newest sequence it holds."""

    def apply_merge(self, cf: int, key: bytes, operand: bytes, seq: int) -> None:
        """Applies one MERGE (merge_inline's apply_ops)."""

    def stall_level(self) -> int:
        """0: write freely; 1: slow down (a short delay per group); 2: wait for room."""

    async def wait_for_room(self, level: int) -> None:
        """Waits as `stall_level` asks (a short sleep, or until a flush or compaction)."""


Prepare = Callable[[], tuple[list[Op], list[bytes]] | None]


class Pending:
    __slots__ = ("encoded", "future", "nbytes", "ops", "prepare", "sync")

    def __init__(
        self,
        ops: list[Op],
        encoded: list[bytes],
        nbytes: int,
        sync: bool,
        future: Any,
        prepare: Prepare | None = None,
    ) -> None:
        self.ops = ops
        self.encoded = encoded
        self.nbytes = nbytes
        self.sync = sync
        self.future: asyncio.Future[Any] = future
        # Read-modify-write (expire): computes the ops when the group is formed, after every
        # earlier write is applied; such a Pending always forms a group alone.
        self.prepare = prepare


class GroupCommitter:
    """Serializes every write of a database into the WAL and the memtables."""

    def __init__(
        self,
        target: CommitTarget,
        fs: FileSystem,
        dirpath: str,
        wal: WalWriter | None,
        pool: ThreadPoolExecutor,
        *,
        hot_put: Callable[[bytes, bytes, int], bool],
        last_seq: int,
        segment_size: int,
        group_size: int,
        buffered_flush_s: float,
    ) -> None:
        self._target = target
        self._fs = fs
        self._dirpath = dirpath
        self.wal = wal
        self._pool = pool
        self.last_seq = last_seq
        self._segment_size = segment_size
        self._group_size = group_size
        self._buffered_flush_s = buffered_flush_s
        self._queue: deque[Pending] = deque()
        self._queued_bytes = 0
        self._task: asyncio.Task[None] | None = None
        self._buf: list[bytes] = []  # encoded ops acknowledged but not yet in the WAL
        self._buf_base = 0
        self._buf_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self.error: BaseException | None = None
        # The default family's memtable `put`, bound once for the put fast path; the engine
        # resets it whenever it switches that family's memtable.
        self.hot_put = hot_put
        # True when a write may take the inline path: no group in flight, room in the segment.
        self.inline_ok = True
        self._rotate_wanted = False  # a memtable switch asked for a fresh segment
        self._rotating: asyncio.Event | None = None  # set while a segment is being sealed

    # -- inline paths (no suspension) ---------------------------------------------------------

    def put_inline(self, key: bytes, value: bytes) -> None:
        """Commits one default-durability PUT to the default family.  Needs `inline_ok`."""
        seq = self.last_seq + 1
        wal = self.wal
        if wal is not None:
            if self._buf:
                self._buf.append(_pack_op(_PUT, 0, len(key), len(value)) + key + value)
                self._write_buffer_inline()
            else:
                record = encode_put_record(wal.synced_to, seq, 0, key, value)
                start = wal.size
                try:
                    wal.append_encoded(record)
                except OSError as e:
                    self._poison(e, wal, start)
                    raise StorageIOError(f"WAL write to {wal.path} failed: {e}", e) from e
                if wal.size >= self._segment_size:
                    self.inline_ok = False
        full = self.hot_put(key, value, seq)
        self.last_seq = seq
        if full:
            self._target.memtable_full(seq)

    def merge_inline(self, cf: int, key: bytes, operand: bytes) -> None:
        """Commits one default-durability MERGE: as put_inline, for db.merge's fast path."""
        seq = self.last_seq + 1
        wal = self.wal
        if wal is not None:
            if self._buf:
                self._buf.append(_pack_op(_MERGE, cf, len(key), len(operand)) + key + operand)
                self._write_buffer_inline()
            else:
                record = encode_put_record(wal.synced_to, seq, cf, key, operand, _MERGE)
                start = wal.size
                try:
                    wal.append_encoded(record)
                except OSError as e:
                    self._poison(e, wal, start)
                    raise StorageIOError(f"WAL write to {wal.path} failed: {e}", e) from e
                if wal.size >= self._segment_size:
                    self.inline_ok = False
        self._target.apply_merge(cf, key, operand, seq)
        self.last_seq = seq

    def write_inline(self, ops: list[Op], encoded: list[bytes]) -> None:
        """Commits a default-durability batch.  Needs `inline_ok`."""
        base = self.last_seq + 1
        if self.wal is not None:
            if not self._buf:
                self._buf_base = base
            self._buf.extend(encoded)
            self._write_buffer_inline()
        self._target.apply_ops(ops, base)
        self.last_seq = base + len(ops) - 1

    def write_buffered(self, ops: list[Op], encoded: list[bytes], nbytes: int) -> None:
        """Applies and acknowledges a buffered batch at once.  Needs `inline_ok`."""
        base = self.last_seq + 1
        if self.wal is not None:
            if not self._buf:
                self._buf_base = base
            self._buf.extend(encoded)
            self._buf_bytes += nbytes
        self._target.apply_ops(ops, base)
        self.last_seq = base + len(ops) - 1
        if self.wal is None:
            return
        if self._buf_bytes >= self._group_size:
            self._write_buffer_inline()
        elif self._timer is None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self._buffered_flush_s, self._flush_buffer_soon)

    def _flush_buffer_soon(self) -> None:
        self._timer = None
        if not self._buf or self.error is not None:
            return
        if self.inline_ok:
            try:
                self._write_buffer_inline()
            except StorageIOError:
                pass  # poisoned: every later call reports it
        elif self._task is None and not self._queue:
            # Inline writes are off for a rotation or a stall, and no group will come to
            # carry the buffer: rotate if asked, then write it.
            self._task = asyncio.get_running_loop().create_task(self._drain_buffer())

    async def _drain_buffer(self) -> None:
        try:
            wal = self.wal
            if wal is not None and self._rotate_wanted:
                await self._rotate(wal)
            if self._buf and self.error is None and self.wal is not None:
                try:
                    self._write_buffer_inline()
                except StorageIOError:
                    pass  # poisoned: every later call reports it
        finally:
            self._task = None
            if self._queue and self.error is None:
                self._task = asyncio.get_running_loop().create_task(self._run())
            else:
                self.refresh_inline()

    def _write_buffer_inline(self) -> None:
        wal = self.wal
        assert wal is not None
        ops = self._buf
        payload = encode_payload(self._buf_base, len(ops), ops)
        self._buf = []
        self._buf_bytes = 0
        self._append_inline(wal, payload)

    def _append_inline(self, wal: WalWriter, payload: bytes) -> None:
        start = wal.size
        try:
            wal.append(_BATCH, payload)
        except OSError as e:
            self._poison(e, wal, start)
            raise StorageIOError(f"WAL write to {wal.path} failed: {e}", e) from e
        if wal.size >= self._segment_size:
            self.inline_ok = False  # the next write takes the queue, which rotates first

    # -- the queue ------------------------------------------------------------------------------

    async def commit_prepared(self, prepare: Prepare, sync: bool) -> bool:
        """Queues a read-modify-write: `prepare()` runs when its turn comes, after every
        write queued before it is applied and before any queued after it, and returns the
        ops to commit (None: nothing to write).  Returns whether anything was written."""
        if self.error is not None:
            raise BackgroundError(self.error)
        loop = asyncio.get_running_loop()
        p = Pending([], [], 0, sync, loop.create_future(), prepare)
        self._queue.append(p)
        self.inline_ok = False
        if self._task is None:
            self._task = loop.create_task(self._run())
        try:
            return bool(await p.future)
        except asyncio.CancelledError:
            if p in self._queue:
                self._queue.remove(p)
            raise

    async def commit(self, ops: list[Op], encoded: list[bytes], nbytes: int, sync: bool) -> None:
        """Queues a batch and returns once it is committed with the durability asked for."""
        if self.error is not None:
            raise BackgroundError(self.error)
        loop = asyncio.get_running_loop()
        p = Pending(ops, encoded, nbytes, sync, loop.create_future())
        self._queue.append(p)
        self._queued_bytes += nbytes
        self.inline_ok = False
        if self._task is None:
            self._task = loop.create_task(self._run())
        try:
            await p.future
        except asyncio.CancelledError:
            if p in self._queue:
                self._queue.remove(p)  # invariant 3: not taken yet, so dropped whole
                self._queued_bytes -= p.nbytes
            raise

    async def _run(self) -> None:
        try:
            while self._queue and self.error is None:
                level = self._target.stall_level()
                if level:
                    await self._target.wait_for_room(level)
                    if level == 2 or not self._queue:
                        continue  # look again (a writer may have been cancelled meanwhile)
                wal = self.wal
                if wal is not None and (wal.size >= self._segment_size or self._rotate_wanted):
                    await self._rotate(wal)
                    continue
                group = self._take_group()
                await self._commit_group(group)
        finally:
            self._task = None
            self.refresh_inline()

    def refresh_inline(self) -> None:
        """Recomputes `inline_ok` (after a group, a stall change or a rotation)."""
        self.inline_ok = (
            self._task is None
            and not self._queue
            and self.error is None
            and (self.wal is None or self.wal.size < self._segment_size)
            and not self._rotate_wanted
            and self._target.stall_level() == 0
        )

    async def sync_wal(self) -> None:
        """Makes every write applied so far durable, without queueing behind writers: a
        flush calls it, and a queued group may be waiting for that very flush (a stall)."""
        while self._rotating is not None:  # the old segment is being sealed and closed
            await self._rotating.wait()
        wal = self.wal
        if wal is None or self.error is not None:
            return
        if self._buf:
            self._write_buffer_inline()
        try:
            offset = await self._in_pool(wal.sync)
        except ValueError:
            return  # closed by a rotation meanwhile, which synced it whole first
        except OSError as e:
            if self.wal is not wal or e.errno == errno.EBADF:
                return  # rotated meanwhile: sealing it synced it, then closed it
            self._poison(e, wal, wal.size)
            raise StorageIOError(f"WAL sync of {wal.path} failed: {e}", e) from e
        wal.mark_synced(offset)

    def request_rotation(self) -> int:
        """Makes the next write start a new segment; returns that segment's number.

        The engine calls it when it freezes a memtable, so that the frozen memtable's data
        ends in the segments below the returned number, which its flush may then delete.
        No write reaches the WAL between this call and the rotation: writes queue until then.
        """
        if self.wal is None:
            return 0
        self._rotate_wanted = True
        self.inline_ok = False
        if self._task is None and not self._queue:
            # Rotate now rather than at the next write, so that once the frozen memtable is
            # flushed its segments can go even if no write follows.
            self._task = asyncio.get_running_loop().create_task(self._drain_buffer())
        return self.wal.number + 1

    def _take_group(self) -> list[Pending]:
        queue = self._queue
        if queue[0].prepare is not None:
            return [queue.popleft()]
        if any(p.prepare is not None for p in queue):  # rare: stop before the first one
            group = []
            while queue and queue[0].prepare is None:
                group.append(queue.popleft())
            self._queued_bytes -= sum(p.nbytes for p in group)
            return group
        if self._queued_bytes <= self._group_size:  # the common case: take everything
            group = list(queue)
            queue.clear()
            self._queued_bytes = 0
            return group
        group = [queue.popleft()]
        total = group[0].nbytes
        while queue and total + queue[0].nbytes <= self._group_size:
            p = queue.popleft()
            total += p.nbytes
            group.append(p)
        self._queued_bytes -= total
        return group

    async def _commit_group(self, group: list[Pending]) -> None:
        prepare = group[0].prepare
        if prepare is not None:
            p = group[0]
            try:
                made = prepare()
            except BaseException as e:
                p.future.set_exception(e)
                return
            if made is None:
                if not p.sync:
                    p.future.set_result(False)
                    return
            else:
                p.ops, p.encoded = made
                p.nbytes = sum(map(len, p.encoded))
        base = self.last_seq + 1
        # One apply for the whole group: its sequence numbers are contiguous.
        ops = group[0].ops if len(group) == 1 else [op for p in group for op in p.ops]
        wal = self.wal
        if wal is not None:
            first = self._buf_base if self._buf else base
            parts = self._buf
            for p in group:
                parts.extend(p.encoded)
            self._buf = []
            self._buf_bytes = 0
            start = wal.size
            try:
                if parts:  # none for an empty sync batch: it only syncs
                    payload = encode_payload(first, len(parts), parts)
                    if len(payload) > INLINE_WRITE_MAX:
                        await self._in_pool(wal.append, _BATCH, payload)
                    else:
                        wal.append(_BATCH, payload)
                if any(p.sync for p in group):
                    wal.mark_synced(await self._in_pool(wal.sync))
            except OSError as e:
                self._poison(e, wal, start, group)
                return
        self._target.apply_ops(ops, base)
        self.last_seq = base + len(ops) - 1
        for p in group:
            fut = p.future
            if not fut.done():
                fut.set_result(bool(p.ops) if p.prepare is not None else None)

    async def _rotate(self, old: WalWriter) -> None:
        """Seals the full segment (sync) and starts the next one (invariant 2 of wal.py)."""
        self._rotate_wanted = False
        done = self._rotating = asyncio.Event()
        try:
            # One pool job, not two: while the loop is busy, each hand-off back from a pool
            # thread can wait long for the GIL (docs/architecture.md, "Known problems").
            self.wal = await self._in_pool(self._seal_and_create, old)
        except OSError as e:
            self._poison(e, old, old.size)
        finally:
            self._rotating = None
            done.set()

    def _seal_and_create(self, old: WalWriter) -> WalWriter:
        old.sync()
        old.close()
        return WalWriter.create(self._fs, self._dirpath, old.number + 1)

    async def _in_pool(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await run_in_pool(self._pool, fn, *args)

    # -- failure and shutdown -------------------------------------------------------------------

    def _poison(
        self, exc: OSError, wal: WalWriter, start: int, group: list[Pending] | None = None
    ) -> None:
        self.error = exc
        self.inline_ok = False
        try:
            wal.truncate(start)  # invariant 2: the failed group must not reappear on reopen
        except OSError:
            pass
        for p in group or ():
            if not p.future.done():
                p.future.set_exception(StorageIOError(f"WAL write or sync failed: {exc}", exc))
        while self._queue:
            p = self._queue.popleft()
            if not p.future.done():
                p.future.set_exception(BackgroundError(exc))
        self._queued_bytes = 0
        self._target.poison(exc)

    def fail_queued(self, exc: BaseException) -> None:
        """A background failure poisoned the database: queued writers get BackgroundError.

        A group already taken is committed (or failed) by its own run; nothing else will run.
        """
        if self.error is None:
            self.error = exc
        self.inline_ok = False
        while self._queue:
            p = self._queue.popleft()
            if not p.future.done():
                p.future.set_exception(BackgroundError(exc))
        self._queued_bytes = 0

    async def close(self, *, sync: bool) -> None:
        """Drains the queue, writes buffered ops, syncs (if asked) and closes the segment."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._task is not None:
            await asyncio.shield(self._task)
        wal = self.wal
        if wal is None:
            return
        try:
            if self.error is None:
                if self._buf:
                    self._write_buffer_inline()
                if sync:
                    try:
                        wal.mark_synced(await self._in_pool(wal.sync))
                    except OSError as e:
                        self._poison(e, wal, wal.size)
                        raise StorageIOError(
                            f"WAL sync of {wal.path} at close failed: {e}", e
                        ) from e
        finally:
            wal.close()
