"""The write-ahead log on a FileSystem: the segment writer and segment recovery.

Segments are files `NNNNNN.log` (the number in decimal, zero-padded to six digits) in the
database directory; see docs/format/wal.md for their bytes.

Concurrency contract: a WalWriter belongs to the group committer, which never runs two of its
methods at once.  `append` is cheap and runs inline on the event loop; `sync`, `create` and
`seal` may block and run in the database's thread pool.

Invariants:
1. A segment's header is synced, and its directory entry too, before any record is appended,
   so that a synced record can never be lost with its file.
2. A segment is synced (sealed) before the next one is created, so every segment but the last
   is whole: damage there is corruption, never a torn tail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from aiokv.engine.fs import FileSystem, WritableFile, join
from aiokv.engine.wal_format import (
    END,
    NEED_DATA,
    WalReader,
    WalRecord,
    encode_record,
    encode_segment_header,
)

_SEGMENT_NAME = re.compile(r"^(\d{6,})\.log$")


def segment_name(number: int) -> str:
    return f"{number:06d}.log"


def list_segments(fs: FileSystem, dirpath: str) -> list[int]:
    """Numbers of the WAL segments in a directory, ascending."""
    found = (_SEGMENT_NAME.match(name) for name in fs.list_dir(dirpath))
    numbers = (int(m.group(1)) for m in found if m)
    # Only canonical names: "0000001.log" would otherwise be read as segment 1's file.
    names = set(fs.list_dir(dirpath))
    return sorted(n for n in numbers if segment_name(n) in names)


class WalWriter:
    """Appends records to one segment.  See the module docstring for the contract."""

    def __init__(self, fs: FileSystem, dirpath: str, number: int, file: WritableFile) -> None:
        self.fs = fs
        self.dirpath = dirpath
        self.number = number
        self.path = join(dirpath, segment_name(number))
        self._file = file
        self._write = file.append
        # Bytes in the segment; kept here so the hot path reads an attribute, not a property.
        self.size = file.size
        self.synced_to = file.size  # invariant 1: what is there at open was synced

    @classmethod
    def create(cls, fs: FileSystem, dirpath: str, number: int) -> WalWriter:
        """Creates segment `number`, with its header and directory entry synced.  Blocking."""
        path = join(dirpath, segment_name(number))
        file = fs.create(path)
        try:
            file.append(encode_segment_header(number))
            file.sync()
            fs.sync_dir(dirpath)
        except BaseException:
            file.close()
            raise
        return cls(fs, dirpath, number, file)

    def append(self, rtype: int, payload: bytes) -> None:
        """Appends one record (not synced).  Cheap for small payloads; runs inline."""
        self.append_encoded(encode_record(rtype, self.synced_to, payload))

    def append_encoded(self, record: bytes) -> None:
        """Appends a record already encoded with this writer's `synced_to`."""
        try:
            self._write(record)
        except BaseException:
            self.size = self._file.size  # a failed write may still have written a part
            raise
        self.size += len(record)

    def sync(self) -> int:
        """Syncs the segment.  Blocking.  Returns the offset now known to be durable."""
        end = self._file.size
        self._file.sync()
        return end

    def mark_synced(self, offset: int) -> None:
        """Records that `offset` is durable (called on the loop after `sync` returned)."""
        self.synced_to = max(self.synced_to, offset)

    def truncate(self, size: int) -> None:
        """Cuts off a record whose append failed, so that it cannot reappear after a reopen."""
        self._file.truncate(size)
        self.size = size

    def close(self) -> None:
        self._file.close()


@dataclass
class SegmentReplay:
    """What reading one segment found."""

    number: int
    path: str
    records: list[WalRecord]
    torn_at: int | None


def read_segment(fs: FileSystem, dirpath: str, number: int) -> SegmentReplay:
    """Reads every good record of a segment.  Blocking (reads the whole file).

    Raises:
        CorruptionError: damage that a later record says was synced.
        UnsupportedFormatError: the segment was written by a newer format version.
    """
    path = join(dirpath, segment_name(number))
    reader = WalReader(path, number)
    reader.feed(fs.read_file(path))
    reader.feed_eof()
    return SegmentReplay(number, path, list(_records(reader)), reader.torn_at)


def _records(reader: WalReader) -> Iterator[WalRecord]:
    while True:
        rec = reader.next_record()
        if rec is END:
            return
        if rec is NEED_DATA:  # cannot happen after feed_eof; guards the loop
            raise AssertionError("WAL reader wants data after EOF")
        assert isinstance(rec, WalRecord)
        yield rec
