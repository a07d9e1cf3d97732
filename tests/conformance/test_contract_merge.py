"""The contract of merge operators: every built-in through db.merge, families and batches, reads
at snapshots, TTL under operands, and a raising operator that fails only the reads of its key
(with the user's own exception) and changes nothing."""

from __future__ import annotations

import math

import orjson
import pytest

import aiokv
from aiokv.merge import Int64Add, JsonMergePatch, Max, Min, StringAppend
from tests.conformance.harness import dump, scan


class Boom(Exception):
    """What the test operators raise: a type of their own, so a test can tell it apart."""


class Concat:
    """A user operator: concatenation, no partial_merge; it raises on the operand b"bad"."""

    name = "test.concat"

    def full_merge(self, key: bytes, existing: bytes | None, operands: list[bytes]) -> bytes:
        if b"bad" in operands:
            raise Boom(f"cannot merge into {key!r}")
        return b"".join([existing or b"", *operands])


class Picky(Concat):
    """A user operator whose check_operand refuses operands starting with b"!"."""

    name = "test.picky"

    def check_operand(self, operand: bytes) -> None:
        if operand.startswith(b"!"):
            raise Boom("no bangs")


BUILTINS = [
    pytest.param(Int64Add(), b"40", [b"1", b"+2", b"-10", b"17"], b"50", id="int64"),
    pytest.param(
        Int64Add(), None, [b"9223372036854775807", b"1"], b"-9223372036854775808", id="int64-wraps"
    ),
    pytest.param(StringAppend(b", "), b"a", [b"b", b"c", b"d"], b"a, b, c, d", id="append"),
    pytest.param(StringAppend(b""), None, [b"x", b"y", b"z"], b"xyz", id="append-empty-sep"),
    pytest.param(Max(), b"m", [b"a", b"z", b"ab", b"y"], b"z", id="max"),
    pytest.param(Min(), b"m", [b"n", b"b", b"ba", b"c"], b"b", id="min"),
    pytest.param(Max(), None, [b"9", b"10"], b"9", id="max-bytewise"),
]


@pytest.mark.parametrize(("op", "base", "operands", "want"), BUILTINS)
async def test_each_builtin_reads_the_same_through_flush_compaction_and_reopen(
    opener, op, base, operands, want
):
    db = await opener.open(merge_operator=op)
    if base is not None:
        await db.put(b"k", base)
    await db.merge(b"k", operands[0])
    await db.flush()
    for x in operands[1:]:
        await db.merge(b"k", x)
    assert await db.get(b"k") == want
    await db.flush()
    await db.compact_range()
    assert await db.get(b"k") == want
    assert await scan(db) == [(b"k", want)]
    if opener.can_reopen:
        db = await opener.reopen(db)
        assert await db.get(b"k") == want
        db = await opener.reopen(db, {})  # a built-in comes back by its persisted name
        assert await db.get(b"k") == want


async def test_json_merge_patch_in_a_family(store):
    s = await store.create_column_family("s", merge_operator=JsonMergePatch())
    await s.put(b"s1", b'{"user": "ada", "cart": {"apple": 2, "pear": 1}}')
    await s.merge(b"s1", b'{"cart": {"pear": null, "plum": 5}}')
    await store.flush()
    await s.merge(b"s1", b'{"theme": "dark"}')
    await store.merge(b"s2", b"[1]", cf=s)
    want = {"user": "ada", "cart": {"apple": 2, "plum": 5}, "theme": "dark"}
    assert orjson.loads(await s.get(b"s1")) == want
    assert await s.get(b"s2") == b"[1]"


async def test_merges_apply_in_order_around_puts_deletes_and_range_deletes(store):
    c = await store.create_column_family("c", merge_operator=StringAppend(b","))
    await c.merge(b"fresh", b"a")  # onto nothing
    await c.put(b"k", b"old")
    await c.merge(b"k", b"x")
    await c.delete(b"d")
    await c.put(b"d", b"base")
    await c.delete(b"d")
    await c.merge(b"d", b"after-delete")
    await c.put(b"r", b"base")
    await c.delete_range(b"q", b"s")
    await c.merge(b"r", b"after-range")
    async with store.batch() as b:
        b.merge(b"k", b"lost", cf=c)
        b.put(b"k", b"a", cf=c)
        b.merge(b"k", b"b", cf=c)
        b.merge(b"k", b"c", cf=c)
    assert await scan(c) == [
        (b"d", b"after-delete"),
        (b"fresh", b"a"),
        (b"k", b"a,b,c"),
        (b"r", b"after-range"),
    ]
    await c.put(b"k", b"replaced")
    assert await c.get(b"k") == b"replaced"


async def test_a_snapshot_reads_the_operands_written_before_it_only(store):
    c = await store.create_column_family("c", merge_operator=Int64Add())
    for _ in range(10):
        await c.merge(b"hits", b"1")
    snap = store.snapshot()
    for _ in range(200):  # past any write-time fold threshold
        await c.merge(b"hits", b"1")
    await store.flush()
    assert await c.get(b"hits", snapshot=snap) == b"10"
    assert await scan(c, snapshot=snap) == [(b"hits", b"10")]
    assert await c.get(b"hits") == b"210"
    snap.release()
    await store.compact_range(cf=c)
    assert await c.get(b"hits") == b"210"


async def test_operands_over_an_expiring_base_keep_its_expiry_then_apply_to_nothing(store, clock):
    c = await store.create_column_family("c", merge_operator=Int64Add())
    await c.put(b"n", b"10", ttl=5)
    await c.merge(b"n", b"1")
    await c.merge(b"n", b"2")
    assert await c.get(b"n") == b"13"
    assert await c.ttl(b"n") == 5.0
    await store.flush()
    clock.advance(5)
    assert await c.get(b"n") == b"3"  # the base expired; the operands are still there
    assert await c.ttl(b"n") == math.inf
    assert await c.expire(b"n", 10) is True
    assert await c.ttl(b"n") == 10.0
    await c.merge(b"n", b"4")
    assert await c.get(b"n") == b"7"
    clock.advance(10)
    assert await c.get(b"n") == b"4"
    await store.compact_range(cf=c)
    assert await scan(c) == [(b"n", b"4")]


async def test_a_raising_operator_fails_only_the_reads_of_its_key_and_changes_nothing(opener):
    db = await opener.open(merge_operator=Concat())
    await db.put(b"k", b"base")
    await db.merge(b"k", b"bad")
    await db.merge(b"other", b"fine")
    for _ in range(2):  # a failed read leaves nothing behind: the next one fails alike
        with pytest.raises(Boom):
            await db.get(b"k")
    with pytest.raises(Boom):
        await db.get_many([b"other", b"k"])
    with pytest.raises(Boom):
        await scan(db)
    with pytest.raises(Boom):
        await db.ttl(b"k")
    with pytest.raises(Boom):
        await db.expire(b"k", 10)
    assert await db.get(b"other") == b"fine"
    assert await scan(db, b"l") == [(b"other", b"fine")]
    await db.flush()
    await db.compact_range()
    with pytest.raises(Boom):
        await db.get(b"k")
    assert await db.get(b"other") == b"fine"
    if opener.can_reopen:
        db = await opener.reopen(db)
        with pytest.raises(Boom):
            await db.get(b"k")
    await db.put(b"k", b"fresh")  # a put replaces the broken chain
    await db.merge(b"k", b"+1")
    assert await scan(db) == [(b"k", b"fresh+1"), (b"other", b"fine")]


async def test_refused_merges_write_nothing(opener):
    db = await opener.open(merge_operator=Picky())
    plain = await db.create_column_family("plain")
    ints = await db.create_column_family("ints", merge_operator=Int64Add())
    await db.merge(b"k", b"a")
    await ints.merge(b"n", b"5")
    before = await dump(db, plain, ints)
    with pytest.raises(Boom, match="no bangs"):
        await db.merge(b"k", b"!b")
    with pytest.raises(Boom, match="no bangs"):
        await db.merge(b"k", b"!b", sync=True)
    with pytest.raises(aiokv.InvalidArgumentError, match="no merge operator"):
        await plain.merge(b"k", b"1")
    for operand in (b"x", b"1.5", b" 1", b"1" * 21, b""):
        with pytest.raises(aiokv.InvalidArgumentError):
            await ints.merge(b"n", operand)
    b = db.batch()
    b.put(b"x", b"y")
    with pytest.raises(Boom):
        b.merge(b"k", b"!c")
    with pytest.raises(aiokv.InvalidArgumentError):
        b.merge(b"k", b"1", cf=plain)
    with pytest.raises(aiokv.InvalidArgumentError):
        b.merge(b"n", b"one", cf=ints)
    assert len(b) == 1  # the refused ops left the batch as it was
    b.discard()
    assert await dump(db, plain, ints) == before
    assert await db.get(b"k") == b"a"
    assert await ints.get(b"n") == b"5"


async def test_merges_in_a_cross_family_batch_land_together(store):
    counters = await store.create_column_family("counters", merge_operator=Int64Add())
    await counters.merge(b"orders", b"10")
    async with store.batch() as b:
        b.put(b"order:1", b"{...}")
        b.merge(b"orders", b"1", cf=counters)
        b.merge(b"orders", b"1", cf=counters)
    assert await store.get(b"order:1") == b"{...}"
    assert await counters.get(b"orders") == b"12"
    with pytest.raises(aiokv.InvalidArgumentError):
        async with store.batch() as b:
            b.merge(b"orders", b"1", cf=counters)
            b.put(b"order:2", b"{...}")
            b.merge(b"orders", b"one", cf=counters)
    assert await counters.get(b"orders") == b"12"
    assert await store.get(b"order:2") is None
