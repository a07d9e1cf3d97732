"""The contract of column families: separate keyspaces, handles and cf=, atomic batches across
families, drop (its data gone for good), and families surviving a reopen."""

from __future__ import annotations

import pytest

import aiokv
from aiokv.merge import Int64Add
from tests.conformance.harness import dump, scan


async def test_families_hold_separate_keyspaces(store):
    users = await store.create_column_family("users")
    await store.put(b"k", b"default")
    await users.put(b"k", b"users")
    assert await store.get(b"k") == b"default"
    assert await users.get(b"k") == b"users"
    assert await store.get(b"k", cf=users) == b"users"
    await users.delete(b"k")
    assert await store.get(b"k") == b"default"
    assert await scan(users) == []
    assert store.list_column_families() == ["default", "users"]


async def test_every_data_method_of_a_handle_matches_its_cf_form(store):
    a = await store.create_column_family("a")
    await a.put(b"k1", b"1")
    await store.put(b"k2", b"2", cf=a)
    await a.put(b"k3", b"3")
    await a.put(b"k4", b"4")
    await a.delete(b"k3")
    await store.delete(b"k4", cf=a)
    assert await a.get_many([b"k1", b"k2", b"k3"]) == [b"1", b"2", None]
    assert await store.get_many([b"k1", b"k2"], cf=a) == [b"1", b"2"]
    assert await scan(a, reverse=True) == [(b"k2", b"2"), (b"k1", b"1")]
    assert await scan(store, cf=a, prefix=b"k1") == [(b"k1", b"1")]
    await store.put_many({b"r1": b"x", b"r2": b"x", b"r3": b"x"}, cf=a)
    await a.delete_range(b"r0", b"r2")
    await store.delete_range(b"r3", b"r4", cf=a)
    await a.compact_range()
    await store.compact_range(cf=a)
    assert [k for k, _ in await scan(a)] == [b"k1", b"k2", b"r2"]
    assert await scan(store) == []
    assert store.column_family("a").name == "a"
    assert await store.column_family("a").get(b"k1") == b"1"
    assert store.column_family("default").name == "default"


async def test_a_cross_family_batch_is_atomic(store):
    a = await store.create_column_family("a")
    b = await store.create_column_family("b")
    await b.put(b"gone", b"x")
    snap = store.snapshot()
    async with store.batch() as batch:
        batch.put(b"x", b"1", cf=a)
        batch.delete(b"gone", cf=b)
        batch.put(b"y", b"2", cf=b)
        batch.put(b"z", b"3")
        batch.delete_range(b"a", b"zz", cf=a)
        batch.put(b"w", b"4", cf=a)
    assert (await scan(a), await scan(b), await scan(store)) == (
        [(b"w", b"4")],
        [(b"y", b"2")],
        [(b"z", b"3")],
    )
    assert (await scan(a, snapshot=snap), await scan(b, snapshot=snap)) == ([], [(b"gone", b"x")])
    snap.release()
    with pytest.raises(ZeroDivisionError):
        async with store.batch() as batch:
            batch.put(b"never", b"1", cf=a)
            batch.put(b"never", b"1")
            raise ZeroDivisionError
    assert await a.get(b"never") is None and await store.get(b"never") is None


async def test_a_dropped_familys_data_is_gone_and_its_handles_refuse_calls(store):
    tmp = await store.create_column_family("tmp")
    for i in range(300):
        await tmp.put(b"k%03d" % i, b"v" * 50)
    await store.put(b"k000", b"default")
    await store.flush()
    await store.drop_column_family(tmp)
    assert store.list_column_families() == ["default"]
    for call in (
        lambda: tmp.get(b"k000"),
        lambda: tmp.put(b"k", b"v"),
        lambda: tmp.delete(b"k"),
        lambda: store.get(b"k000", cf=tmp),
    ):
        with pytest.raises(aiokv.ColumnFamilyError):
            await call()
    with pytest.raises(aiokv.ColumnFamilyError):
        store.batch().put(b"k", b"v", cf=tmp)
    with pytest.raises(aiokv.ColumnFamilyError):
        store.column_family("tmp")
    again = await store.create_column_family("tmp")
    assert await again.get(b"k000") is None
    assert await scan(again) == []
    assert await store.get(b"k000") == b"default"
    await store.drop_column_family("tmp")  # by name
    assert store.list_column_families() == ["default"]


async def test_family_calls_that_are_refused_change_nothing(store):
    kept = await store.create_column_family("kept")
    await kept.put(b"k", b"v")
    before = await dump(store, kept)
    with pytest.raises(aiokv.ColumnFamilyError):
        await store.create_column_family("kept")
    with pytest.raises(aiokv.ColumnFamilyError):
        await store.create_column_family("default")
    with pytest.raises(aiokv.ColumnFamilyError):
        await store.drop_column_family("default")
    with pytest.raises(aiokv.ColumnFamilyError):
        await store.drop_column_family("nope")
    with pytest.raises(aiokv.ColumnFamilyError):
        store.column_family("nope")
    with pytest.raises(aiokv.InvalidArgumentError):
        await store.create_column_family("")
    with pytest.raises(aiokv.InvalidTypeError):
        await store.create_column_family(3)
    assert await dump(store, kept) == before


async def test_families_their_options_and_data_survive_reopen(opener):
    db = await opener.open()
    logs = await db.create_column_family("logs", ttl=60)
    counters = await db.create_column_family("counters", merge_operator=Int64Add())
    doomed = await db.create_column_family("doomed")
    await logs.put(b"l", b"line")
    await counters.merge(b"hits", b"2")
    await counters.merge(b"hits", b"3")
    await doomed.put(b"d", b"x")
    await db.drop_column_family(doomed)
    await db.put(b"k", b"v")
    if not opener.can_reopen:
        return
    db = await opener.reopen(db)
    assert db.list_column_families() == ["default", "logs", "counters"]
    logs, counters = db.column_family("logs"), db.column_family("counters")
    assert await logs.ttl(b"l") == 60.0  # written at the unmoved clock: nothing elapsed
    await logs.put(b"m", b"line")  # the family ttl still stamps puts
    assert await logs.ttl(b"m") == 60.0
    await counters.merge(b"hits", b"5")  # the operator came back by its name
    assert await counters.get(b"hits") == b"10"
    assert await db.get(b"k") == b"v"
    doomed = await db.create_column_family("doomed")
    assert await scan(doomed) == []
