"""Snapshots (repeatable reads at one sequence number) and the scan iterator."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiokv.errors import ClosedError

if TYPE_CHECKING:
    from aiokv.db import DB, ColumnFamily
    from aiokv.engine.engine import Engine

SCAN_CHUNK = 256  # keys resolved per refill: amortizes the call, bounds the time between yields
FIRST_CHUNK = 64  # refills grow from here: a seek that takes a few items resolves few keys


class Snapshot:
    """A consistent view of the database as of its creation.

    Reads through it (`await snap.get(k)`, `snap.scan()`, or `snapshot=snap` on the DB's
    methods) see every write acknowledged before it was taken and none after.  Release it
    (`release()`, or use it as a context manager) so that the memtable can drop old versions.
    """

    __slots__ = ("__weakref__", "_db", "_engine", "seq")

    def __init__(self, db: DB, engine: Engine) -> None:
        self._db = db
        self._engine: Engine | None = engine
        self.seq = engine.acquire_snapshot()

    @property
    def released(self) -> bool:
        return self._engine is None

    def release(self) -> None:
        """Releases the snapshot; idempotent."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.release_snapshot(self.seq)

    def _check(self) -> None:
        if self._engine is None:
            raise ClosedError("snapshot was released")

    async def get(self, key: Any, *, cf: ColumnFamily | None = None) -> bytes | None:
        return await self._db.get(key, cf=cf, snapshot=self)

    async def get_many(self, keys: Any, *, cf: ColumnFamily | None = None) -> list[bytes | None]:
        return await self._db.get_many(keys, cf=cf, snapshot=self)

    def scan(
        self,
        start: Any = None,
        end: Any = None,
        *,
        prefix: Any = None,
        reverse: bool = False,
        cf: ColumnFamily | None = None,
    ) -> ScanIterator:
        return self._db.scan(start, end, prefix=prefix, reverse=reverse, cf=cf, snapshot=self)

    def __enter__(self) -> Snapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> Snapshot:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        if self._engine is not None:
            self.release()


class ScanIterator:
    """Yields (key, value) in key order (or reverse) from a snapshot; made by `db.scan()`.

    A scan reads at the snapshot it is given, or else at one it takes at creation; it releases
    its hold when it ends, when `aclose()` is called, or when the iterator is collected.  It
    yields to the event loop after every chunk of SCAN_CHUNK keys, so a long scan does not
    starve other tasks.
    """

    __slots__ = (
        "_cf",
        "_chunk",
        "_db",
        "_done",
        "_engine",
        "_hi",
        "_i",
        "_items",
        "_lo",
        "_lo_inclusive",
        "_reverse",
        "_seq",
    )

    def __init__(
        self,
        db: DB,
        engine: Engine,
        cf: int,
        lo: bytes | None,
        hi: bytes | None,
        reverse: bool,
        snapshot: Snapshot | None,
    ) -> None:
        self._db = db
        self._engine = engine
        self._cf = cf
        self._lo = lo
        self._lo_inclusive = True
        self._hi = hi
        self._reverse = reverse
        self._items: list[tuple[bytes, bytes]] = []
        self._i = 0
        self._chunk = FIRST_CHUNK
        self._done = False
        # The scan holds its sequence number itself, so that releasing the snapshot it was
        # given while it runs cannot pull old versions from under it.
        self._seq = engine.acquire_snapshot(None if snapshot is None else snapshot.seq)

    def __aiter__(self) -> ScanIterator:
        return self

    async def __anext__(self) -> tuple[bytes, bytes]:
        i = self._i
        if i < len(self._items):
            self._i = i + 1
            return self._items[i]
        return await self._refill()

    async def _refill(self) -> tuple[bytes, bytes]:
        while not self._done:
            self._db._check_open()
            limit = self._chunk
            self._chunk = min(limit * 2, SCAN_CHUNK)  # 64, 128, 256, 256, ...
            items, last = self._engine.scan_chunk(
                self._cf, self._lo, self._lo_inclusive, self._hi, self._reverse, self._seq, limit
            )
            if last is None:
                break
            if self._reverse:
                self._hi = last
            else:
                self._lo, self._lo_inclusive = last, False
            if items:
                self._items = items
                self._i = 1
                if limit == SCAN_CHUNK:  # yield to other tasks between full chunks
                    await asyncio.sleep(0)
                return items[0]
        self._finish()
        raise StopAsyncIteration

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._items = []
            self._engine.release_snapshot(self._seq)

    async def aclose(self) -> None:
        """Ends the scan early and releases its snapshot; idempotent."""
        self._finish()

    async def __aenter__(self) -> ScanIterator:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._finish()

    def __del__(self) -> None:
        self._finish()
