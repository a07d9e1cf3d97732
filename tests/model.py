"""A dict model of the aiokv API: the reference the contract and property tests compare with.

It holds, per column family, a dict from key to its state

    state := (base: bytes | None, expiry_ms: int | None, operands: tuple[bytes, ...])

where `base` is the value of the last put (None: deleted or never written), `expiry_ms` its
expiry on the injected clock (None: never), and `operands` the merge operands written since,
oldest first.  A read folds the operands onto the base (onto None once the base expired, since
operands carry no expiry of their own) with the family's operator, at read time: so a raising
operator fails the reads of its key, and nothing else, exactly as the engines do.

Input is checked with aiokv's own pure checks (aiokv.convert), so bad calls raise the same
error types as a DB; what this model defines is the behaviour, not the validation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiokv.convert import check_bound, check_flag, check_key, check_ttl, check_value
from aiokv.errors import ClosedError, ColumnFamilyError, InvalidArgumentError, InvalidTypeError
from aiokv.family_options import check_family_name
from aiokv.merge import check_operator

State = tuple[bytes | None, int | None, tuple[bytes, ...]]
DEFAULT = "default"
START = 1_000_000.0


class Clock:
    """A clock that moves only when a test says so (pass it as `clock=`)."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ModelFamily:
    """One column family: its options and its states by key."""

    def __init__(self, name: str, cf_id: int, ttl: Any = None, merge_operator: Any = None) -> None:
        self.name = name
        self.id = cf_id
        self.ttl = None if ttl is None else check_ttl(ttl)
        self.op = None if merge_operator is None else check_operator(merge_operator)
        self.data: dict[bytes, State] = {}


def _read(fam: ModelFamily, key: bytes, st: State | None, now_ms: int) -> bytes | None:
    """What a read sees of `st`; the operator's exception, if it raises, reaches the caller."""
    if st is None:
        return None
    base, exp, ops = st
    live = base if base is not None and (exp is None or exp > now_ms) else None
    if not ops:
        return live
    assert fam.op is not None
    return fam.op.full_merge(key, live, list(ops))


class ModelHandle:
    """The model's ColumnFamily: the data methods with cf= bound to it."""

    def __init__(self, db: ModelDB, name: str, cf_id: int) -> None:
        self._db = db
        self.name = name
        self.id = cf_id

    def __repr__(self) -> str:
        return f"ModelHandle({self.name!r})"

    async def get(self, key: Any, *, snapshot: Any = None) -> bytes | None:
        return await self._db.get(key, cf=self, snapshot=snapshot)

    async def get_many(self, keys: Any, *, snapshot: Any = None) -> list[bytes | None]:
        return await self._db.get_many(keys, cf=self, snapshot=snapshot)

    async def put(self, key: Any, value: Any, **kw: Any) -> None:
        await self._db.put(key, value, cf=self, **kw)

    async def merge(self, key: Any, operand: Any, **kw: Any) -> None:
        await self._db.merge(key, operand, cf=self, **kw)

    async def delete(self, key: Any, **kw: Any) -> None:
        await self._db.delete(key, cf=self, **kw)

    async def delete_range(self, start: Any, end: Any, **kw: Any) -> None:
        await self._db.delete_range(start, end, cf=self, **kw)

    async def expire(self, key: Any, ttl: Any, **kw: Any) -> bool:
        return await self._db.expire(key, ttl, cf=self, **kw)

    async def ttl(self, key: Any) -> float | None:
        return await self._db.ttl(key, cf=self)

    def scan(self, start: Any = None, end: Any = None, **kw: Any) -> ModelScan:
        return self._db.scan(start, end, cf=self, **kw)

    async def compact_range(self, start: Any = None, end: Any = None) -> None:
        await self._db.compact_range(start, end, cf=self)


class ModelSnapshot:
    """The states of every family as of its creation; expiry is judged at read time."""

    def __init__(self, db: ModelDB) -> None:
        self._db = db
        self.data = {cf: dict(f.data) for cf, f in db.families.items()}
        self.released = False

    async def get(self, key: Any, *, cf: Any = None) -> bytes | None:
        return await self._db.get(key, cf=cf, snapshot=self)

    async def get_many(self, keys: Any, *, cf: Any = None) -> list[bytes | None]:
        return await self._db.get_many(keys, cf=cf, snapshot=self)

    def scan(self, start: Any = None, end: Any = None, **kw: Any) -> ModelScan:
        return self._db.scan(start, end, snapshot=self, **kw)

    def release(self) -> None:
        self.released = True

    def __enter__(self) -> ModelSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    async def __aenter__(self) -> ModelSnapshot:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class ModelScan:
    """Reads the states it was made with (the scan's own snapshot), folded as it yields."""

    def __init__(
        self,
        db: ModelDB,
        fam: ModelFamily,
        data: dict[bytes, State],
        lo: bytes | None,
        hi: bytes | None,
        prefix: bytes | None,
        reverse: bool,
    ) -> None:
        self._db = db
        self._fam = fam
        keys = sorted(
            k
            for k in data
            if (lo is None or k >= lo)
            and (hi is None or k < hi)
            and (prefix is None or k.startswith(prefix))
        )
        if reverse:
            keys.reverse()
        self._pending = [(k, data[k]) for k in keys]
        self._i = 0

    def __aiter__(self) -> ModelScan:
        return self

    async def __anext__(self) -> tuple[bytes, bytes]:
        self._db._check_open()
        now = self._db._now_ms()
        while self._i < len(self._pending):
            k, st = self._pending[self._i]
            self._i += 1
            v = _read(self._fam, k, st, now)
            if v is not None:
                return k, v
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._i = len(self._pending)


class ModelBatch:
    """Checks each op as it is added; commit applies them all, in order, or none."""

    def __init__(self, db: ModelDB, sync: bool, buffered: bool) -> None:
        self._db = db
        self.sync = sync
        self.buffered = buffered
        self.ops: list[Callable[[], None]] = []
        self._done = False

    def __len__(self) -> int:
        return len(self.ops)

    def _add(self, op: Callable[[], None]) -> None:
        if self._done:
            raise ClosedError("this batch was already committed or discarded")
        self.ops.append(op)

    def put(self, key: Any, value: Any, *, cf: Any = None, ttl: Any = None) -> None:
        db = self._db
        k, v, fam = db._key(key), db._value(value), db._family(cf)
        exp = db._expiry(fam, ttl)
        self._add(lambda: fam.data.__setitem__(k, (v, exp, ())))

    def merge(self, key: Any, operand: Any, *, cf: Any = None) -> None:
        db = self._db
        k, fam = db._key(key), db._family(cf)
        v = db._operand(fam, operand)

        def apply() -> None:
            base, exp, ops = fam.data.get(k, (None, None, ()))
            fam.data[k] = (base, exp, (*ops, v))

        self._add(apply)

    def delete(self, key: Any, *, cf: Any = None) -> None:
        db = self._db
        k, fam = db._key(key), db._family(cf)
        self._add(lambda: fam.data.pop(k, None) and None)

    def delete_range(self, start: Any, end: Any, *, cf: Any = None) -> None:
        db = self._db
        s, e, fam = db._key(start, "start"), db._key(end, "end"), db._family(cf)
        if s > e:
            raise InvalidArgumentError("delete_range needs start <= end")

        def apply() -> None:
            for k in [k for k in fam.data if s <= k < e]:
                del fam.data[k]

        if s < e:
            self._add(apply)

    def discard(self) -> None:
        self._done = True
        self.ops = []

    async def commit(self) -> None:
        if self._done:
            raise ClosedError("this batch was already committed or discarded")
        self._done = True
        self._db._check_open()
        # A dropped family's writes are refused at add time; one dropped since is skipped.
        for op in self.ops:
            op()

    async def __aenter__(self) -> ModelBatch:
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            await self.commit()
        else:
            self.discard()


class ModelDB:
    """Same method names, results and error types as aiokv.DB for the calls the tests make.

    Options: clock, ttl and merge_operator (the default family's), column_families (families
    created at open, with their ttl and merge_operator), max_key_size, max_value_size; any
    other option (engine tuning) is accepted and ignored.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        ttl: Any = None,
        merge_operator: Any = None,
        column_families: Mapping[str, Mapping[str, Any]] | None = None,
        max_key_size: int = 16 * 1024,
        max_value_size: int = 64 * 1024 * 1024,
        **_tuning: Any,
    ) -> None:
        self._clock = clock
        self._max_key = max_key_size
        self._max_value = max_value_size
        self.families: dict[int, ModelFamily] = {
            0: ModelFamily(DEFAULT, 0, ttl=ttl, merge_operator=merge_operator)
        }
        self._next_id = 1
        self._closed = False
        for name, opts in (column_families or {}).items():
            self._add_family(name, opts)

    # -- checks ---------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("database is closed")

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _key(self, key: Any, what: str = "key") -> bytes:
        self._check_open()
        return check_key(key, self._max_key, what)

    def _value(self, value: Any) -> bytes:
        return check_value(value, self._max_value)

    def _family(self, cf: Any) -> ModelFamily:
        self._check_open()
        if cf is None:
            return self.families[0]
        if not isinstance(cf, ModelHandle):
            raise InvalidTypeError(f"cf must be a ColumnFamily, not {type(cf).__name__}")
        if cf._db is not self:
            raise InvalidArgumentError(f"column family {cf.name!r} belongs to another database")
        fam = self.families.get(cf.id)
        if fam is None:
            raise ColumnFamilyError(f"column family {cf.name!r} does not exist (dropped)")
        return fam

    def _expiry(self, fam: ModelFamily, ttl: Any) -> int | None:
        if ttl is None:
            ttl = fam.ttl
            if ttl is None:
                return None
        return int((self._clock() + check_ttl(ttl)) * 1000)

    def _operand(self, fam: ModelFamily, operand: Any) -> bytes:
        if fam.op is None:
            raise InvalidArgumentError(f"column family {fam.name!r} has no merge operator")
        v = self._value(operand)
        check = getattr(fam.op, "check_operand", None)
        if check is not None:
            check(v)
        return v

    def _states(self, fam: ModelFamily, snapshot: Any) -> dict[bytes, State]:
        if snapshot is None:
            return fam.data
        if not isinstance(snapshot, ModelSnapshot):
            raise InvalidTypeError(f"snapshot must be a Snapshot, not {type(snapshot).__name__}")
        if snapshot.released:
            raise ClosedError("snapshot was released")
        return snapshot.data.get(fam.id, {})

    # -- reads ----------------------------------------------------------------------------------

    async def get(self, key: Any, *, cf: Any = None, snapshot: Any = None) -> bytes | None:
        k = self._key(key)
        fam = self._family(cf)
        return _read(fam, k, self._states(fam, snapshot).get(k), self._now_ms())

    async def get_many(
        self, keys: Iterable[Any], *, cf: Any = None, snapshot: Any = None
    ) -> list[bytes | None]:
        if isinstance(keys, str | bytes | bytearray | memoryview):
            raise InvalidTypeError("get_many takes an iterable of keys, not a single key")
        ks = [self._key(k) for k in keys]
        fam = self._family(cf)
        data, now = self._states(fam, snapshot), self._now_ms()
        return [_read(fam, k, data.get(k), now) for k in ks]

    def scan(
        self,
        start: Any = None,
        end: Any = None,
        *,
        prefix: Any = None,
        reverse: bool = False,
        cf: Any = None,
        snapshot: Any = None,
    ) -> ModelScan:
        self._check_open()
        lo, hi = check_bound(start, "start"), check_bound(end, "end")
        p = check_bound(prefix, "prefix")
        check_flag(reverse, "reverse")
        fam = self._family(cf)
        data = dict(self._states(fam, snapshot))
        return ModelScan(self, fam, data, lo, hi, p, reverse)

    def snapshot(self) -> ModelSnapshot:
        self._check_open()
        return ModelSnapshot(self)

    async def ttl(self, key: Any, *, cf: Any = None) -> float | None:
        k = self._key(key)
        fam = self._family(cf)
        st = fam.data.get(k)
        now = self._now_ms()
        if _read(fam, k, st, now) is None:
            return None
        assert st is not None
        base, exp, _ = st
        if base is None or exp is None or exp <= now:  # operands alone never expire
            return math.inf
        return max(0.0, exp / 1000 - self._clock())

    # -- writes ---------------------------------------------------------------------------------

    def batch(self, *, sync: bool = False, buffered: bool = False) -> ModelBatch:
        self._check_open()
        _check_durability(sync, buffered)
        return ModelBatch(self, sync, buffered)

    async def write(self, batch: Any) -> None:
        if not isinstance(batch, ModelBatch):
            raise InvalidTypeError(f"write takes a WriteBatch, not {type(batch).__name__}")
        await batch.commit()

    async def put(
        self, key: Any, value: Any, *, cf: Any = None, ttl: Any = None, **durability: Any
    ) -> None:
        b = self.batch(**durability)
        b.put(key, value, cf=cf, ttl=ttl)
        await b.commit()

    async def put_many(self, items: Any, *, cf: Any = None, ttl: Any = None, **kw: Any) -> None:
        b = self.batch(**kw)
        pairs = items.items() if isinstance(items, Mapping) else items
        for pair in pairs:
            if not isinstance(pair, tuple) or len(pair) != 2:
                raise InvalidTypeError("put_many takes a mapping or (key, value) pairs")
            b.put(pair[0], pair[1], cf=cf, ttl=ttl)
        await b.commit()

    async def merge(self, key: Any, operand: Any, *, cf: Any = None, **durability: Any) -> None:
        b = self.batch(**durability)
        b.merge(key, operand, cf=cf)
        await b.commit()

    async def delete(self, key: Any, *, cf: Any = None, **durability: Any) -> None:
        b = self.batch(**durability)
        b.delete(key, cf=cf)
        await b.commit()

    async def delete_range(self, start: Any, end: Any, *, cf: Any = None, **kw: Any) -> None:
        b = self.batch(**kw)
        b.delete_range(start, end, cf=cf)
        await b.commit()

    async def expire(self, key: Any, ttl: Any, *, cf: Any = None, sync: bool = False) -> bool:
        k = self._key(key)
        fam = self._family(cf)
        exp = None if ttl is None else int((self._clock() + check_ttl(ttl)) * 1000)
        check_flag(sync, "sync")
        v = _read(fam, k, fam.data.get(k), self._now_ms())
        if v is None:
            return False
        fam.data[k] = (v, exp, ())
        return True

    # -- families -------------------------------------------------------------------------------

    def _add_family(self, name: str, opts: Mapping[str, Any]) -> ModelHandle:
        fam = ModelFamily(
            name, self._next_id, ttl=opts.get("ttl"), merge_operator=opts.get("merge_operator")
        )
        self.families[fam.id] = fam
        self._next_id += 1
        return ModelHandle(self, name, fam.id)

    def _id_of(self, name: str) -> int | None:
        return next((i for i, f in self.families.items() if f.name == name), None)

    async def create_column_family(self, name: Any, **options: Any) -> ModelHandle:
        self._check_open()
        check_family_name(name)
        if self._id_of(name) is not None:
            raise ColumnFamilyError(f"column family {name!r} already exists")
        return self._add_family(name, options)

    def column_family(self, name: Any) -> ModelHandle:
        self._check_open()
        check_family_name(name)
        cf_id = self._id_of(name)
        if cf_id is None:
            raise ColumnFamilyError(f"column family {name!r} does not exist")
        return ModelHandle(self, name, cf_id)

    async def drop_column_family(self, family: Any) -> None:
        self._check_open()
        cf = family if isinstance(family, ModelHandle) else self.column_family(family)
        fam = self._family(cf)
        if fam.id == 0:
            raise ColumnFamilyError("the default column family cannot be dropped")
        del self.families[fam.id]

    def list_column_families(self) -> list[str]:
        self._check_open()
        return [f.name for _, f in sorted(self.families.items())]

    # -- maintenance and lifecycle: nothing to do in a dict -------------------------------------

    def check(self) -> None:
        self._check_open()

    async def flush(self) -> None:
        self._check_open()

    async def compact_range(self, start: Any = None, end: Any = None, *, cf: Any = None) -> None:
        self._check_open()
        lo, hi = check_bound(start, "start"), check_bound(end, "end")
        if lo is not None and hi is not None and lo > hi:
            raise InvalidArgumentError("compact_range: start is after end")
        self._family(cf)

    async def collect_expired(self) -> int:
        self._check_open()
        return 0

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        self._closed = True

    async def close(self) -> None:
        self._closed = True

    async def __aenter__(self) -> ModelDB:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closed = True


def _check_durability(sync: Any, buffered: Any) -> None:
    check_flag(sync, "sync")
    check_flag(buffered, "buffered")
    if sync and buffered:
        raise InvalidArgumentError("a write is either sync=True or buffered=True, not both")
