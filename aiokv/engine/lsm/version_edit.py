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
        new_files: (column family id, level, table).
        deleted_files: (column family id, level, table number).
        compact_pointers: (column family id, level, key): where the leveled picker resumes
            its round-robin on that level.
        added_families: (column family id, name, options blob) -- issue 4.
        dropped_families: column family ids -- issue 4.
    """

    log_number: int | None = None
    next_file_number: int | None = None
    last_seq: int | None = None
    new_files: list[tuple[int, int, FileMeta]] = field(default_factory=list)
    deleted_files: list[tuple[int, int, int]] = field(default_factory=list)
    compact_pointers: list[tuple[int, int, bytes]] = field(default_factory=list)
    added_families: list[tuple[int, str, bytes]] = field(default_factory=list)
    dropped_families: list[int] = field(default_factory=list)
