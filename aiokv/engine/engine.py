"""The Engine contract: what the async facade (aiokv.db.DB) needs of a storage engine.

Reads are synchronous and run inline on the event loop (they never do blocking I/O); writes go
through the engine's group committer.  `seq=None` reads the newest published state.  Both
engines (LSM now, B+Tree with issue 5) implement this, and one contract test suite runs on both
and on a dict model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiokv.engine.batch_format import Op
from aiokv.engine.commit import GroupCommitter
from aiokv.engine.memtable import Entry
from aiokv.family_options import FamilyOptions
from aiokv.merge import MergeOperator


class FamilyInfo(Protocol):
    """What the facade reads of a live column family."""

    @property
    def name(self) -> str: ...

    @property
    def opts(self) -> FamilyOptions: ...

    @property
    def op(self) -> MergeOperator | None: ...


class Engine(Protocol):
    committer: GroupCommitter
    # The default family's newest entries by key, for the facade's get fast path: an entry
    # whose kind is PUT is current.  An engine without such a table gives an empty dict.
    hot_table: dict[bytes, Entry]
    on_poison: Callable[[BaseException], None] | None
    # Called when hot_table is replaced (a memtable switch); the facade re-reads hot_table.
    on_switch: Callable[[], None] | None

    def get(self, cf: int, key: bytes, seq: int | None) -> bytes | None: ...

    def get_latest(self, key: bytes) -> bytes | None: ...

    def get_many(self, cf: int, keys: list[bytes], seq: int | None) -> list[bytes | None]: ...

    def scan_chunk(
        self,
        cf: int,
        lo: bytes | None,
        lo_inclusive: bool,
        hi: bytes | None,
        reverse: bool,
        seq: int,
        limit: int,
    ) -> tuple[list[tuple[bytes, bytes]], bytes | None]: ...

    def acquire_snapshot(self, seq: int | None = None) -> int: ...

    def release_snapshot(self, seq: int) -> None: ...

    def has_family(self, cf: int) -> bool: ...

    @property
    def families(self) -> Mapping[int, FamilyInfo]: ...

    def family_id(self, name: str) -> int | None: ...

    async def create_family(self, name: str, given: dict[str, Any]) -> int: ...

    async def drop_family(self, cf: int) -> None: ...

    def entry(self, cf: int, key: bytes) -> Entry | None:
        """The key's newest visible state (PUT or PUT_EXPIRING, merges folded), or None."""

    async def collect_expired(self) -> int: ...

    def check(self) -> None: ...

    def stats_dict(self, cf: int = 0) -> dict[str, int]: ...

    async def flush(self) -> None: ...

    async def compact_range(self, cf: int, lo: bytes | None, hi: bytes | None) -> None: ...

    async def close(self) -> None: ...

    def abandon(self) -> None: ...

    def apply_ops(self, ops: list[Op], base_seq: int) -> None: ...
