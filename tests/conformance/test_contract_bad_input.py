"""The contract of bad input: every engine refuses the same calls with the same error types,
and a refused call leaves the store (and a batch being built) exactly as it was."""

from __future__ import annotations

import math

import pytest

import aiokv
from aiokv.merge import Int64Add
from tests.conformance.harness import dump

SMALL = {"max_key_size": 8, "max_value_size": 16, "merge_operator": Int64Add()}
TypeErr, ArgErr = aiokv.InvalidTypeError, aiokv.InvalidArgumentError


@pytest.fixture
async def small(opener):
    db = await opener.open(**SMALL)
    other = await db.create_column_family("other")
    await db.put(b"keep", b"this", ttl=100)
    await db.merge(b"n", b"5")
    await other.put(b"o", b"x")
    return db, other


def bad_calls(db, other, dropped):
    """(error type, the call) for each refused call."""
    return [
        (TypeErr, lambda: db.put(123, b"v")),
        (TypeErr, lambda: db.put(b"k", None)),
        (ArgErr, lambda: db.put(b"", b"v")),
        (ArgErr, lambda: db.put(b"k" * 9, b"v")),
        (ArgErr, lambda: db.put(b"k", b"v" * 17)),
        (ArgErr, lambda: db.put("\ud800", b"v")),
        (ArgErr, lambda: db.put(b"keep", b"v", ttl=0)),
        (ArgErr, lambda: db.put(b"keep", b"v", ttl=-1)),
        (ArgErr, lambda: db.put(b"keep", b"v", ttl=math.nan)),
        (ArgErr, lambda: db.put(b"keep", b"v", ttl=math.inf)),
        (TypeErr, lambda: db.put(b"keep", b"v", ttl="1")),
        (TypeErr, lambda: db.put(b"keep", b"v", ttl=True)),
        (TypeErr, lambda: db.put(b"keep", b"v", sync="yes")),
        (ArgErr, lambda: db.put(b"keep", b"v", sync=True, buffered=True)),
        (TypeErr, lambda: db.put(b"keep", b"v", cf="other")),
        (aiokv.ColumnFamilyError, lambda: db.put(b"keep", b"v", cf=dropped)),
        (ArgErr, lambda: db.delete(b"")),
        (ArgErr, lambda: db.delete_range(b"b", b"a")),
        (ArgErr, lambda: db.delete_range(b"", b"a")),
        (ArgErr, lambda: db.merge(b"n", b"x")),
        (ArgErr, lambda: db.merge(b"n", b"1" * 21)),
        (ArgErr, lambda: other.merge(b"o", b"1")),
        (ArgErr, lambda: db.expire(b"keep", 0)),
        (TypeErr, lambda: db.expire(b"keep", "10")),
        (TypeErr, lambda: db.put_many([b"only-one-element"])),
        (TypeErr, lambda: db.write("not a batch")),
        (TypeErr, lambda: db.get_many(b"keep")),
        (ArgErr, lambda: db.get(b"")),
        (ArgErr, lambda: db.get_many([b"keep", b"123456789"])),
        (TypeErr, lambda: db.get(b"keep", cf="other")),
        (ArgErr, lambda: db.compact_range(b"z", b"a")),
        (TypeErr, lambda: db.compact_range(3, None)),
    ]


async def test_bad_calls_raise_their_error_and_change_nothing(small, opener):
    db, other = small
    dropped = await db.create_column_family("dropped")
    await db.drop_column_family(dropped)
    before = await dump(db, other)
    for error, call in bad_calls(db, other, dropped):
        with pytest.raises(error):
            await call()
    with pytest.raises(TypeErr):
        db.scan(start=5)
    with pytest.raises(TypeErr):
        db.scan(reverse="yes")
    with pytest.raises(TypeErr):
        db.scan(prefix=1.5)
    with pytest.raises(TypeErr):
        db.batch(sync=1)
    assert await dump(db, other) == before
    assert await db.ttl(b"keep") == 100.0
    assert await db.get(b"n") == b"5"
    if opener.can_reopen:
        db = await opener.reopen(db)
        assert await dump(db, db.column_family("other")) == before


async def test_a_bad_op_leaves_the_batch_and_the_store_unchanged(small):
    db, other = small
    before = await dump(db, other)
    b = db.batch()
    b.put(b"a", b"1")
    b.put(b"a", b"1", cf=other)
    with pytest.raises(ArgErr):
        b.put(b"b", b"x" * 100)
    with pytest.raises(ArgErr):
        b.delete_range(b"z", b"a")
    with pytest.raises(TypeErr):
        b.put(b"c", b"v", ttl="1")
    with pytest.raises(ArgErr):
        b.merge(b"n", b"one")
    with pytest.raises(TypeErr):
        b.delete(None)
    assert len(b) == 2
    assert await dump(db, other) == before
    await b.commit()
    assert await db.get(b"a") == b"1"
    assert await other.get(b"a") == b"1"


async def test_a_closed_store_refuses_every_call(opener):
    db = await opener.open()
    await db.put(b"k", b"v")
    it = db.scan()
    await db.aclose()
    await db.aclose()  # idempotent
    assert db.closed
    for call in (
        lambda: db.get(b"k"),
        lambda: db.get_many([b"k"]),
        lambda: db.put(b"k", b"v"),
        lambda: db.delete(b"k"),
        lambda: db.delete_range(b"a", b"b"),
        lambda: db.flush(),
        lambda: db.create_column_family("x"),
        lambda: it.__anext__(),
    ):
        with pytest.raises(aiokv.ClosedError):
            await call()
    with pytest.raises(aiokv.ClosedError):
        db.snapshot()
    with pytest.raises(aiokv.ClosedError):
        db.batch()
    with pytest.raises(aiokv.ClosedError):
        db.list_column_families()
