"""Compaction in a worker process: the merge runs on the machine's second core.

CPython runs one thread of Python at a time, so a compaction in the event loop's process, even
in cooperative slices, takes CPU the writers and readers need (DESIGN.md: "Compaction in a
worker process, on the second core, is an option to measure against cooperative in-loop
slices"; bench/RESULTS.md has the measurement).  Only tasks on the real file system go here: the
worker maps the input tables and writes the outputs itself, with the same CompactionRun as the
in-loop path, and returns their FileMeta.  The engine then syncs the directory and records the
result in the manifest, as for an in-loop compaction: the worker never touches the manifest,
so killing it at any moment loses nothing (its partial outputs are orphans that the next open
deletes, or that the engine deletes when it kills the worker at close).

Why a plain child process and not multiprocessing: its "spawn" start re-imports the user's
`__main__`, which breaks any script without an `if __name__ == "__main__"` guard, and "fork"
in a process with threads (the DB's I/O pool) can inherit a lock held mid-operation.

Protocol over the child's stdin and stdout: frames of `length: u64le, pickle`; a request is the
argument tuple of `run_task`, a reply is ("ok", result) or ("error", exception).  The worker
serves requests one at a time until its stdin closes.

The family's merge operator travels pickled in the request (the built-ins pickle by class and
separator).  An operator that cannot make that trip (`can_run_in_worker` is False: a lambda
inside it, a class defined in the user's `__main__`, which the worker does not import) has its
family's compactions run in the loop instead.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import os
import pickle
import signal
import struct
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from aiokv.engine.fs import OsFileSystem
from aiokv.engine.lsm.compaction import CompactionRun
from aiokv.engine.lsm.filter import decode_filter
from aiokv.engine.lsm.jobs import JobContext
from aiokv.engine.lsm.picker import CompactionTask
from aiokv.engine.lsm.stats import Stats
from aiokv.engine.lsm.table_cache import BlockCache, TableCache
from aiokv.engine.lsm.version import FileMeta, Version
from aiokv.merge import MergeOperator
from aiokv.options import Options

FRAME = struct.Struct("<Q")  # the length of the pickle that follows


async def _inline(fn: Any, *args: Any) -> Any:
    return fn(*args)


def run_task(
    path: str,
    options: dict[str, Any],
    task: CompactionTask,
    version: Version,
    snapshots: list[int],
    numbers: list[int],
    now_ms: int,
    merge_operator: MergeOperator | None = None,
) -> tuple[list[FileMeta], dict[str, int]]:
    """Runs one compaction task in this process; returns its outputs and counters (the Stats
    fields the run bumped: bytes_read, bytes_written, compaction_bytes_written, merge_failures).
    """
    fs = OsFileSystem()
    stats = Stats()
    tables = TableCache(fs, path, 64, BlockCache(0), decode_filter, stats)
    ctx = JobContext(fs, path, _inline, Options(**options), tables, stats, lambda: now_ms / 1000)
    it: Iterator[int] = iter(numbers)

    def new_number() -> int:
        try:
            return next(it)
        except StopIteration:
            raise RuntimeError("compaction used more file numbers than reserved") from None

    try:
        run = CompactionRun(
            ctx, task, version, snapshots, new_number, merge_operator=merge_operator
        )
        run.should_stop = _orphaned
        outputs = asyncio.run(run.run())
    finally:
        tables.close()
    return outputs, stats.as_dict()


def can_run_in_worker(op: MergeOperator | None) -> bool:
    """True if compactions with merge operator `op` (None: none) may run in the worker.

    The operator must survive a pickle round trip as an object of the same class and name,
    and its class must not live in `__main__` (the worker's `__main__` is not the user's).

    >>> from aiokv.merge import Int64Add, StringAppend
    >>> can_run_in_worker(None), can_run_in_worker(Int64Add()), can_run_in_worker(StringAppend())
    (True, True, True)
    """
    if op is None:
        return True
    if type(op).__module__ == "__main__":
        return False
    try:
        copy = pickle.loads(pickle.dumps(op))
    except Exception:  # unpicklable members, local classes, a failing __reduce__ ...
        return False
    return type(copy) is type(op) and copy.name == op.name


def _read_frame(inp: BinaryIO) -> bytes | None:
    head = inp.read(FRAME.size)
    if len(head) < FRAME.size:
        return None
    (n,) = FRAME.unpack(head)
    return inp.read(n)


_PARENT: list[int] = []  # the database process's pid, recorded when serving starts


def _orphaned() -> bool:
    """True once the database process is gone (a kill -9): a worker must not write tables
    under file numbers its dead parent reserved, which a restarted process may reuse."""
    return bool(_PARENT) and os.getppid() != _PARENT[0]


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # the getppid check between slices still stops it


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    """The worker's loop: one request, one reply, until stdin closes."""
    _PARENT.append(os.getppid())
    _die_with_parent()
    if _orphaned():
        return
    while (request := _read_frame(inp)) is not None:
        try:
            reply: tuple[str, Any] = ("ok", run_task(*pickle.loads(request)))
        except Exception as e:
            reply = ("error", e)
        try:
            data = pickle.dumps(reply)
        except Exception as e:
            data = pickle.dumps(("error", RuntimeError(f"{type(e).__name__}: {reply[1]!r}")))
        out.write(FRAME.pack(len(data)) + data)
        out.flush()


def worker_command() -> list[str]:
    """The command that starts a worker with this process's import path."""
    code = (
        "import json, sys; sys.path[:0] = json.loads(sys.argv[1]); "
        "from aiokv.engine.lsm.compaction_worker import serve; "
        "serve(sys.stdin.buffer, sys.stdout.buffer)"
    )
    return [sys.executable, "-c", code, json.dumps(sys.path)]


class CompactionWorker:
    """The engine's handle on its worker process (started on first use)."""

    def __init__(self) -> None:
        self._proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def run(
        self, *args: Any, merge_operator: MergeOperator | None = None
    ) -> tuple[list[FileMeta], dict[str, int]]:
        """Runs `run_task(*args, merge_operator)` in the worker (check `can_run_in_worker`)."""
        async with self._lock:  # one request at a time on the pipe
            if self._proc is None:
                self._proc = await asyncio.create_subprocess_exec(
                    *worker_command(),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                )
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            data = pickle.dumps((*args, merge_operator))
            proc.stdin.write(FRAME.pack(len(data)) + data)
            await proc.stdin.drain()
            try:
                (n,) = FRAME.unpack(await proc.stdout.readexactly(FRAME.size))
                status, value = pickle.loads(await proc.stdout.readexactly(n))
            except asyncio.IncompleteReadError:
                self._proc = None
                raise RuntimeError("the compaction worker exited") from None
            if status != "ok":
                raise value
            outputs, counters = value
            return outputs, counters

    async def stop(self) -> None:
        """Kills the worker (a merge in progress is dropped; the engine deletes its files)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()

    def kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
