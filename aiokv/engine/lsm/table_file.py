"""Writing one table file: created, appended in large pieces and synced in the thread pool.

The bytes come from a pure SstWriter driven on the event loop in slices; this class only moves
them to the file without holding the loop (DESIGN.md: large writes and syncs run in the pool).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiokv.engine.fs import FileSystem, WritableFile, join
from aiokv.engine.lsm.table_cache import table_name

WRITE_CHUNK = 1 << 20  # bytes gathered before one write in the pool: amortizes the hand-off

InPool = Callable[..., Awaitable[Any]]


class TableFile:
    """An SST file being written.  Use `await TableFile.create(...)`, `add`, `finish`."""

    def __init__(self, file: WritableFile, path: str, in_pool: InPool) -> None:
        self._file = file
        self.path = path
        self._in_pool = in_pool
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.size = 0

    @classmethod
    async def create(cls, fs: FileSystem, dirpath: str, number: int, in_pool: InPool) -> TableFile:
        path = join(dirpath, table_name(number))
        file = await in_pool(fs.create, path)
        return cls(file, path, in_pool)

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
            await self._in_pool(self._file.append, data)

    async def finish(self) -> None:
        """Writes what is left and syncs the file (its directory entry is the caller's)."""
        try:
            await self._write()
            await self._in_pool(self._file.sync)
        finally:
            self._file.close()

    def abandon(self) -> None:
        self._file.close()
