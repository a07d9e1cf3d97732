"""The engine contract: the same behaviour from every engine and from the dict model."""

from __future__ import annotations

import random


async def scan(store, *args, **kw):
    return [kv async for kv in store.scan(*args, **kw)]


async def test_point_operations(store):
    await store.put(b"a", b"1")
    await store.put(b"b", b"2")
    await store.put(b"a", b"3")
    await store.delete(b"b")
    assert await store.get(b"a") == b"3"
    assert await store.get(b"b") is None
    assert await store.get_many([b"b", b"a", b"zz"]) == [None, b"3", None]


async def test_batch_and_range_delete(store):
    async with store.batch() as b:
        for i in range(50):
            b.put(f"k{i:02d}", f"v{i}")
        b.delete(b"k07")
        b.delete_range(b"k10", b"k20")
    got = await scan(store)
    want = [(f"k{i:02d}".encode(), f"v{i}".encode()) for i in range(50) if i != 7]
    assert got == [kv for kv in want if not b"k10" <= kv[0] < b"k20"]


async def test_ordered_scans_with_bounds(store):
    rng = random.Random(7)
    keys = {rng.randbytes(rng.randint(1, 6)) for _ in range(400)}
    await store.put_many({k: k[::-1] for k in keys})
    ordered = sorted(keys)
    lo, hi = ordered[50], ordered[300]
    assert [k for k, _ in await scan(store)] == ordered
    assert [k for k, _ in await scan(store, lo, hi)] == ordered[50:300]
    assert [k for k, _ in await scan(store, lo, hi, reverse=True)] == ordered[50:300][::-1]
    p = ordered[200][:1]
    assert [k for k, _ in await scan(store, prefix=p)] == [k for k in ordered if k.startswith(p)]


async def test_snapshot_isolation(store):
    await store.put_many({b"a": b"1", b"b": b"1"})
    snap = store.snapshot()
    await store.put(b"a", b"2")
    await store.delete(b"b")
    await store.put(b"c", b"new")
    assert await snap.get(b"a") == b"1"
    assert await snap.get(b"b") == b"1"
    assert await snap.get(b"c") is None
    assert [kv async for kv in snap.scan()] == [(b"a", b"1"), (b"b", b"1")]
    snap.release()
    assert await scan(store) == [(b"a", b"2"), (b"c", b"new")]


async def test_random_history_matches_the_model(store):
    rng = random.Random(2)
    from tests.model import ModelDB

    model = ModelDB()
    for _ in range(2000):
        k = rng.choice([b"a", b"b", b"c", b"d", b"e", b"f"]) + bytes([rng.randint(0, 3)])
        r = rng.random()
        for s in (store, model):
            if r < 0.6:
                await s.put(k, k + b"!")
            elif r < 0.9:
                await s.delete(k)
            else:
                await s.delete_range(k, k[:1] + b"\x09")
    assert await scan(store) == await scan(model)


async def test_flush_and_full_compaction_keep_every_answer(store):
    rng = random.Random(11)
    from tests.model import ModelDB

    model = ModelDB()
    for i in range(1500):
        k = f"key{rng.randrange(600):04d}".encode()
        v = k * rng.randint(1, 4)
        for s in (store, model):
            if i % 7 == 3:
                await s.delete(k)
            else:
                await s.put(k, v)
        if i % 500 == 499:
            await store.flush()
    snap = store.snapshot()
    frozen = await scan(model)
    for s in (store, model):
        await s.delete_range(b"key01", b"key02")
        await s.put(b"key0150", b"after the snapshot")
    await store.compact_range()
    assert await scan(store) == await scan(model)
    assert [kv async for kv in snap.scan()] == frozen
    snap.release()
    keys = [f"key{i:04d}".encode() for i in range(600)]
    assert await store.get_many(keys) == await model.get_many(keys)
    assert await store.get(b"key0150") == b"after the snapshot"
