"""The public database object: the awaitable API over an engine.

Hot paths (`get`, `get_many`, `put`) are written for CPython's bytecode budget: the common case
(default family, newest state, plain bytes) is a handful of attribute loads and one dict lookup,
and everything else falls through to a general path that checks and converts its input.

Concurrency contract: a DB belongs to the event loop that opened it.  Reads never suspend;
writes suspend only when they must wait for a group commit (sync=True, or a group in flight).
"""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable, Generator, Iterable, Mapping
from types import TracebackType
from typing import Any, Final

from aiokv.batch import WriteBatch
from aiokv.convert import check_bound, check_flag, check_key, check_ttl, check_value, prefix_end
from aiokv.engine.batch_format import Op, ValueKind, encode_op
from aiokv.engine.engine import Engine
from aiokv.engine.front import DEFAULT_CF
from aiokv.engine.lsm.engine import LsmEngine
from aiokv.errors import (
    AiokvError,
    BackgroundError,
    ClosedError,
    ColumnFamilyError,
    InvalidArgumentError,
    InvalidTypeError,
)
from aiokv.family_options import check_family_name
from aiokv.options import ENGINES, Options, build_options
from aiokv.snapshot import ScanIterator, Snapshot

_PUT: Final = int(ValueKind.PUT)
_PUT_EXPIRING: Final = int(ValueKind.PUT_EXPIRING)
_DELETE: Final = int(ValueKind.DELETE)
_MERGE: Final = int(ValueKind.MERGE)
DEFAULT_FAMILY: Final = "default"


def _check_durability(sync: Any, buffered: Any) -> None:
    if sync.__class__ is not bool or buffered.__class__ is not bool or (sync and buffered):
        check_flag(sync, "sync")
        check_flag(buffered, "buffered")
        raise InvalidArgumentError("a write is either sync=True or buffered=True, not both")


def _accept(operand: bytes) -> None:
    """check_operand of an operator that has none."""


def _closed() -> AiokvError:
    return ClosedError("database is closed")


class ColumnFamily:
    """A handle on a column family: pass it as `cf=`, or call the data methods on it.

    >>> async def count_hit(db):                                  # doctest: +SKIP
    ...     counters = db.column_family("counters")
    ...     await counters.merge(b"hits", b"1")
    ...     return await counters.get(b"hits")

    A handle of a dropped family raises ColumnFamilyError on every call.
    """

    __slots__ = ("_db", "id", "name")

    def __init__(self, db: DB, name: str, cf_id: int) -> None:
        self._db = db
        self.name = name
        self.id = cf_id

    def __repr__(self) -> str:
        return f"ColumnFamily({self.name!r})"

    async def get(self, key: Any, *, snapshot: Snapshot | None = None) -> bytes | None:
        return await self._db.get(key, cf=self, snapshot=snapshot)

    async def get_many(
        self, keys: Iterable[Any], *, snapshot: Snapshot | None = None
    ) -> list[bytes | None]:
        return await self._db.get_many(keys, cf=self, snapshot=snapshot)

    async def put(self, key: Any, value: Any, *, ttl: Any = None, sync: bool = False,
                  buffered: bool = False) -> None:  # fmt: skip
        await self._db.put(key, value, cf=self, ttl=ttl, sync=sync, buffered=buffered)

    async def merge(self, key: Any, operand: Any, *, sync: bool = False,
                    buffered: bool = False) -> None:  # fmt: skip
        await self._db.merge(key, operand, cf=self, sync=sync, buffered=buffered)

    async def delete(self, key: Any, *, sync: bool = False, buffered: bool = False) -> None:
        await self._db.delete(key, cf=self, sync=sync, buffered=buffered)

    async def delete_range(self, start: Any, end: Any, *, sync: bool = False,
                           buffered: bool = False) -> None:  # fmt: skip
        await self._db.delete_range(start, end, cf=self, sync=sync, buffered=buffered)

    async def expire(self, key: Any, ttl: Any, *, sync: bool = False) -> bool:
        return await self._db.expire(key, ttl, cf=self, sync=sync)

    async def ttl(self, key: Any) -> float | None:
        return await self._db.ttl(key, cf=self)

    def scan(self, start: Any = None, end: Any = None, *, prefix: Any = None,
             reverse: bool = False, snapshot: Snapshot | None = None) -> ScanIterator:  # fmt: skip
        return self._db.scan(start, end, prefix=prefix, reverse=reverse, cf=self,
                             snapshot=snapshot)  # fmt: skip

    async def compact_range(self, start: Any = None, end: Any = None) -> None:
        await self._db.compact_range(start, end, cf=self)


class DB:
    """An open aiokv database.  Made by `aiokv.open()`; see that function."""

    def __init__(self, path: str | None, engine: Engine, options: Options) -> None:
        self.path = path
        self.options = options
        self._engine = engine
        self._committer = engine.committer
        # The active memtable's dict lookup; the engine calls on_switch when it freezes it.
        self._hot_get = engine.hot_table.get
        self._get_latest = engine.get_latest
        self._max_key = options.max_key_size
        self._max_value = options.max_value_size
        self._clock = options.clock
        self._default = ColumnFamily(self, DEFAULT_FAMILY, DEFAULT_CF)
        # The put fast path writes plain PUTs: not when the default family stamps a TTL.
        self._plain_default = engine.families[DEFAULT_CF].opts.ttl is None
        # The merge fast path: the default family's operator check (a no-op without one).
        op = engine.families[DEFAULT_CF].op
        self._default_check: Callable[[bytes], Any] | None = (
            None if op is None else getattr(op, "check_operand", None) or _accept
        )
        # None while usable; else makes the error every call raises (closed or poisoned).
        self._bad: Callable[[], AiokvError] | None = None
        self._closed = False
        # A weak reference: the engine must not keep the DB alive, or an unclosed DB could not
        # be collected (and warned about) while a pool thread still holds the engine.
        ref = weakref.ref(self)

        def on_poison(exc: BaseException) -> None:
            db = ref()
            if db is not None:
                db._poisoned(exc)

        def on_switch() -> None:
            db = ref()
            if db is not None:
                db._hot_get = db._engine.hot_table.get

        engine.on_poison = on_poison
        engine.on_switch = on_switch

    def _poisoned(self, exc: BaseException) -> None:
        if not self._closed:
            self._bad = lambda: BackgroundError(exc)

    # -- input checks shared with WriteBatch ---------------------------------------------------

    def _check_open(self) -> None:
        if self._bad is not None:
            raise self._bad()

    def _key(self, key: Any, what: str = "key") -> bytes:
        return check_key(key, self._max_key, what)

    def _value(self, value: Any) -> bytes:
        return check_value(value, self._max_value)

    def _cf_id(self, cf: ColumnFamily | None) -> int:
        if cf is None:
            return DEFAULT_CF
        if not isinstance(cf, ColumnFamily):
            raise InvalidTypeError(f"cf must be a ColumnFamily, not {type(cf).__name__}")
        if cf._db is not self:
            raise InvalidArgumentError(f"column family {cf.name!r} belongs to another database")
        if not self._engine.has_family(cf.id):
            raise ColumnFamilyError(f"column family {cf.name!r} does not exist (dropped)")
        return cf.id

    def _expiry_ms(self, ttl: Any) -> int:
        return int((self._clock() + check_ttl(ttl)) * 1000)

    def _put_op(self, cfid: int, key: bytes, value: bytes, ttl: Any) -> tuple[Op, bytes]:
        """A checked PUT, expiring by `ttl` or else by the family's own ttl."""
        if ttl is None:
            fttl = self._engine.families[cfid].opts.ttl
            if fttl is None:
                return Op(_PUT, cfid, key, value), encode_op(_PUT, cfid, key, value)
            exp = int((self._clock() + fttl) * 1000)
        else:
            exp = self._expiry_ms(ttl)
        op = Op(_PUT_EXPIRING, cfid, key, value, exp)
        return op, encode_op(_PUT_EXPIRING, cfid, key, value, exp)

    def _operand(self, cfid: int, operand: Any) -> bytes:
        """A checked merge operand: the family must have an operator, and the operator's
        check_operand (if it has one) must accept it; its exception is raised as it is."""
        op = self._engine.families[cfid].op
        if op is None:
            name = self._engine.families[cfid].name
            raise InvalidArgumentError(
                f"column family {name!r} has no merge operator (give merge_operator= when "
                "creating or opening it)"
            )
        v = self._value(operand)
        check = getattr(op, "check_operand", None)
        if check is not None:
            check(v)
        return v

    def _seq(self, snapshot: Snapshot | None) -> int | None:
        if snapshot is None:
            return None
        if not isinstance(snapshot, Snapshot):
            raise InvalidTypeError(f"snapshot must be a Snapshot, not {type(snapshot).__name__}")
        if snapshot._db is not self:
            raise InvalidArgumentError("snapshot belongs to another database")
        snapshot._check()
        return snapshot.seq

    # -- reads ------------------------------------------------------------------------------------

    async def get(
        self, key: Any, *, cf: ColumnFamily | None = None, snapshot: Snapshot | None = None
    ) -> bytes | None:
        """Returns the value of `key`, or None when it is missing, deleted or expired.

        Args:
            key: bytes or str (UTF-8), 1 to max_key_size bytes.
            cf: the column family (default: the default family).
            snapshot: read as of this snapshot (default: the newest state).
        Raises:
            InvalidArgumentError, InvalidTypeError: a bad key, family or snapshot.
            ClosedError, BackgroundError: the database is closed or poisoned.
        """
        if self._bad is None and cf is None and snapshot is None:
            try:
                e = self._hot_get(key)
            except TypeError:  # unhashable: the general path says what is wrong
                e = None
            if e is not None:
                if e[0] == 1:  # a present PUT is current: no other check needed
                    return e[1]
            elif key.__class__ is bytes and 0 < len(key) <= self._max_key:
                return self._get_latest(key)  # not in the active memtable: look below it
        return self._get(key, cf, snapshot)

    def _get(self, key: Any, cf: ColumnFamily | None, snapshot: Snapshot | None) -> bytes | None:
        self._check_open()
        k = self._key(key)
        return self._engine.get(self._cf_id(cf), k, self._seq(snapshot))

    async def get_many(
        self,
        keys: Iterable[Any],
        *,
        cf: ColumnFamily | None = None,
        snapshot: Snapshot | None = None,
    ) -> list[bytes | None]:
        """Returns the values of `keys`, in order (None for each missing one)."""
        if isinstance(keys, str | bytes | bytearray | memoryview):
            raise InvalidTypeError("get_many takes an iterable of keys, not a single key")
        if not isinstance(keys, list):
            keys = list(keys)
        if self._bad is None and cf is None and snapshot is None:
            try:
                out: list[bytes | None] = [
                    e[1] if e is not None and e[0] == 1 else None for e in map(self._hot_get, keys)
                ]
            except TypeError:
                out = [None] * len(keys)
            if None in out:  # C-level scan; misses take the general path one by one
                get = self._get
                for i, v in enumerate(out):
                    if v is None:
                        out[i] = get(keys[i], None, None)
            return out
        self._check_open()
        k = [self._key(x) for x in keys]
        return self._engine.get_many(self._cf_id(cf), k, self._seq(snapshot))

    def scan(
        self,
        start: Any = None,
        end: Any = None,
        *,
        prefix: Any = None,
        reverse: bool = False,
        cf: ColumnFamily | None = None,
        snapshot: Snapshot | None = None,
    ) -> ScanIterator:
        """Iterates `(key, value)` over [start, end) in key order, or reverse order.

        >>> async def first_users(db):                        # doctest: +SKIP
        ...     return [k async for k, _ in db.scan(prefix=b"user:")]

        Args:
            start: inclusive lower bound (None: from the first key).
            end: exclusive upper bound (None: to the last key).
            prefix: only keys that start with it (combined with the bounds).
            reverse: from the largest key down.
            snapshot: read as of this snapshot (default: a snapshot taken now).
        """
        self._check_open()
        lo = check_bound(start, "start")
        hi = check_bound(end, "end")
        check_flag(reverse, "reverse")
        if prefix is not None:
            p = check_bound(prefix, "prefix")
            assert p is not None
            if lo is None or lo < p:
                lo = p
            pe = prefix_end(p)
            if pe is not None and (hi is None or pe < hi):
                hi = pe
        cfid = self._cf_id(cf)
        self._seq(snapshot)  # checks it
        if lo is not None and hi is not None and lo >= hi:
            hi = lo  # an empty range still yields a well-formed, empty iterator
        return ScanIterator(self, self._engine, cfid, lo, hi, reverse, snapshot)

    def snapshot(self) -> Snapshot:
        """Takes a snapshot of the newest state.  Release it when done."""
        self._check_open()
        return Snapshot(self, self._engine)

    # -- writes -----------------------------------------------------------------------------------

    async def put(
        self,
        key: Any,
        value: Any,
        *,
        cf: ColumnFamily | None = None,
        ttl: Any = None,
        sync: bool = False,
        buffered: bool = False,
    ) -> None:
        """Sets `key` to `value`.

        Args:
            key, value: bytes or str (UTF-8) within max_key_size / max_value_size.
            cf: the column family (default: the default family).
            ttl: seconds after which the value expires (reads stop returning it at once).
            sync: when True, returns once the write survives a power cut (fdatasync).
                By default it returns once the bytes reached the OS (survives a process crash).
            buffered: when True, returns before the bytes reach the OS; they follow within
                buffered_flush_ms.  For caches and sessions that can lose the newest writes.
        Raises:
            InvalidArgumentError, InvalidTypeError: bad input; nothing was written.
            StorageIOError: the WAL write or sync failed; the database is now poisoned.
            ClosedError, BackgroundError: the database is closed or poisoned.
        """
        if self._bad is not None:
            raise self._bad()
        if key.__class__ is not bytes or not 0 < len(key) <= self._max_key:
            key = self._key(key)
        if value.__class__ is not bytes or len(value) > self._max_value:
            value = self._value(value)
        c = self._committer
        if (
            cf is None and ttl is None and not sync and not buffered and c.inline_ok
            and self._plain_default
        ):  # fmt: skip
            c.put_inline(key, value)
            return
        _check_durability(sync, buffered)
        op, enc = self._put_op(self._cf_id(cf), key, value, ttl)
        await self._dispatch([op], [enc], len(enc), sync, buffered)

    async def merge(
        self,
        key: Any,
        operand: Any,
        *,
        cf: ColumnFamily | None = None,
        sync: bool = False,
        buffered: bool = False,
    ) -> None:
        """Writes a merge operand for `key`, without reading: the family's merge operator
        folds it onto the value when a read, flush or compaction needs the result.

        >>> async def count(db):                                   # doctest: +SKIP
        ...     await db.merge(b"hits", b"1")   # with merge_operator=aiokv.merge.Int64Add()

        Raises:
            InvalidArgumentError: the family has no merge operator, or bad input.
            The operator's own exception when its check_operand refuses the operand
            (nothing is written).
        """
        if self._bad is not None:
            raise self._bad()
        if key.__class__ is not bytes or not 0 < len(key) <= self._max_key:
            key = self._key(key)
        c = self._committer
        check = self._default_check
        if (
            cf is None and not sync and not buffered and c.inline_ok and check is not None
            and operand.__class__ is bytes and len(operand) <= self._max_value
        ):  # fmt: skip
            check(operand)
            c.merge_inline(DEFAULT_CF, key, operand)
            return
        cfid = self._cf_id(cf)
        value = self._operand(cfid, operand)
        _check_durability(sync, buffered)
        op = Op(_MERGE, cfid, key, value)
        enc = encode_op(_MERGE, cfid, key, value)
        await self._dispatch([op], [enc], len(enc), sync, buffered)

    async def expire(
        self, key: Any, ttl: Any, *, cf: ColumnFamily | None = None, sync: bool = False
    ) -> bool:
        """Makes `key` expire `ttl` seconds from now (None: never), keeping its value.

        Returns False when the key is missing (deleted or expired): nothing is written.
        The read and the write are one step: no write to the key can come between them.
        """
        self._check_open()
        k = self._key(key)
        cfid = self._cf_id(cf)
        exp = None if ttl is None else self._expiry_ms(ttl)
        check_flag(sync, "sync")
        engine = self._engine

        def prepare() -> tuple[list[Op], list[bytes]] | None:
            e = engine.entry(cfid, k)
            if e is None:
                return None
            if exp is None:
                return [Op(_PUT, cfid, k, e[1])], [encode_op(_PUT, cfid, k, e[1])]
            op = Op(_PUT_EXPIRING, cfid, k, e[1], exp)
            return [op], [encode_op(_PUT_EXPIRING, cfid, k, e[1], exp)]

        c = self._committer
        if not sync and c.inline_ok:
            made = prepare()
            if made is None:
                return False
            c.write_inline(*made)
            return True
        return await c.commit_prepared(prepare, sync)

    async def ttl(self, key: Any, *, cf: ColumnFamily | None = None) -> float | None:
        """Seconds until `key` expires; math.inf when it never does; None when it is missing
        (never written, deleted or already expired)."""
        self._check_open()
        k = self._key(key)
        e = self._engine.entry(self._cf_id(cf), k)
        if e is None:
            return None
        if e[0] == _PUT:
            return math.inf
        return max(0.0, e[3] / 1000 - self._clock())

    async def put_many(
        self,
        items: Mapping[Any, Any] | Iterable[tuple[Any, Any]],
        *,
        cf: ColumnFamily | None = None,
        ttl: Any = None,
        sync: bool = False,
        buffered: bool = False,
    ) -> None:
        """Sets many keys at once, atomically (one batch)."""
        batch = self.batch(sync=sync, buffered=buffered)
        pairs = items.items() if isinstance(items, Mapping) else items
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise InvalidTypeError("put_many takes a mapping or (key, value) pairs")
            batch.put(pair[0], pair[1], cf=cf, ttl=ttl)
        await batch.commit()

    async def delete(
        self,
        key: Any,
        *,
        cf: ColumnFamily | None = None,
        sync: bool = False,
        buffered: bool = False,
    ) -> None:
        """Deletes `key` (deleting an absent key is not an error)."""
        batch = self.batch(sync=sync, buffered=buffered)
        batch.delete(key, cf=cf)
        await batch.commit()

    async def delete_range(
        self,
        start: Any,
        end: Any,
        *,
        cf: ColumnFamily | None = None,
        sync: bool = False,
        buffered: bool = False,
    ) -> None:
        """Deletes every key in [start, end)."""
        batch = self.batch(sync=sync, buffered=buffered)
        batch.delete_range(start, end, cf=cf)
        await batch.commit()

    def batch(self, *, sync: bool = False, buffered: bool = False) -> WriteBatch:
        """A new WriteBatch; see WriteBatch for its use as `async with`."""
        self._check_open()
        _check_durability(sync, buffered)
        return WriteBatch(self, sync=sync, buffered=buffered)

    async def write(self, batch: WriteBatch) -> None:
        """Commits a batch made by `db.batch()`."""
        if not isinstance(batch, WriteBatch):
            raise InvalidTypeError(f"write takes a WriteBatch, not {type(batch).__name__}")
        if batch._db is not self:
            raise InvalidArgumentError("batch belongs to another database")
        await batch.commit()

    async def _commit(
        self, ops: list[Op], encoded: list[bytes], nbytes: int, sync: bool, buffered: bool
    ) -> None:
        self._check_open()
        _check_durability(sync, buffered)
        if not ops and not sync:
            return  # an empty sync batch still syncs: everything before it becomes durable
        await self._dispatch(ops, encoded, nbytes, sync, buffered)

    async def _dispatch(
        self, ops: list[Op], encoded: list[bytes], nbytes: int, sync: bool, buffered: bool
    ) -> None:
        """Hands checked ops to the committer by the cheapest path their durability allows."""
        c = self._committer
        if not sync and c.inline_ok:
            if buffered:
                c.write_buffered(ops, encoded, nbytes)
            else:
                c.write_inline(ops, encoded)
            return
        await c.commit(ops, encoded, nbytes, sync)

    # -- maintenance --------------------------------------------------------------------------

    async def compact_range(
        self, start: Any = None, end: Any = None, *, cf: ColumnFamily | None = None
    ) -> None:
        """Compacts every table holding keys in [start, end] (None: unbounded) to one level.

        Writes the memtables out first, so afterwards the range is fully compacted: shadowed
        versions and tombstones that nothing older needs are gone (a tiered family merges
        into one run; a FIFO family never rewrites, so only the flush happens).
        """
        self._check_open()
        lo = check_bound(start, "start")
        hi = check_bound(end, "end")
        if lo is not None and hi is not None and lo > hi:
            raise InvalidArgumentError("compact_range: start is after end")
        await self._engine.compact_range(self._cf_id(cf), lo, hi)

    async def collect_expired(self) -> int:
        """Runs the TTL garbage collection now (it also runs every ttl_gc_interval seconds):
        rewrites every table holding expired entries, and drops FIFO tables past their
        family's ttl.  Returns how many tables it rewrote or dropped."""
        self._check_open()
        return await self._engine.collect_expired()

    async def flush(self) -> None:
        """Writes every memtable out to a table (the WAL segments they used may then go)."""
        self._check_open()
        await self._engine.flush()

    def stats(self, *, cf: ColumnFamily | None = None) -> dict[str, int]:
        """Counters: block cache hits and misses, filter outcomes, bytes read and written,
        stalls, flushes, compactions, merge failures, FIFO drops and TTL GC tasks, and the
        tables and bytes per level of family `cf` (default: the default family)."""
        self._check_open()
        return self._engine.stats_dict(self._cf_id(cf))

    # -- families -----------------------------------------------------------------------------

    async def create_column_family(self, name: Any, **options: Any) -> ColumnFamily:
        """Creates a column family and returns its handle.

        Its options (see aiokv.Options: compaction, ttl, merge_operator, write_buffer_size,
        block_size, filter, bloom_bits_per_key, level and trigger sizes,
        max_table_files_size, size_ratio, max_size_amplification_percent) are persisted
        with it; sizes and filters not given are taken from the database's open options.
        The family exists once this returns, also across a crash.

        Raises:
            ColumnFamilyError: a family of that name exists.
            InvalidArgumentError, InvalidTypeError: a bad name or option.
        """
        self._check_open()
        check_family_name(name)
        if self._engine.family_id(name) is not None:
            raise ColumnFamilyError(f"column family {name!r} already exists")
        cfid = await self._engine.create_family(name, options)
        return ColumnFamily(self, name, cfid)

    def column_family(self, name: Any) -> ColumnFamily:
        """The handle of an existing column family."""
        self._check_open()
        check_family_name(name)
        if name == DEFAULT_FAMILY:
            return self._default
        cfid = self._engine.family_id(name)
        if cfid is None:
            raise ColumnFamilyError(f"column family {name!r} does not exist")
        return ColumnFamily(self, name, cfid)

    async def drop_column_family(self, family: ColumnFamily | str) -> None:
        """Drops a column family and deletes its tables.  Its handles stop working; writes
        to it that were queued but not yet committed are discarded.

        Raises:
            ColumnFamilyError: no such family, or the default family (it cannot be dropped).
        """
        self._check_open()
        cf = family if isinstance(family, ColumnFamily) else self.column_family(family)
        cfid = self._cf_id(cf)
        if cfid == DEFAULT_CF:
            raise ColumnFamilyError("the default column family cannot be dropped")
        await self._engine.drop_family(cfid)

    def list_column_families(self) -> list[str]:
        """The names of the live column families, the default family first."""
        self._check_open()
        return [f.name for _, f in sorted(self._engine.families.items())]

    # -- lifecycle --------------------------------------------------------------------------------

    def check(self) -> None:
        """Verifies the in-memory structures' invariants (raises AssertionError)."""
        self._check_open()
        self._engine.check()

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Finishes queued writes, syncs the WAL and releases the directory; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._bad = _closed
        await self._engine.close()

    async def close(self) -> None:
        """Same as aclose()."""
        await self.aclose()

    async def __aenter__(self) -> DB:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        warnings.warn(
            f"aiokv database {self.path!r} was not closed; call `await db.aclose()` "
            "or use `async with aiokv.open(...)`",
            ResourceWarning,
            stacklevel=1,
        )
        self._engine.abandon()


class _Opening:
    """What `aiokv.open()` returns: await it for a DB, or use it as `async with`."""

    __slots__ = ("_db", "_engine_name", "_options", "_path")

    def __init__(self, path: str | None, engine: str, options: Options) -> None:
        self._path = path
        self._engine_name = engine
        self._options = options
        self._db: DB | None = None

    async def _open(self) -> DB:
        if self._engine_name == "btree":
            from aiokv.engine.btree.engine import BTreeEngine

            engine: Engine = await BTreeEngine.open(self._path, self._options)
        else:
            engine = await LsmEngine.open(self._path, self._options)
        return DB(self._path, engine, self._options)

    def __await__(self) -> Generator[Any, None, DB]:
        return self._open().__await__()

    async def __aenter__(self) -> DB:
        self._db = await self._open()
        return self._db

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._db is not None:
            await self._db.aclose()


def open(path: Any, engine: str = "lsm", **options: Any) -> _Opening:
    """Opens (creating if missing) the database in directory `path`; None means in memory.

    Use as `async with aiokv.open(path) as db:` or `db = await aiokv.open(path)`.

    Args:
        path: a directory (str or os.PathLike), or None for a purely in-memory store.
        engine: "lsm" (write-optimized: a log-structured merge tree) or "btree"
            (read-optimized: a copy-on-write B+Tree in one page file).
        **options: see aiokv.Options; an unknown option is an error.
    Raises:
        InvalidArgumentError: unknown option or engine, a path that is a file, ...
        LockedError: another open database holds the directory.
        UnsupportedFormatError: written by a newer format version.
        CorruptionError: the stored bytes fail their checks.
    """
    import os

    if path is not None:
        if not isinstance(path, str | os.PathLike):
            raise InvalidTypeError(
                f"path must be a str, os.PathLike or None, not {type(path).__name__}"
            )
        path = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise InvalidArgumentError("path must be a non-empty str path")
        path = os.path.abspath(path) if options.get("fs") is None else path
    if engine not in ENGINES:
        raise InvalidArgumentError(f"engine must be one of {ENGINES}, not {engine!r}")
    return _Opening(path, engine, build_options(options))
