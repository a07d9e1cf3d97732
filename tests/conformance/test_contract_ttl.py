"""The contract of TTL, on the injected clock: expired values hidden at once by every read,
ttl() and expire(), family and open-option TTLs, no resurrection of an older value."""

from __future__ import annotations

import math

import pytest

from tests.conformance.harness import scan


async def test_a_per_key_ttl_hides_the_value_exactly_at_its_expiry(store, clock):
    await store.put(b"short", b"v1", ttl=10)
    await store.put(b"plain", b"v2")
    clock.advance(9.999)
    assert await store.get(b"short") == b"v1"
    assert await store.get_many([b"short", b"plain"]) == [b"v1", b"v2"]
    clock.advance(0.001)
    assert await store.get(b"short") is None
    assert await store.get_many([b"short", b"plain"]) == [None, b"v2"]
    assert await scan(store) == [(b"plain", b"v2")]
    assert await scan(store, reverse=True) == [(b"plain", b"v2")]
    assert await store.ttl(b"short") is None


async def test_expiry_holds_through_flush_and_compaction(store, clock):
    for i in range(200):
        await store.put(b"e%03d" % i, b"x", ttl=5 + i % 3)
        await store.put(b"p%03d" % i, b"y")
    await store.flush()
    clock.advance(6)
    await store.compact_range()
    assert [k for k, _ in await scan(store, prefix=b"e")] == [
        b"e%03d" % i for i in range(200) if i % 3 == 2
    ]
    clock.advance(1)
    assert await scan(store, prefix=b"e") == []
    assert len(await scan(store)) == 200
    await store.collect_expired()
    await store.compact_range()
    assert await scan(store, prefix=b"e") == []


async def test_an_expired_key_never_brings_back_an_older_value(store, clock):
    await store.put(b"k", b"v1")
    await store.flush()
    await store.compact_range()
    await store.put(b"k", b"v2", ttl=1)
    await store.flush()
    clock.advance(1)
    assert await store.get(b"k") is None
    await store.collect_expired()
    await store.compact_range()
    assert await store.get(b"k") is None
    assert await scan(store) == []
    assert await store.ttl(b"k") is None


async def test_an_expired_key_is_hidden_at_a_snapshot_taken_before_it_expired(store, clock):
    await store.put(b"k", b"v", ttl=5)
    with store.snapshot() as snap:
        assert await snap.get(b"k") == b"v"
        clock.advance(5)
        assert await snap.get(b"k") is None
        assert await scan(snap) == []


async def test_ttl_reports_none_inf_or_the_seconds_left(store, clock):
    await store.put(b"forever", b"v")
    await store.put(b"soon", b"v", ttl=10)
    await store.put(b"gone", b"v")
    await store.delete(b"gone")
    assert await store.ttl(b"never-written") is None
    assert await store.ttl(b"gone") is None
    assert await store.ttl(b"forever") == math.inf
    clock.advance(2.5)
    assert await store.ttl(b"soon") == pytest.approx(7.5)
    await store.flush()
    assert await store.ttl(b"soon") == pytest.approx(7.5)
    clock.advance(7.5)
    assert await store.ttl(b"soon") is None


async def test_expire_sets_and_clears_a_ttl_and_keeps_the_value(store, clock):
    await store.put(b"k", b"v")
    await store.put(b"j", b"w", ttl=5)
    await store.flush()
    assert await store.expire(b"k", 20) is True
    assert await store.expire(b"j", None) is True
    assert await store.ttl(b"k") == 20.0
    assert await store.ttl(b"j") == math.inf
    assert await store.get_many([b"k", b"j"]) == [b"v", b"w"]
    clock.advance(20)
    assert await store.get_many([b"k", b"j"]) == [None, b"w"]
    assert await store.expire(b"j", 1, sync=True) is True
    clock.advance(1)
    assert await store.get(b"j") is None


@pytest.mark.parametrize("state", ["missing", "deleted", "expired", "range-deleted"])
async def test_expire_without_a_live_value_returns_false_and_writes_nothing(store, clock, state):
    await store.put(b"other", b"x")
    if state == "deleted":
        await store.put(b"k", b"v")
        await store.delete(b"k")
    elif state == "expired":
        await store.put(b"k", b"v", ttl=1)
        clock.advance(1)
    elif state == "range-deleted":
        await store.put(b"k", b"v")
        await store.flush()
        await store.delete_range(b"a", b"l")
    before = await scan(store)
    assert await store.expire(b"k", 60) is False
    assert await store.expire(b"k", None) is False
    assert await store.expire(b"k", 60, sync=True) is False
    assert await scan(store) == before
    assert await store.get(b"k") is None
    assert await store.ttl(b"k") is None


async def test_a_family_ttl_stamps_its_own_puts_and_a_puts_ttl_overrides_it(store, clock):
    sessions = await store.create_column_family("sessions", ttl=5)
    await sessions.put(b"s1", b"alice")
    await sessions.put(b"long", b"bob", ttl=100)
    async with store.batch() as b:
        b.put(b"s2", b"carol", cf=sessions)
        b.put(b"user", b"dave")
    await store.put_many({b"s3": b"erin"}, cf=sessions)
    assert await sessions.ttl(b"s1") == 5.0
    assert await sessions.ttl(b"long") == 100.0
    assert await store.ttl(b"user") == math.inf
    clock.advance(5)
    assert await scan(sessions) == [(b"long", b"bob")]
    assert await store.get(b"user") == b"dave"


async def test_the_ttl_option_stamps_every_put_of_the_default_family(opener, clock):
    db = await opener.open(ttl=30)
    await db.put(b"a", b"1")
    await db.put_many({b"b": b"2"})
    async with db.batch() as b:
        b.put(b"c", b"3")
    await db.put(b"d", b"4", ttl=100)
    assert [await db.ttl(k) for k in (b"a", b"b", b"c", b"d")] == [30.0, 30.0, 30.0, 100.0]
    clock.advance(30)
    assert await db.get_many([b"a", b"b", b"c", b"d"]) == [None, None, None, b"4"]
    if opener.can_reopen:
        db = await opener.reopen(db, {"ttl": 30})
        assert await db.get_many([b"a", b"d"]) == [None, b"4"]
        assert await db.ttl(b"d") == 70.0
        await db.put(b"e", b"5")
        assert await db.ttl(b"e") == 30.0
