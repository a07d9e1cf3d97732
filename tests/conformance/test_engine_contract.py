"""The engine contract: the same behaviour from every engine and from the dict model.

Point operations, batches, range deletes and scans.  Snapshots, families, TTL, merges, reopen
and bad input have files of their own (test_contract_*.py).
"""

from __future__ import annotations

import random

import pytest

import aiokv
from tests.conformance.harness import scan
from tests.model import ModelDB

# -- point operations ---------------------------------------------------------------------------


async def test_point_operations(store):
    await store.put(b"a", b"1")
    await store.put(b"b", b"2")
    await store.put(b"a", b"3")
    await store.delete(b"b")
    assert await store.get(b"a") == b"3"
    assert await store.get(b"b") is None
    assert await store.get_many([b"b", b"a", b"zz"]) == [None, b"3", None]


async def test_an_empty_value_is_a_value_and_not_a_missing_key(store):
    await store.put(b"empty", b"")
    assert await store.get(b"empty") == b""
    assert await store.get_many([b"empty", b"nope"]) == [b"", None]
    assert await scan(store) == [(b"empty", b"")]
    await store.delete(b"empty")
    assert await store.get(b"empty") is None


async def test_str_bytearray_and_memoryview_are_read_as_their_bytes(store):
    await store.put("clé", "välue")
    await store.put(bytearray(b"ba"), memoryview(b"mv"))
    assert await store.get("clé".encode()) == "välue".encode()
    assert await store.get("ba") == b"mv"
    assert await scan(store) == [(b"ba", b"mv"), ("clé".encode(), "välue".encode())]


async def test_binary_keys_sort_bytewise_with_nul_and_ff_bytes(store):
    keys = [b"\x00", b"\x00\x00", b"\x00\xff", b"\x01", b"a", b"a\x00", b"ab", b"\xff", b"\xff\xff"]
    for k in reversed(keys):
        await store.put(k, k.hex().encode())
    assert [k for k, _ in await scan(store)] == keys
    assert [k for k, _ in await scan(store, reverse=True)] == keys[::-1]
    assert await store.get_many(keys) == [k.hex().encode() for k in keys]


async def test_deleting_an_absent_key_is_not_an_error_and_writes_no_value(store):
    await store.delete(b"never")
    assert await store.get(b"never") is None
    assert await scan(store) == []


async def test_get_many_answers_in_order_with_repeats_and_an_empty_list(store):
    await store.put_many([(b"x", b"1"), (b"y", b"2")])
    assert await store.get_many([]) == []
    assert await store.get_many([b"y", b"x", b"y", b"q"]) == [b"2", b"1", b"2", None]
    assert await store.get_many(iter([b"x"])) == [b"1"]


async def test_large_keys_and_values_round_trip_through_flush_and_compaction(store):
    big = {
        b"k" * 2000: b"v" * 100_000,
        b"small": b"s",
        b"m" * 300: bytes(range(256)) * 40,
    }
    await store.put_many(big)
    await store.flush()
    await store.put(b"later", b"x" * 9000)
    assert await store.get_many(list(big)) == list(big.values())
    await store.compact_range()
    assert await scan(store) == sorted([*big.items(), (b"later", b"x" * 9000)])
    await store.put(b"k" * 2000, b"shrunk")
    assert await store.get(b"k" * 2000) == b"shrunk"


# -- batches ------------------------------------------------------------------------------------


async def test_batch_and_range_delete(store):
    async with store.batch() as b:
        for i in range(50):
            b.put(f"k{i:02d}", f"v{i}")
        b.delete(b"k07")
        b.delete_range(b"k10", b"k20")
    got = await scan(store)
    want = [(f"k{i:02d}".encode(), f"v{i}".encode()) for i in range(50) if i != 7]
    assert got == [kv for kv in want if not b"k10" <= kv[0] < b"k20"]


async def test_a_batch_is_invisible_until_it_commits(store):
    await store.put(b"a", b"old")
    b = store.batch()
    b.put(b"a", b"new")
    b.put(b"b", b"new")
    b.delete_range(b"a", b"z")
    assert len(b) == 3
    assert await scan(store) == [(b"a", b"old")]
    b.put(b"c", b"new")
    await store.write(b)
    assert await scan(store) == [(b"c", b"new")]


async def test_ops_in_one_batch_apply_in_the_order_they_were_added(store):
    await store.put_many({b"p1": b"old", b"p2": b"old", b"r5": b"old"})
    async with store.batch() as b:
        b.put(b"a", b"1")
        b.delete(b"a")  # put then delete: gone
        b.delete(b"p1")
        b.put(b"p1", b"2")  # delete then put: present
        b.delete_range(b"r0", b"r9")
        b.put(b"r3", b"3")  # a put inside a range deleted earlier in the batch: present
        b.put(b"s1", b"4")
        b.delete_range(b"s0", b"s9")  # a put then a range over it: gone
    assert await scan(store) == [(b"p1", b"2"), (b"p2", b"old"), (b"r3", b"3")]


async def test_a_batch_left_by_an_exception_is_discarded_whole(store):
    await store.put(b"keep", b"1")
    with pytest.raises(ZeroDivisionError):
        async with store.batch() as b:
            b.put(b"x", b"1")
            b.delete(b"keep")
            raise ZeroDivisionError
    assert await scan(store) == [(b"keep", b"1")]
    with pytest.raises(aiokv.ClosedError):
        b.put(b"y", b"2")


async def test_a_batch_commits_once(store):
    b = store.batch()
    b.put(b"k", b"v")
    await b.commit()
    with pytest.raises(aiokv.ClosedError):
        await b.commit()
    with pytest.raises(aiokv.ClosedError):
        b.put(b"k2", b"v")
    assert await scan(store) == [(b"k", b"v")]


@pytest.mark.parametrize("mode", [{}, {"sync": True}, {"buffered": True}])
async def test_every_durability_mode_is_visible_at_once_to_reads(store, mode):
    await store.put(b"a", b"1", **mode)
    await store.put_many({b"b": b"2"}, **mode)
    await store.delete(b"a", **mode)
    async with store.batch(**mode) as b:
        b.put(b"c", b"3")
    async with store.batch(**mode):
        pass  # an empty batch commits nothing
    assert await scan(store) == [(b"b", b"2"), (b"c", b"3")]


# -- range deletes ------------------------------------------------------------------------------


async def test_delete_range_is_start_inclusive_end_exclusive_and_empty_when_equal(store):
    await store.put_many({k: b"v" for k in (b"a", b"b", b"ba", b"bz", b"c", b"d")})
    await store.delete_range(b"b", b"b")
    assert len(await scan(store)) == 6
    await store.delete_range(b"b", b"c")
    assert [k for k, _ in await scan(store)] == [b"a", b"c", b"d"]
    await store.delete_range(b"0", b"a\x00")
    assert [k for k, _ in await scan(store)] == [b"c", b"d"]


async def test_delete_range_covers_flushed_data_and_later_puts_come_back(store):
    await store.put_many({b"k%03d" % i: b"old" for i in range(300)})
    await store.flush()
    await store.delete_range(b"k100", b"k200")
    assert await store.get(b"k150") is None
    assert await store.get(b"k200") == b"old"
    await store.put(b"k150", b"new")
    await store.flush()
    await store.compact_range()
    assert await store.get_many([b"k099", b"k100", b"k150", b"k199"]) == [
        b"old",
        None,
        b"new",
        None,
    ]
    assert len(await scan(store)) == 201
    assert [k for k, _ in await scan(store, b"k098", b"k202")] == [
        b"k098",
        b"k099",
        b"k150",
        b"k200",
        b"k201",
    ]


# -- scans --------------------------------------------------------------------------------------


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


async def test_scan_bounds_one_sided_empty_and_inverted(store):
    keys = [b"a", b"b", b"c", b"d"]
    await store.put_many({k: k for k in keys})
    assert [k for k, _ in await scan(store, b"b")] == [b"b", b"c", b"d"]
    assert [k for k, _ in await scan(store, end=b"c")] == [b"a", b"b"]
    assert [k for k, _ in await scan(store, b"b", reverse=True)] == [b"d", b"c", b"b"]
    assert [k for k, _ in await scan(store, end=b"c", reverse=True)] == [b"b", b"a"]
    assert [k for k, _ in await scan(store, b"", b"b")] == [b"a"]
    assert await scan(store, b"c", b"c") == []
    assert await scan(store, b"d", b"a") == []
    assert await scan(store, b"d", b"a", reverse=True) == []
    assert await scan(store, b"bb", b"bc") == []


async def test_prefix_scans_combine_with_bounds_and_reverse(store):
    keys = [b"a", b"ab", b"ab\x00", b"abc", b"ab\xff", b"ab\xff\xff", b"ac", b"b", b"\xff\xff"]
    await store.put_many({k: b"v" for k in keys})
    ab = [b"ab", b"ab\x00", b"abc", b"ab\xff", b"ab\xff\xff"]
    assert [k for k, _ in await scan(store, prefix=b"ab")] == ab
    assert [k for k, _ in await scan(store, prefix=b"ab", reverse=True)] == ab[::-1]
    assert [k for k, _ in await scan(store, prefix=b"ab\xff")] == [b"ab\xff", b"ab\xff\xff"]
    assert [k for k, _ in await scan(store, prefix=b"\xff")] == [b"\xff\xff"]
    assert [k for k, _ in await scan(store, prefix=b"")] == keys
    assert [k for k, _ in await scan(store, b"ab\x01", prefix=b"ab")] == ab[2:]
    assert [
        k for k, _ in await scan(store, b"ab\x01", b"ab\xff\x00", prefix=b"ab", reverse=True)
    ] == [
        b"ab\xff",
        b"abc",
    ]
    assert await scan(store, b"b", prefix=b"a") == []
    assert await scan(store, prefix=b"zz") == []


async def test_long_scans_cross_chunks_in_both_directions_over_flushed_and_fresh_data(store):
    await store.put_many({b"k%05d" % i: b"%d" % i for i in range(0, 3000, 2)})
    await store.flush()
    await store.put_many({b"k%05d" % i: b"%d" % i for i in range(1, 3000, 2)})
    await store.delete_range(b"k01000", b"k01100")
    want = [(b"k%05d" % i, b"%d" % i) for i in range(3000) if not 1000 <= i < 1100]
    assert await scan(store) == want
    assert await scan(store, reverse=True) == want[::-1]
    assert await scan(store, b"k00500", b"k02500") == want[500:2400]
    assert await scan(store, b"k00500", b"k02500", reverse=True) == want[500:2400][::-1]


async def test_a_scan_reads_the_state_at_its_creation(store):
    await store.put_many({b"a": b"1", b"b": b"1", b"c": b"1"})
    it = store.scan()
    rev = store.scan(reverse=True)
    await store.put(b"a", b"2")
    await store.delete(b"b")
    await store.put(b"d", b"new")
    assert [kv async for kv in it] == [(b"a", b"1"), (b"b", b"1"), (b"c", b"1")]
    assert [kv async for kv in rev] == [(b"c", b"1"), (b"b", b"1"), (b"a", b"1")]
    assert await scan(store) == [(b"a", b"2"), (b"c", b"1"), (b"d", b"new")]


async def test_a_scan_closed_early_stops_yielding(store):
    await store.put_many({b"k%04d" % i: b"v" for i in range(1000)})
    it = store.scan()
    first = [await it.__anext__() for _ in range(3)]
    assert [k for k, _ in first] == [b"k0000", b"k0001", b"k0002"]
    await it.aclose()
    assert [kv async for kv in it] == []
    assert len(await scan(store)) == 1000


# -- histories against the model ----------------------------------------------------------------


async def test_random_history_matches_the_model(store):
    rng = random.Random(2)
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
    assert await scan(store, reverse=True) == await scan(model, reverse=True)


async def test_flush_and_full_compaction_keep_every_answer(store):
    rng = random.Random(11)
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
