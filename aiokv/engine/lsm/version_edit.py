"""VersionEdit: one change to the set of tables, as recorded in the manifest.

Encoding lives in manifest_format.py (docs/format/manifest.md).  An edit is applied only once
its manifest record is synced; replaying every edit of a manifest in order rebuilds the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokv.engine.lsm.version import FileMeta


@dataclass
class VersionEdit:
    """Fields left None (or empty) are unchanged by the edit.

    Attributes:
        log_number: WAL segments numbered below it hold nothing that is not in a table; they
            may be deleted once this edit is synced.
        next_file_number: every file number (table, WAL segment, manifest) in use is below it.
        last_seq: the largest sequence number written to any table so far.
        max_family_id: the largest column family id ever allocated (format version 2).  A
            dropped family's id is never handed out again: WAL segments may still hold its
            operations, which replay must not apply to a new family.
        new_files: (column family id, level, table).
        deleted_files: (column family id, level, table number).
        compact_pointers: (column family id, level, key): where the leveled picker resumes
            its round-robin on that level.
        added_families: (column family id, name, options blob); the engine stores the
            family's persisted options in the blob as a UTF-8 JSON object.
        dropped_families: column family ids.
        family_flushed: (column family id, seq): every op of that family with a sequence
            number up to seq is in its tables (format version 2); WAL replay skips those.
    """

    log_number: int | None = None
    next_file_number: int | None = None
    last_seq: int | None = None
    max_family_id: int | None = None
    new_files: list[tuple[int, int, FileMeta]] = field(default_factory=list)
    deleted_files: list[tuple[int, int, int]] = field(default_factory=list)
    compact_pointers: list[tuple[int, int, bytes]] = field(default_factory=list)
    added_families: list[tuple[int, str, bytes]] = field(default_factory=list)
    dropped_families: list[int] = field(default_factory=list)
    family_flushed: list[tuple[int, int]] = field(default_factory=list)
