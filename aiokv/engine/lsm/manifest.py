"""The MANIFEST on a FileSystem: creating and appending to it, CURRENT, and reading it back.

See docs/format/manifest.md.  The bytes are in manifest_format.py; this module does the I/O,
through the FileSystem seam only.  Every function here blocks: the engine calls them in its
thread pool.  `replay_edits` is pure and folds what `read_manifest` returned into versions.

Concurrency contract: one ManifestWriter per open database, used by one task at a time (the
engine serialises version changes); nothing here is called concurrently on one directory.

Invariants (what recovery relies on):
1. A manifest is written whole (header and snapshot) and synced, and its directory entry too,
   before CURRENT names it.  CURRENT records how many bytes that was: damage before that size
   is corruption, never a torn tail.
2. CURRENT is replaced atomically: CURRENT.tmp written and synced, renamed over CURRENT, and
   the directory synced.  Older manifests are removed only after that.
3. An edit takes effect only once `append` returned (its record synced).  Each appended record
   carries `synced_to` = its own offset (all before it is synced), so damage to any record
   that a later good record follows is corruption: `read_manifest` checks this itself
   (`claimed_after`), more strictly than the shared reader, which trusts a bad record's length.
4. After a failed append the writer refuses further appends: a record after a partial one
   would be cut at recovery with it (its synced_to does not vouch for the partial bytes).
"""

from __future__ import annotations

import errno
import re
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import pairwise

from aiokv.engine.fs import FileSystem, WritableFile, join
from aiokv.engine.lsm.manifest_format import (
    CURRENT,
    CURRENT_TMP,
    MANIFEST_MAGIC,
    MANIFEST_VERSION,
    READ_VERSIONS,
    ManifestDecodeError,
    ManifestRecordType,
    claimed_after,
    decode_current,
    decode_edit,
    encode_current,
    encode_edit,
    header_version,
    manifest_name,
    manifest_reader,
)
from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta, Version
from aiokv.engine.lsm.version_edit import VersionEdit
from aiokv.engine.wal_format import END, WalRecord, encode_record, encode_segment_header
from aiokv.errors import CorruptionError, UnsupportedFormatError

_EDIT = int(ManifestRecordType.EDIT)
_MANIFEST_NAME = re.compile(r"^MANIFEST-(\d{6,})$")
DEFAULT_FAMILY_NAME = "default"


class ManifestWriter:
    """Appends edits to the live manifest.  See the module docstring."""

    def __init__(self, fs: FileSystem, dirpath: str, number: int, file: WritableFile) -> None:
        self.fs = fs
        self.dirpath = dirpath
        self.number = number
        self.path = join(dirpath, manifest_name(number))
        self._file = file
        self._synced = file.size  # invariant 1: all there at creation was synced
        self._failed = False

    @classmethod
    def create(
        cls, fs: FileSystem, dirpath: str, number: int, snapshot: list[VersionEdit] | VersionEdit
    ) -> ManifestWriter:
        """Writes manifest `number` holding `snapshot` (the whole state) and installs CURRENT.

        On return CURRENT durably names the new manifest, and older ones are removed (best
        effort).  If it raises, CURRENT names the old manifest or the new one: the caller may
        append to neither (the engine poisons the database).

        Raises:
            OSError: any write, sync or rename failed.
            ValueError: an edit field does not fit its width (nothing is written).
        """
        edits = [snapshot] if isinstance(snapshot, VersionEdit) else snapshot
        # synced_to 0: nothing is durable while these are written; CURRENT's size covers them.
        data = encode_segment_header(number, magic=MANIFEST_MAGIC, version=MANIFEST_VERSION)
        data += b"".join([encode_record(_EDIT, 0, encode_edit(e)) for e in edits])
        path = join(dirpath, manifest_name(number))
        file = fs.create(path)
        try:
            file.append(data)
            file.sync()
            fs.sync_dir(dirpath)
            _install_current(fs, dirpath, number, len(data))
        except BaseException:
            file.close()
            raise
        _remove_other_manifests(fs, dirpath, number)
        return cls(fs, dirpath, number, file)

    @property
    def size(self) -> int:
        """Bytes in the manifest (the engine rolls to a new one past a limit)."""
        return self._file.size

    def append(self, edit: VersionEdit) -> None:
        """Appends one edit and syncs it; the edit takes effect only once this returns.

        Raises:
            OSError: the write or the sync failed, now or at an earlier append.
            ValueError: an edit field does not fit its width (nothing is written).
        """
        if self._failed:
            raise OSError(errno.EIO, "an earlier manifest append failed", self.path)
        record = encode_record(_EDIT, self._synced, encode_edit(edit))
        try:
            self._file.append(record)
            self._file.sync()
        except BaseException:
            self._failed = True
            raise
        self._synced = self._file.size

    def close(self) -> None:
        """Closes the file; idempotent.  Every appended edit is already synced."""
        self._file.close()


def _install_current(fs: FileSystem, dirpath: str, number: int, size: int) -> None:
    tmp = join(dirpath, CURRENT_TMP)
    f = fs.create(tmp)
    try:
        f.append(encode_current(number, size))
        f.sync()
    finally:
        f.close()
    fs.rename(tmp, join(dirpath, CURRENT))
    fs.sync_dir(dirpath)


def _remove_other_manifests(fs: FileSystem, dirpath: str, keep: int) -> None:
    """Removes every MANIFEST-* but `keep`: older ones, and orphans of a crashed create.

    Best effort: what a failure (or a crash) leaves, the next create removes.
    """
    with suppress(OSError):
        for name in fs.list_dir(dirpath):
            if _MANIFEST_NAME.match(name) and name != manifest_name(keep):
                with suppress(OSError):
                    fs.remove(join(dirpath, name))


@dataclass
class ManifestState:
    """What `read_manifest` found: the edits of the live manifest, in order.

    `offsets[i]` is the file offset of the record holding `edits[i]` (for error messages);
    `torn_at` is where a torn tail starts (None: the file ended cleanly).
    """

    number: int
    edits: list[VersionEdit]
    torn_at: int | None
    path: str
    offsets: list[int] = field(default_factory=list)


def read_manifest(fs: FileSystem, dirpath: str) -> ManifestState | None:
    """Reads CURRENT and the manifest it names.  None when there is no CURRENT (a new store).

    Raises:
        CorruptionError: CURRENT is garbled, names a missing manifest, or the manifest holds
            damage that was synced (before its creation size, or vouched for by a later
            record), or a record that passes its checksum but does not decode.
        UnsupportedFormatError: the manifest's format version is not one this build reads
            (READ_VERSIONS: a newer one, or 0, which no build writes).
    """
    current = join(dirpath, CURRENT)
    if not fs.exists(current):
        return None
    try:
        number, created_size = decode_current(fs.read_file(current))
    except ManifestDecodeError as e:
        raise CorruptionError(current, 0, e.detail) from None
    path = join(dirpath, manifest_name(number))
    if not fs.exists(path):
        raise CorruptionError(path, 0, "CURRENT names this manifest, which is missing")
    reader = manifest_reader(path, number)
    data = fs.read_file(path)
    reader.feed(data)
    reader.feed_eof()
    rec = reader.next_record()  # the header first: a version above ours raises here
    # No good header (valid_end 0) means no records, so the version then decides nothing.
    version = header_version(data) if reader.valid_end else MANIFEST_VERSION
    if version not in READ_VERSIONS:  # the reader passes any version up to ours, 0 too
        raise UnsupportedFormatError(
            f"{path}: MANIFEST format version {version} is not one this build reads "
            f"({', '.join(map(str, sorted(READ_VERSIONS)))})"
        )
    edits: list[VersionEdit] = []
    offsets: list[int] = []
    while rec is not END:
        assert isinstance(rec, WalRecord), "the reader wants data after EOF"
        try:
            edits.append(decode_edit(rec.payload, version))
        except ManifestDecodeError as e:
            raise CorruptionError(path, rec.offset, f"edit does not decode: {e.detail}") from None
        offsets.append(rec.offset)
        rec = reader.next_record()
    torn_at = reader.torn_at
    if reader.valid_end < created_size:  # invariant 1
        at = reader.valid_end if torn_at is None else torn_at
        raise CorruptionError(path, at, f"damage before offset {created_size}, synced at creation")
    if torn_at is not None and (claimed := claimed_after(data, torn_at)) > torn_at:  # inv. 3
        raise CorruptionError(path, torn_at, f"bad record; a later one says {claimed} was synced")
    return ManifestState(number, edits, torn_at, path, offsets)


@dataclass(eq=False)
class RecoveredVersions:
    """The state a manifest's edits fold into.  See `replay_edits`.

    Two are equal when they describe the same state: Versions (which compare by identity)
    are compared by their levels.
    """

    versions: dict[int, Version]
    families: dict[int, tuple[str, bytes]]  # live family id -> (name, options blob)
    compact_pointers: dict[tuple[int, int], bytes]  # (cf, level) -> key
    log_number: int = 0
    next_file_number: int = 0
    last_seq: int = 0
    max_family_id: int = 0  # largest family id ever allocated: never handed out again
    # Live family id -> every op of it up to this seq is in its tables.  A version 1
    # manifest has none: then the default family's is last_seq (one family, one sequence).
    family_flushed: dict[int, int] = field(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecoveredVersions):
            return NotImplemented
        return self._state() == other._state()

    def _state(self) -> tuple[object, ...]:
        levels = {cf: v.levels for cf, v in self.versions.items()}
        return (levels, self.families, self.compact_pointers, self.log_number,
                self.next_file_number, self.last_seq, self.max_family_id,
                self.family_flushed)  # fmt: skip


class ManifestReplayError(ManifestDecodeError):
    """An edit that cannot apply to the state before it; `index` is its place in the list."""

    def __init__(self, index: int, detail: str) -> None:
        super().__init__(f"edit {index}: {detail}")
        self.index = index


def replay_edits(edits: list[VersionEdit]) -> RecoveredVersions:
    """Folds edits, in order, into the state they describe.  Pure.

    Within one edit: added families first, then deleted and new files, then compact pointers,
    then dropped families (a snapshot edit adds families and their tables at once).  Family 0
    always exists; an added_families entry for 0 sets its name and options.  Numbers are the
    largest seen; next_file_number is also above every table, last_seq at least every
    table's largest_seq and max_family_id at least every family id added, so a number in
    use (or, for families, ever used) is never handed out again.

    Raises:
        ManifestReplayError: an edit that cannot apply: a table deleted from a level it is not
            on, a table added twice, a file of an unknown family, a family added twice or a
            missing one dropped, or tables overlapping on a level >= 1 at the end.

    >>> replay_edits([VersionEdit(log_number=4), VersionEdit(log_number=2)]).log_number
    4
    """
    families: dict[int, tuple[str, bytes]] = {0: (DEFAULT_FAMILY_NAME, b"")}
    tables: dict[int, dict[int, tuple[int, FileMeta]]] = {0: {}}  # cf -> number -> (level, f)
    where: dict[int, int] = {}  # table number -> cf, to find a number listed twice anywhere
    out = RecoveredVersions({}, families, {})
    flushed_seen = False
    for i, e in enumerate(edits):
        for cf, name, options in e.added_families:
            taken = [c for c, (n, _) in families.items() if n == name and c != cf]
            if (cf in families and cf != 0) or taken:
                raise ManifestReplayError(i, f"family {cf} ({name!r}) added twice")
            families[cf] = (name, options)
            tables.setdefault(cf, {})
            out.max_family_id = max(out.max_family_id, cf)
        for cf, level, number in e.deleted_files:
            got = tables.get(cf, {}).pop(number, None)
            if got is None or got[0] != level:
                raise ManifestReplayError(i, f"table {number} is not on L{level} of family {cf}")
            del where[number]
        for cf, level, meta in e.new_files:
            if cf not in tables:
                raise ManifestReplayError(i, f"table {meta.number} added to unknown family {cf}")
            if meta.number in where:
                raise ManifestReplayError(i, f"table {meta.number} added twice")
            tables[cf][meta.number] = (level, meta)
            where[meta.number] = cf
            out.next_file_number = max(out.next_file_number, meta.number + 1)
            out.last_seq = max(out.last_seq, meta.largest_seq)
        for cf, level, key in e.compact_pointers:
            if cf not in families:
                raise ManifestReplayError(i, f"compact pointer of unknown family {cf}")
            out.compact_pointers[cf, level] = key
        for cf in e.dropped_families:
            if cf == 0 or cf not in families:
                raise ManifestReplayError(i, f"dropping family {cf}, which is not live")
            del families[cf]
            for number in tables.pop(cf):
                del where[number]
            out.compact_pointers = {k: v for k, v in out.compact_pointers.items() if k[0] != cf}
            out.family_flushed.pop(cf, None)
        for cf, seq in e.family_flushed:
            if cf in families:
                out.family_flushed[cf] = max(out.family_flushed.get(cf, 0), seq)
            flushed_seen = True
        out.log_number = max(out.log_number, e.log_number or 0)
        out.next_file_number = max(out.next_file_number, e.next_file_number or 0)
        out.last_seq = max(out.last_seq, e.last_seq or 0)
        out.max_family_id = max(out.max_family_id, e.max_family_id or 0)
    for cf, files in tables.items():
        levels: list[list[FileMeta]] = [[] for _ in range(NUM_LEVELS)]
        for level, meta in files.values():
            levels[level].append(meta)
        version = Version(levels)
        for level, runs in enumerate(version.levels[1:], 1):
            for a, b in pairwise(runs):
                if a.largest >= b.smallest:
                    raise ManifestReplayError(
                        len(edits) - 1, f"tables {a.number}, {b.number} overlap on L{level}"
                    )
        out.versions[cf] = version
    if not flushed_seen:  # version 1 (or no edits): one family, one sequence
        out.family_flushed = {0: out.last_seq}
    for cf in families:  # a family nothing recorded for has flushed nothing
        out.family_flushed.setdefault(cf, 0)
    return out


def snapshot_edit(state: RecoveredVersions) -> VersionEdit:
    """One edit holding the whole of `state`: what a new manifest starts with.

    replay_edits([snapshot_edit(s)]) == s for every state s that replay_edits returned
    (max_family_id included, carried by its own field since format version 2).
    """
    return VersionEdit(
        log_number=state.log_number,
        next_file_number=state.next_file_number,
        last_seq=state.last_seq,
        max_family_id=state.max_family_id,
        new_files=[(cf, lv, f) for cf, v in state.versions.items() for lv, f in v.files()],
        compact_pointers=[(cf, lv, k) for (cf, lv), k in state.compact_pointers.items()],
        added_families=[(cf, n, o) for cf, (n, o) in state.families.items()],
        family_flushed=[(cf, state.family_flushed.get(cf, 0)) for cf in state.families],
    )
