"""WriteBatch: writes that commit together or not at all, also across a crash.

A batch is encoded as it is built (one WAL op per call), so that committing it is a join; the
whole batch lands in one WAL record, which a crash keeps whole or not at all.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

from aiokv.engine.batch_format import Op, ValueKind, encode_op
from aiokv.errors import ClosedError, InvalidArgumentError

if TYPE_CHECKING:
    from aiokv.db import DB, ColumnFamily

MAX_BATCH_BYTES = 1 << 30  # one WAL record holds a batch; its length field is a u32

_PUT = int(ValueKind.PUT)
_PUT_EXPIRING = int(ValueKind.PUT_EXPIRING)
_DELETE = int(ValueKind.DELETE)
_DELETE_RANGE = int(ValueKind.DELETE_RANGE)
_MERGE = int(ValueKind.MERGE)


class WriteBatch:
    """Collects puts, merges and deletes, of any families, then commits them atomically.

    Made by `db.batch()`; use it as `async with db.batch(sync=True) as b: b.put(...)`, which
    commits on a clean exit and discards on an exception, or call `await b.commit()`.
    A bad argument raises at once and leaves the batch as it was.
    """

    __slots__ = ("_db", "_done", "_nbytes", "buffered", "encoded", "ops", "sync")

    def __init__(self, db: DB, *, sync: bool, buffered: bool) -> None:
        self._db = db
        self.sync = sync
        self.buffered = buffered
        self.ops: list[Op] = []
        self.encoded: list[bytes] = []
        self._nbytes = 0
        self._done = False

    def __len__(self) -> int:
        return len(self.ops)

    @property
    def nbytes(self) -> int:
        """Encoded size of the batch's ops in bytes."""
        return self._nbytes

    def _add(self, kind: int, cf: int, key: bytes, value: bytes, expiry_ms: int = 0) -> None:
        if self._done:
            raise ClosedError("this batch was already committed or discarded")
        enc = encode_op(kind, cf, key, value, expiry_ms)
        if self._nbytes + len(enc) > MAX_BATCH_BYTES:
            raise InvalidArgumentError(f"a batch holds at most {MAX_BATCH_BYTES} bytes")
        self.ops.append(Op(kind, cf, key, value, expiry_ms))
        self.encoded.append(enc)
        self._nbytes += len(enc)

    def put(self, key: Any, value: Any, *, cf: ColumnFamily | None = None, ttl: Any = None) -> None:
        """Adds a put; with `ttl` (seconds) the value expires that long after the call."""
        db = self._db
        k, v, cfid = db._key(key), db._value(value), db._cf_id(cf)
        op, _ = db._put_op(cfid, k, v, ttl)
        self._add(op.kind, cfid, k, v, op.expiry_ms)

    def merge(self, key: Any, operand: Any, *, cf: ColumnFamily | None = None) -> None:
        """Adds a merge operand (see DB.merge); the operator's check_operand runs now."""
        db = self._db
        k, cfid = db._key(key), db._cf_id(cf)
        self._add(_MERGE, cfid, k, db._operand(cfid, operand))

    def delete(self, key: Any, *, cf: ColumnFamily | None = None) -> None:
        """Adds a delete of one key (deleting an absent key is not an error)."""
        db = self._db
        k, cfid = db._key(key), db._cf_id(cf)
        self._add(_DELETE, cfid, k, b"")

    def delete_range(self, start: Any, end: Any, *, cf: ColumnFamily | None = None) -> None:
        """Adds a delete of every key in [start, end); start == end deletes nothing."""
        db = self._db
        s, e, cfid = db._key(start, "start"), db._key(end, "end"), db._cf_id(cf)
        if s > e:
            raise InvalidArgumentError("delete_range needs start <= end")
        if s < e:
            self._add(_DELETE_RANGE, cfid, s, e)

    def discard(self) -> None:
        """Drops the batch's ops; the batch can no longer be used."""
        self._done = True
        self.ops = []
        self.encoded = []

    async def commit(self) -> None:
        """Commits every op of the batch, atomically, with the batch's durability."""
        if self._done:
            raise ClosedError("this batch was already committed or discarded")
        self._done = True
        await self._db._commit(self.ops, self.encoded, self._nbytes, self.sync, self.buffered)

    async def __aenter__(self) -> WriteBatch:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            await self.commit()
        else:
            self.discard()
