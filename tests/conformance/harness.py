"""The stores the contract runs on, and what each can do beyond the shared API.

A `Kind` names one store configuration: the dict model, or an engine on one kind of storage
(in memory, a MemFileSystem, the real disk).  An `Opener` opens, reopens and crashes stores of
one kind, always with the injected `Clock`, and closes (after `check()`) whatever it opened.
Tests ask the opener's capability flags (`can_reopen`, `can_crash`) before a reopen or crash
step; nothing in a test looks at a store's name.

B+Tree kinds are listed here and join the parameters as soon as aiokv.options.ENGINES names
"btree" (issue 5): no skip marker, so once the engine is wired in, every failure shows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import aiokv
from aiokv.engine.memfs import CrashMode, MemFileSystem
from aiokv.options import ENGINES
from tests.model import Clock, ModelDB
from tests.tiny import TINY_LSM

MEMFS_PATH = "/db"


@dataclasses.dataclass(frozen=True)
class Kind:
    """One store configuration the contract runs on."""

    name: str
    engine: str | None  # None: the dict model
    storage: str  # "model", "memory", "memfs" or "disk"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def can_reopen(self) -> bool:
        """Its data survives a close and an open of the same path."""
        return self.storage in ("memfs", "disk")

    @property
    def can_crash(self) -> bool:
        """It can be cut off as by a power cut (a crash clone of its MemFileSystem)."""
        return self.storage == "memfs"


SMALL_WAL = {"wal_segment_size": 64 * 1024}

ALL_KINDS = (
    Kind("model", None, "model"),
    Kind("lsm-in-memory", "lsm", "memory"),
    Kind("lsm-memfs", "lsm", "memfs", SMALL_WAL),
    Kind("lsm-disk", "lsm", "disk"),
    Kind("lsm-tiny", "lsm", "memfs", {**SMALL_WAL, **TINY_LSM}),
    Kind("btree-in-memory", "btree", "memory"),
    Kind("btree-memfs", "btree", "memfs"),
    Kind("btree-disk", "btree", "disk"),
)

# The kinds whose engine exists in this tree: the model, and every engine aiokv.open accepts.
KINDS = tuple(k for k in ALL_KINDS if k.engine is None or k.engine in ENGINES)
WAITING_FOR_ENGINE = tuple(k.name for k in ALL_KINDS if k not in KINDS)


class Opener:
    """Opens stores of one kind at one place; closes every store it opened at `close_all`."""

    def __init__(self, kind: Kind, tmp_path: Path) -> None:
        self.kind = kind
        self.clock = Clock()
        self.fs = MemFileSystem() if kind.storage == "memfs" else None
        self.path: str | Path | None = {
            "memfs": MEMFS_PATH,
            "disk": tmp_path / "db",
        }.get(kind.storage)
        self.last_options: dict[str, Any] = {}
        self._opened: list[Any] = []

    @property
    def can_reopen(self) -> bool:
        return self.kind.can_reopen

    @property
    def can_crash(self) -> bool:
        return self.kind.can_crash

    async def open(self, **options: Any) -> Any:
        """A new store of this kind, with the kind's options, the clock and `options`."""
        self.last_options = options
        opts = {**self.kind.options, "clock": self.clock, **options}
        if self.kind.engine is None:
            db: Any = ModelDB(**opts)
        else:
            if self.fs is not None:
                opts["fs"] = self.fs
            db = await aiokv.open(self.path, engine=self.kind.engine, **opts)
        self._opened.append(db)
        return db

    async def reopen(self, db: Any, options: dict[str, Any] | None = None) -> Any:
        """Closes `db` cleanly and opens the same store again, with `options` (None: the
        options of the last open).  Only for kinds that can_reopen."""
        assert self.can_reopen, f"{self.kind.name} cannot reopen"
        db.check()
        await db.aclose()
        return await self.open(**(self.last_options if options is None else options))

    async def crash(self, db: Any) -> Any:
        """Cuts the power now (synced bytes kept, the rest dropped), then opens what is left
        with the last options.  Only for kinds that can_crash."""
        assert self.can_crash and self.fs is not None, f"{self.kind.name} cannot crash"
        image = self.fs.crash_clone(CrashMode.DROP_UNSYNCED)
        await db.aclose()
        self.fs = image
        return await self.open(**self.last_options)

    async def close_all(self) -> None:
        """Closes every store still open, checking its structures first."""
        opened, self._opened = self._opened, []
        for db in opened:
            if not db.closed:
                try:
                    db.check()
                finally:  # a failed check must not leave the store open (a second error)
                    await db.aclose()


async def scan(store: Any, *args: Any, **kw: Any) -> list[tuple[bytes, bytes]]:
    return [kv async for kv in store.scan(*args, **kw)]


async def dump(db: Any, *cfs: Any) -> list[list[tuple[bytes, bytes]]]:
    """Everything a refused call must leave as it was: the scan of the default family and of
    each of `cfs`, and the families' names."""
    out: list[Any] = [db.list_column_families(), await scan(db)]
    for cf in cfs:
        out.append(await scan(cf))
    return out
