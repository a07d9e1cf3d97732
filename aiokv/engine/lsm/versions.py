"""VersionSet: the current Version of each column family and the manifest that records it.

Recovery (blocking, at open): read CURRENT and the manifest it names, fold its edits into
Versions; then write a fresh manifest holding one snapshot edit and point CURRENT at it.

Concurrency contract: `log_and_apply` is the only way the state changes after open.  It holds
an asyncio lock so that edits reach the manifest one at a time and in the order they take
effect; an edit takes effect (the Version is swapped) only after its record is synced, with no
await between the sync's return and the swap.

Invariant 1: every table a current Version lists was synced, and its directory entry too,
before the edit that added it was written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiokv.engine.fs import FileSystem
from aiokv.engine.lsm.manifest import (
    ManifestReplayError,
    ManifestWriter,
    read_manifest,
    replay_edits,
)
from aiokv.engine.lsm.version import Version
from aiokv.engine.lsm.version_edit import VersionEdit
from aiokv.errors import CorruptionError

MANIFEST_ROLL_SIZE = 4 << 20  # past this a new manifest starts with one snapshot edit

InPool = Callable[..., Awaitable[Any]]


class VersionSet:
    """See the module docstring."""

    def __init__(self, fs: FileSystem, path: str) -> None:
        self.fs = fs
        self.path = path
        self.current: dict[int, Version] = {0: Version()}
        self.next_file_number = 1
        self.log_number = 0  # WAL segments below it are flushed
        self.flushed_seq = 0  # the largest sequence number in any table
        self.pointers: dict[tuple[int, int], bytes] = {}
        # Live families: id -> (name, persisted options blob); ids are never reused.
        self.families: dict[int, tuple[str, bytes]] = {0: ("default", b"")}
        self.max_family_id = 0
        # Per family: every op with a sequence number up to this is in its tables.
        self.family_flushed: dict[int, int] = {}
        self._writer: ManifestWriter | None = None
        self._lock = asyncio.Lock()
        self._inflight: set[asyncio.Future[set[int]]] = set()

    # -- open (blocking, in the pool) -------------------------------------------------------

    def recover(self) -> bool:
        """Loads the state the manifest records; False for a store that has none yet."""
        state = read_manifest(self.fs, self.path)
        if state is None:
            return False
        try:
            rec = replay_edits(state.edits)
        except ManifestReplayError as e:
            raise CorruptionError(state.path, state.offsets[e.index], str(e)) from None
        self.current = dict(rec.versions)
        self.current.setdefault(0, Version())
        self.next_file_number = max(self.next_file_number, rec.next_file_number)
        self.log_number = rec.log_number
        self.flushed_seq = rec.last_seq
        self.pointers = dict(rec.compact_pointers)
        self.families = dict(rec.families)
        self.max_family_id = rec.max_family_id
        self.family_flushed = dict(rec.family_flushed)
        for cf in self.families:
            self.current.setdefault(cf, Version())
        return True

    def start_manifest(
        self, number: int | None = None, snapshot: VersionEdit | None = None
    ) -> None:
        """Writes a new manifest holding the whole state and installs it in CURRENT."""
        if number is None:
            number = self.new_file_number()
        if snapshot is None:
            snapshot = self.snapshot_edit()
        old = self._writer
        self._writer = ManifestWriter.create(self.fs, self.path, number, snapshot)
        if old is not None:
            old.close()

    def snapshot_edit(self) -> VersionEdit:
        edit = VersionEdit(
            log_number=self.log_number,
            next_file_number=self.next_file_number,
            last_seq=self.flushed_seq,
            max_family_id=self.max_family_id,
        )
        edit.added_families.extend((cf, n, o) for cf, (n, o) in sorted(self.families.items()))
        edit.family_flushed.extend(
            (cf, self.family_flushed.get(cf, 0)) for cf in sorted(self.families)
        )
        for cf, v in sorted(self.current.items()):
            edit.new_files.extend((cf, level, f) for level, f in v.files())
        edit.compact_pointers.extend((cf, lv, k) for (cf, lv), k in sorted(self.pointers.items()))
        return edit

    # -- running ------------------------------------------------------------------------------

    def new_file_number(self) -> int:
        n = self.next_file_number
        self.next_file_number = n + 1
        return n

    async def log_and_apply(self, edit: VersionEdit, in_pool: InPool) -> set[int]:
        """Syncs `edit` to the manifest, then makes it current.

        Returns the numbers of the tables that left every current Version (now obsolete).
        Raises OSError when the manifest write or sync fails (the caller poisons the DB).

        Cancelling the caller does not cancel the edit: once its append is under way it may
        reach the disk, so the in-memory state must follow it (else a close could delete a
        table the durable manifest lists).  `drain()` waits for such an edit.
        """
        task = asyncio.ensure_future(self._log_and_apply(edit, in_pool))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        return await asyncio.shield(task)

    async def drain(self) -> None:
        """Waits until no edit is being applied (for close)."""
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _log_and_apply(self, edit: VersionEdit, in_pool: InPool) -> set[int]:
        async with self._lock:
            assert self._writer is not None
            edit.next_file_number = self.next_file_number
            await in_pool(self._writer.append, edit)
            # No await from here to the end of the swap: readers see the old or new state.
            before = self._all_numbers()
            for cf, name, blob in edit.added_families:
                self.families[cf] = (name, blob)
                self.current.setdefault(cf, Version())
                self.max_family_id = max(self.max_family_id, cf)
            for cf, seq in edit.family_flushed:
                self.family_flushed[cf] = max(self.family_flushed.get(cf, 0), seq)
            if edit.max_family_id is not None:
                self.max_family_id = max(self.max_family_id, edit.max_family_id)
            touched = {cf for cf, _, _ in edit.new_files} | {cf for cf, _, _ in edit.deleted_files}
            for cf in touched:
                self.current.setdefault(cf, Version())
                self.current[cf] = self.current[cf].apply(
                    [(lv, f) for c, lv, f in edit.new_files if c == cf],
                    [(lv, n) for c, lv, n in edit.deleted_files if c == cf],
                )
            if edit.log_number is not None:
                self.log_number = max(self.log_number, edit.log_number)
            if edit.last_seq is not None:
                self.flushed_seq = max(self.flushed_seq, edit.last_seq)
            for cf, level, key in edit.compact_pointers:
                self.pointers[(cf, level)] = key
            for cf in edit.dropped_families:
                # Its tables leave every current Version: they come back as obsolete.
                self.families.pop(cf, None)
                self.family_flushed.pop(cf, None)
                self.current.pop(cf, None)
                self.pointers = {k: v for k, v in self.pointers.items() if k[0] != cf}
            obsolete = before - self._all_numbers()
            if self._writer.size > MANIFEST_ROLL_SIZE:
                number = self.new_file_number()
                await in_pool(self.start_manifest, number, self.snapshot_edit())
            return obsolete

    def _all_numbers(self) -> set[int]:
        out: set[int] = set()
        for v in self.current.values():
            out |= v.numbers()
        return out

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
