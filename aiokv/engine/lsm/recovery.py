"""Recovery at open: replaying the WAL past what tables hold, and tidying the directory.

Blocking functions; the engine runs them in its thread pool while it opens, before anything
else can touch the store (it holds LOCK).  See docs/format/files.md, "The open sequence".

Invariant 1 (the engine's invariant 2): a segment below the manifest's log number holds
nothing that is not in a table, so it is deleted, not replayed.
Invariant 2: the replayed sequence numbers continue the tables' without a gap: a batch whose
numbers are all in tables is skipped, one that straddles the boundary is cut at it, and any
gap is corruption.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from aiokv.engine.batch_format import BatchDecodeError, Op, decode_payload
from aiokv.engine.fs import FileSystem, join
from aiokv.engine.lsm.table_cache import table_name
from aiokv.engine.lsm.version import Version
from aiokv.engine.wal import list_segments, read_segment, segment_name
from aiokv.engine.wal_format import RecordType
from aiokv.errors import CorruptionError

TABLE_NAME = re.compile(r"^(\d{6,})\.sst$")


def replay_wal(
    fs: FileSystem,
    path: str,
    log_number: int,
    flushed: dict[int, int],
    flushed_seq: int,
    apply: Callable[[int, list[Op], int], None],
) -> tuple[int, int]:
    """Replays the unflushed segments through `apply(segment, ops, base_seq)`.

    Args:
        log_number: segments below it hold nothing unpersisted: they are deleted.
        flushed: per live family, the newest sequence number its persisted state holds; an
            op of a family not listed (dropped) is skipped.
        flushed_seq: the newest sequence number persisted (the floor of the result).
    Returns (last sequence number, number for the next segment).
    """
    numbers = list_segments(fs, path)
    for n in numbers:
        if n < log_number:
            fs.remove(join(path, segment_name(n)))  # invariant 1
    numbers = [n for n in numbers if n >= log_number]
    # Each family's tables hold its ops up to its own flushed sequence number.  An op of a
    # family dropped since is skipped (a family's creation is synced before its first op).
    # Sequence numbers are global and contiguous across records.  The first record kept may
    # start anywhere at or below the oldest unflushed op: segments wholly flushed for every
    # family are gone.
    last_seq: int | None = None
    replay = None
    for i, number in enumerate(numbers):
        replay = read_segment(fs, path, number)
        for rec in replay.records:
            if rec.type != RecordType.BATCH:
                continue
            try:
                base, ops = decode_payload(rec.payload)
            except BatchDecodeError as e:
                raise CorruptionError(replay.path, rec.offset, e.detail) from None
            if last_seq is not None and base != last_seq + 1:
                raise CorruptionError(
                    replay.path, rec.offset, f"sequence {base} follows {last_seq}"
                )
            _apply_unflushed(number, ops, base, flushed, apply)
            last_seq = base + len(ops) - 1
        if replay.torn_at is not None and i != len(numbers) - 1:
            raise CorruptionError(
                replay.path, replay.torn_at, "damage in a sealed (not the last) segment"
            )
    if numbers and replay is not None:
        # What was replayed from the last segment may have reached the OS but never the
        # disk (a kill -9).  It is made durable, its torn tail cut, before a new segment
        # follows it: wal.py invariant 2, every segment but the last is whole.
        seal_last(fs, path, numbers[-1], replay.torn_at)
    # Never below the log number: a segment under it would be taken as flushed next time.
    last_seq = max(last_seq or 0, flushed_seq)
    return last_seq, max(numbers[-1] + 1 if numbers else 1, log_number, 1)


def _apply_unflushed(
    number: int,
    ops: list[Op],
    base: int,
    flushed: dict[int, int],
    apply: Callable[[int, list[Op], int], None],
) -> None:
    """Applies the ops no table holds yet, in runs of consecutive sequence numbers."""
    keep = [flushed.get(op.cf, 1 << 64) < base + i for i, op in enumerate(ops)]
    if all(keep):
        apply(number, ops, base)
        return
    i = 0
    while i < len(ops):
        if not keep[i]:
            i += 1
            continue
        j = i
        while j < len(ops) and keep[j]:
            j += 1
        apply(number, ops[i:j], base + i)
        i = j


def seal_last(fs: FileSystem, path: str, number: int, torn_at: int | None) -> None:
    seg = join(path, segment_name(number))
    if torn_at == 0:  # its creation was cut short: it never held a record
        fs.remove(seg)
        fs.sync_dir(path)
        return
    f = fs.open_append(seg)
    try:
        if torn_at is not None:
            f.truncate(torn_at)
        f.sync()
    finally:
        f.close()


def _live(versions: Iterable[Version]) -> set[int]:
    live: set[int] = set()
    for v in versions:
        live |= v.numbers()
    return live


def remove_unlisted_tables(fs: FileSystem, path: str, versions: Iterable[Version]) -> None:
    """Removes every table no Version lists (never acknowledged, never read)."""
    live = _live(versions)
    for name in fs.list_dir(path):
        m = TABLE_NAME.match(name)
        if m and int(m.group(1)) not in live:
            fs.remove(join(path, name))


def delete_orphans(
    fs: FileSystem, path: str, versions: Iterable[Version], had_manifest: bool
) -> None:
    """Deletes tables no Version lists (a crash mid-flush or mid-compaction) and CURRENT.tmp;
    checks that every listed table is there."""
    versions = list(versions)
    names = fs.list_dir(path)
    if not had_manifest and any(TABLE_NAME.match(n) for n in names):
        # A manifest is installed at the first open, before any table is written.
        raise CorruptionError(join(path, "CURRENT"), 0, "missing, but tables are present")
    live = _live(versions)
    for name in names:
        m = TABLE_NAME.match(name)
        if (m and int(m.group(1)) not in live) or name == "CURRENT.tmp":
            fs.remove(join(path, name))
    for number in sorted(live):
        if not fs.exists(join(path, table_name(number))):
            raise CorruptionError(join(path, table_name(number)), 0, "table missing")
