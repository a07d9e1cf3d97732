"""Hypothesis state machine: aiokv against the dict model, with snapshot, reopen and crash steps.

Hypothesis rules cannot be async, so the machine owns an asyncio.Runner and runs each step in it.
A crash keeps exactly what was synced (CrashMode.DROP_UNSYNCED), so after it the store must
equal the model as of the last synced write (a sync group makes everything before it durable),
or as of a later write: a flush or compaction (ours, or one running in the background) makes
every write before it durable too.  So the machine keeps the model's states since the last
synced write, and a recovered store must equal one of them.
"""

from __future__ import annotations

import asyncio

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import aiokv
from aiokv.engine.memfs import CrashMode, MemFileSystem
from tests.tiny import TINY_LSM

keys = st.binary(min_size=1, max_size=3)
values = st.binary(max_size=8)
durability = st.sampled_from([{}, {"sync": True}, {"buffered": True}])


async def _open(fs: MemFileSystem) -> aiokv.DB:
    return await aiokv.open("/db", fs=fs, **TINY_LSM)


class DbMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.fs = MemFileSystem()
        self.db = self.run(_open(self.fs))
        self.model: dict[bytes, bytes] = {}
        self.durable: dict[bytes, bytes] = {}
        self.since: list[dict[bytes, bytes]] = []  # states after durable, oldest first
        self.snap: tuple[aiokv.Snapshot, dict[bytes, bytes]] | None = None

    def run(self, coro):
        return self.runner.run(coro)

    def _written(self, mode: dict) -> None:
        if mode.get("sync"):
            self.durable = dict(self.model)
            self.since = []
        else:
            self.since.append(dict(self.model))

    @rule(k=keys, v=values, mode=durability)
    def put(self, k, v, mode):
        self.run(self.db.put(k, v, **mode))
        self.model[k] = v
        self._written(mode)

    @rule(k=keys, mode=durability)
    def delete(self, k, mode):
        self.run(self.db.delete(k, **mode))
        self.model.pop(k, None)
        self._written(mode)

    @rule(a=keys, b=keys, mode=durability)
    def delete_range(self, a, b, mode):
        lo, hi = min(a, b), max(a, b)
        self.run(self.db.delete_range(lo, hi, **mode))
        for k in [k for k in self.model if lo <= k < hi]:
            del self.model[k]
        self._written(mode)

    @rule(items=st.lists(st.tuples(keys, st.none() | values), max_size=5), mode=durability)
    def batch(self, items, mode):
        async def go():
            async with self.db.batch(**mode) as b:
                for k, v in items:
                    b.delete(k) if v is None else b.put(k, v)

        self.run(go())
        for k, v in items:
            if v is None:
                self.model.pop(k, None)
            else:
                self.model[k] = v
        self._written(mode)

    @precondition(lambda self: self.snap is None)
    @rule()
    def take_snapshot(self):
        self.snap = (self.db.snapshot(), dict(self.model))

    @precondition(lambda self: self.snap is not None)
    @rule()
    def check_and_release_snapshot(self):
        assert self.snap is not None
        snap, seen = self.snap

        async def go():
            return [kv async for kv in snap.scan()]

        assert self.run(go()) == sorted(seen.items())
        snap.release()
        self.snap = None

    def _drop_snapshot(self) -> None:
        if self.snap is not None:
            self.snap[0].release()
            self.snap = None

    @rule()
    def reopen(self):
        self._drop_snapshot()
        self.run(self.db.aclose())
        self.db = self.run(_open(self.fs))
        self.durable = dict(self.model)  # a clean close syncs everything
        self.since = []

    @rule()
    def crash(self):
        self._drop_snapshot()
        image = self.fs.crash_clone(CrashMode.DROP_UNSYNCED)
        self.run(self.db.aclose())
        self.fs = image
        self.db = self.run(_open(self.fs))

        async def go():
            return {k: v async for k, v in self.db.scan()}

        got = self.run(go())
        assert got == self.durable or got in self.since
        self.model = dict(got)
        self.durable = dict(got)
        self.since = []

    @rule()
    def flush(self):
        self.run(self.db.flush())

    @rule()
    def compact(self):
        self.run(self.db.compact_range())

    @rule(k=keys)
    def get(self, k):
        assert self.run(self.db.get(k)) == self.model.get(k)

    @invariant()
    def same_contents_and_structure(self):
        async def go():
            return [kv async for kv in self.db.scan()]

        assert self.run(go()) == sorted(self.model.items())
        self.db.check()

    def teardown(self):
        self._drop_snapshot()
        self.run(self.db.aclose())
        self.runner.close()


DbMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestDbMachine = DbMachine.TestCase
