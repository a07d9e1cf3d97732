"""A dict model of the aiokv API: the reference the contract and property tests compare with."""

from __future__ import annotations

from typing import Any


def _b(x: Any) -> bytes:
    return x.encode() if isinstance(x, str) else bytes(x)


class ModelSnapshot:
    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = dict(data)

    async def get(self, key: Any) -> bytes | None:
        return self.data.get(_b(key))

    async def get_many(self, keys: Any) -> list[bytes | None]:
        return [self.data.get(_b(k)) for k in keys]

    def scan(self, start: Any = None, end: Any = None, **kw: Any) -> ModelScan:
        return ModelScan(self.data, start, end, **kw)

    def release(self) -> None:
        pass

    def __enter__(self) -> ModelSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class ModelScan:
    def __init__(
        self,
        data: dict[bytes, bytes],
        start: Any = None,
        end: Any = None,
        *,
        prefix: Any = None,
        reverse: bool = False,
    ) -> None:
        keys = sorted(
            k
            for k in data
            if (start is None or k >= _b(start))
            and (end is None or k < _b(end))
            and (prefix is None or k.startswith(_b(prefix)))
        )
        self.items = [(k, data[k]) for k in (reversed(keys) if reverse else keys)]

    def __aiter__(self) -> ModelScan:
        return self

    async def __anext__(self) -> tuple[bytes, bytes]:
        if not self.items:
            raise StopAsyncIteration
        return self.items.pop(0)


class ModelBatch:
    def __init__(self, db: ModelDB) -> None:
        self.db = db
        self.ops: list[tuple[str, bytes, bytes]] = []

    def put(self, key: Any, value: Any) -> None:
        self.ops.append(("put", _b(key), _b(value)))

    def delete(self, key: Any) -> None:
        self.ops.append(("del", _b(key), b""))

    def delete_range(self, start: Any, end: Any) -> None:
        self.ops.append(("range", _b(start), _b(end)))

    async def commit(self) -> None:
        for op, a, b in self.ops:
            if op == "put":
                self.db.data[a] = b
            elif op == "del":
                self.db.data.pop(a, None)
            else:
                for k in [k for k in self.db.data if a <= k < b]:
                    del self.db.data[k]

    async def __aenter__(self) -> ModelBatch:
        return self

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            await self.commit()


class ModelDB:
    """Same method names and results as aiokv.DB for the calls the tests make."""

    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    async def put(self, key: Any, value: Any, **_: Any) -> None:
        self.data[_b(key)] = _b(value)

    async def get(self, key: Any, snapshot: ModelSnapshot | None = None) -> bytes | None:
        return (snapshot.data if snapshot else self.data).get(_b(key))

    async def get_many(self, keys: Any) -> list[bytes | None]:
        return [self.data.get(_b(k)) for k in keys]

    async def put_many(self, items: Any, **_: Any) -> None:
        for k, v in dict(items).items():
            await self.put(k, v)

    async def delete(self, key: Any, **_: Any) -> None:
        self.data.pop(_b(key), None)

    async def delete_range(self, start: Any, end: Any, **_: Any) -> None:
        b = self.batch()
        b.delete_range(start, end)
        await b.commit()

    def batch(self, **_: Any) -> ModelBatch:
        return ModelBatch(self)

    def scan(self, start: Any = None, end: Any = None, **kw: Any) -> ModelScan:
        return ModelScan(self.data, start, end, **kw)

    def snapshot(self) -> ModelSnapshot:
        return ModelSnapshot(self.data)

    def check(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def compact_range(self, start: Any = None, end: Any = None) -> None:
        pass

    async def aclose(self) -> None:
        pass
