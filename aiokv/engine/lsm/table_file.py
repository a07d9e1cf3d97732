"""Writing one table file: created and synced in the thread pool, appended inline.

The bytes come from a pure SstWriter driven on the event loop in slices.  They are handed to
the OS inline, WRITE_CHUNK at a time (a copy into the page cache, about 0.1 ms), not in the
pool: measured with uvloop, a pool job waits up to seconds for the GIL while the loop is busy
serving gets, and a flush made of one job per megabyte crawled (bench/RESULTS.md).  Creation
and the sync, which can block for long, stay in the pool: two hand-offs per table.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokv.engine.fs import FileSystem, WritableFile, join
from aiokv.engine.lsm.table_cache import table_name

WRITE_CHUNK = 256 << 10  # bytes gathered before one write: one system call, ~0.1 ms

InPool = Callable[..., Awaitable[Any]]


class TableFile:
    """An SST file being written.  Use `await TableFile.create(...)`, `add`, `finish`."""

    def __init__(
        self, file: WritableFile, path: str, in_pool: InPool, fs: FileSystem, dirpath: str
    ) -> None:
        self._file = file
        self.path = path
        self._fs = fs
        self._dirpath = dirpath
        self._in_pool = in_pool
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.size = 0

    @classmethod
    async def create(cls, fs: FileSystem, dirpath: str, number: int, in_pool: InPool) -> TableFile:
        path = join(dirpath, table_name(number))
        file = await in_pool(fs.create, path)
        return cls(file, path, in_pool, fs, dirpath)

    async def add(self, data: bytes) -> None:
        if not data:
            return
        self._pending.append(data)
        self._pending_bytes += len(data)
        self.size += len(data)
        if self._pending_bytes >= WRITE_CHUNK:
            await self._write()

    async def _write(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending = []
            self._pending_bytes = 0
            self._file.append(data)

    async def finish(self) -> None:
        """Writes what is left, then syncs the file and its directory entry (one pool job)."""
        try:
            await self._write()
            await self._in_pool(self._sync_all)
        finally:
            self._file.close()

    def _sync_all(self) -> None:
        self._file.sync()
        self._fs.sync_dir(self._dirpath)  # versions.py invariant 1: before the manifest names it

    def abandon(self) -> None:
        self._file.close()
