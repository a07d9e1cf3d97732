"""Hypothesis state machine: TTL and merge operands against a model, across flushes,
compactions, TTL GC passes, snapshots and reopens.

The store has two families: the default one (values with per-key TTLs) and "n" (int64
counters, merge operands over puts and deletes, with a family TTL).  Time is a fake clock the
machine advances.  After every step, every key reads as the model says: an expired or deleted
key never comes back with an older value, whatever level the older value sat in, and a
counter always equals the sum of the operands since its last put or delete.
"""

from __future__ import annotations

import asyncio

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import aiokv
from aiokv.engine.memfs import MemFileSystem
from aiokv.merge import Int64Add
from tests.tiny import TINY_LSM

keys = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"])
values = st.binary(min_size=1, max_size=6)
ttls = st.none() | st.sampled_from([1, 2, 5, 30])
FAMILY_TTL = 20.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class TtlMergeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.fs = MemFileSystem()
        self.clock = Clock()
        self.db = self.run(self._open())
        self.n = self.db.column_family("n")
        # key -> (value, expiry in seconds or None)
        self.kv: dict[bytes, tuple[bytes, float | None]] = {}
        # key -> (base value or None, base expiry, sum of the operands since or None)
        self.counters: dict[bytes, tuple[int | None, float, int | None]] = {}
        self.snap: tuple[aiokv.Snapshot, dict[bytes, bytes | None]] | None = None

    async def _open(self) -> aiokv.DB:
        return await aiokv.open(
            "/db",
            fs=self.fs,
            clock=self.clock,
            column_families={"n": {"merge_operator": Int64Add(), "ttl": FAMILY_TTL}},
            **TINY_LSM,
        )

    def run(self, coro):
        return self.runner.run(coro)

    def _live(self, k: bytes) -> bytes | None:
        got = self.kv.get(k)
        if got is None or (got[1] is not None and got[1] <= self.clock.now):
            return None
        return got[0]

    def _counter(self, k: bytes) -> bytes | None:
        """Operands carry no expiry: once the base expires they apply to nothing."""
        got = self.counters.get(k)
        if got is None:
            return None
        base, exp, ops = got
        live = base if base is not None and exp > self.clock.now else None
        if ops is None:
            return None if live is None else str(live).encode()
        return str((live or 0) + ops).encode()

    # -- writes ---------------------------------------------------------------------------------

    @rule(k=keys, v=values, ttl=ttls)
    def put(self, k, v, ttl):
        self.run(self.db.put(k, v, ttl=ttl))
        self.kv[k] = (v, None if ttl is None else self.clock.now + ttl)

    @rule(k=keys)
    def delete(self, k):
        self.run(self.db.delete(k))
        self.kv.pop(k, None)

    @rule(a=keys, b=keys)
    def delete_range(self, a, b):
        lo, hi = min(a, b), max(a, b)
        self.run(self.db.delete_range(lo, hi))
        for k in [k for k in self.kv if lo <= k < hi]:
            del self.kv[k]

    @rule(k=keys, ttl=ttls)
    def expire(self, k, ttl):
        found = self.run(self.db.expire(k, ttl))
        live = self._live(k)
        assert found == (live is not None)
        if live is not None:
            self.kv[k] = (live, None if ttl is None else self.clock.now + ttl)

    @rule(k=keys, d=st.integers(-5, 5))
    def merge(self, k, d):
        self.run(self.n.merge(k, str(d).encode()))
        base, exp, ops = self.counters.get(k, (None, 0.0, None))
        self.counters[k] = (base, exp, (ops or 0) + d)

    @rule(k=keys, x=st.integers(-100, 100))
    def put_counter(self, k, x):
        self.run(self.n.put(k, str(x).encode()))
        self.counters[k] = (x, self.clock.now + FAMILY_TTL, None)

    @rule(k=keys)
    def delete_counter(self, k):
        self.run(self.n.delete(k))
        self.counters.pop(k, None)

    # -- time and background work -------------------------------------------------------------

    @rule(dt=st.sampled_from([0.5, 1.0, 3.0, 10.0, 25.0]))
    def advance(self, dt):
        self.clock.now += dt

    @rule()
    def flush(self):
        self.run(self.db.flush())

    @rule()
    def compact(self):
        self.run(self.db.compact_range())
        self.run(self.db.compact_range(cf=self.n))

    @rule()
    def collect_expired(self):
        self.run(self.db.collect_expired())

    @precondition(lambda self: self.snap is None)
    @rule()
    def take_snapshot(self):
        self.snap = (self.db.snapshot(), {k: self._live(k) for k in (b"a", b"b", b"c", b"d")})

    @precondition(lambda self: self.snap is not None)
    @rule()
    def check_and_release_snapshot(self):
        assert self.snap is not None
        snap, want = self.snap
        for k, v in want.items():
            got = self.run(self.db.get(k, snapshot=snap))
            if v is not None and got is None:
                continue  # it expired since (reads never return expired values)
            assert got == v, (k, got, v)
        snap.release()
        self.snap = None

    @rule()
    def reopen(self):
        if self.snap is not None:
            self.snap[0].release()
            self.snap = None
        self.run(self.db.aclose())
        self.db = self.run(self._open())
        self.n = self.db.column_family("n")

    # -- checks ---------------------------------------------------------------------------------

    @invariant()
    def reads_match_the_model(self):
        async def go():
            for k in (b"a", b"b", b"c", b"d", b"e", b"f", b"g", b"h"):
                assert await self.db.get(k) == self._live(k), k
                assert await self.n.get(k) == self._counter(k), k
            want = sorted((k, v) for k in self.kv if (v := self._live(k)) is not None)
            assert [kv async for kv in self.db.scan()] == want
            got_n = [kv async for kv in self.n.scan()]
            assert got_n == sorted((k, c) for k in self.counters if (c := self._counter(k)))

        self.run(go())

    def teardown(self):
        if self.snap is not None:
            self.snap[0].release()
        self.run(self.db.aclose())
        self.runner.close()


TtlMergeMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=40, deadline=None)
test_ttl_and_merge_against_the_model = TtlMergeMachine.TestCase
