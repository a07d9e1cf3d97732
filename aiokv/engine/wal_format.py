"""WAL segment framing: the segment header, records, and a sans-IO reader.

See docs/format/wal.md.  All integers are little-endian.

    segment := header, record*
    header  := magic: b"aiokvWAL", version: u32, flags: u32, number: u64,
               checksum: u64 (xxh3_64 of the 24 bytes before it)
    record  := mark: b"\\xe8\\x5a\\x0b\\xc3", checksum: u64 (xxh3_64 of all that follows it,
               through the end of the payload), type: u8, synced_to: u64, length: u32,
               payload[length]

`synced_to` is the segment offset up to which the writer knew the segment was synced when it
wrote the record.  Recovery uses it to tell a torn tail (bad bytes nobody synced: stop there)
from corruption in the middle (bad bytes that a later record says were synced: refuse).

Invariant 1: records start right after the header and follow each other with no gap.
Invariant 2: synced_to never decreases from one record to the next.

The MANIFEST (docs/format/manifest.md) is framed the same way with its own magic and record
types: `encode_segment_header` and `WalReader` take them as keyword arguments, whose defaults
are the WAL's.
"""

from __future__ import annotations

import struct
from enum import IntEnum
from typing import Final, NamedTuple

import xxhash

from aiokv.errors import CorruptionError, UnsupportedFormatError

SEGMENT_MAGIC: Final = b"aiokvWAL"
WAL_VERSION: Final = 1
SEGMENT_HEADER = struct.Struct("<8sIIQQ")  # magic, version, flags, number, checksum
RECORD_MARK: Final = b"\xe8\x5a\x0b\xc3"  # finds record starts after damage (bytes.find)
RECORD_HEADER = struct.Struct("<4sQBQI")  # mark, checksum, type, synced_to, length
CHECKED_FROM: Final = 12  # the checksum covers the record from its type byte on

_xxh3 = xxhash.xxh3_64_intdigest
_pack_record_header = RECORD_HEADER.pack
_TAIL = struct.Struct("<BQI")  # type, synced_to, length: the checked part of the header
_pack_tail = _TAIL.pack


class RecordType(IntEnum):  # On disk: never renumber or reuse.
    BATCH = 1  # payload: see batch_format.py


class WalRecord(NamedTuple):
    """A record as read back: where it starts, its type, its synced_to and its payload."""

    offset: int
    type: int
    synced_to: int
    payload: bytes


def encode_segment_header(
    number: int, *, magic: bytes = SEGMENT_MAGIC, version: int = WAL_VERSION
) -> bytes:
    """Encodes the 32-byte header of segment `number` (or of another file framed alike)."""
    head = SEGMENT_HEADER.pack(magic, version, 0, number, 0)[:24]
    return head + struct.pack("<Q", _xxh3(head))


def encode_record(rtype: int, synced_to: int, payload: bytes) -> bytes:
    """Encodes one record."""
    tail = _pack_tail(rtype, synced_to, len(payload))
    return b"".join((RECORD_MARK, struct.pack("<Q", _xxh3(tail + payload)), tail, payload))


# A record holding one batch of one PUT, from its type byte through the op header: the put
# fast path packs it in one call.  Same bytes as encode_record(BATCH, ..., encode_payload(...)).
_SINGLE_PUT = struct.Struct("<BQIQIBIII")  # type, synced_to, length | base_seq, count | op header
_SINGLE_PUT_OVERHEAD: Final = 12 + 13  # payload header (base_seq, count) + op header
_pack_single = _SINGLE_PUT.pack
_pack_head = struct.Struct("<4sQ").pack  # mark, checksum


def encode_put_record(
    synced_to: int, seq: int, cf: int, key: bytes, value: bytes, kind: int = 1
) -> bytes:
    """Encodes a record whose payload is one PUT (or, with `kind` 2, one MERGE): the put and
    merge fast paths.

    >>> from aiokv.engine.batch_format import encode_op, encode_payload
    >>> slow = encode_record(1, 7, encode_payload(9, 1, [encode_op(1, 0, b"k", b"v")]))
    >>> encode_put_record(7, 9, 0, b"k", b"v") == slow
    True
    >>> slow = encode_record(1, 7, encode_payload(9, 1, [encode_op(2, 3, b"k", b"1")]))
    >>> encode_put_record(7, 9, 3, b"k", b"1", 2) == slow
    True
    """
    kl = len(key)
    vl = len(value)
    body = _pack_single(1, synced_to, _SINGLE_PUT_OVERHEAD + kl + vl, seq, 1, kind, cf, kl, vl)
    body += key
    body += value
    return _pack_head(RECORD_MARK, _xxh3(body)) + body


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


class _End:
    def __repr__(self) -> str:
        return "END"


NEED_DATA: Final = _NeedData()
END: Final = _End()


class WalReader:
    """Reads the records of one segment from bytes fed to it; does no I/O.

    Use: `feed(data)` as often as needed, `feed_eof()` once the file is all fed, and call
    `next_record()` until it returns END.  After END, `torn_at` is None when the segment ended
    cleanly, or the offset where its torn tail starts (everything from there on is to be cut);
    `valid_end` is the end of the last good record.

    A bad record whose bytes a later good record says were synced raises CorruptionError.
    A segment written by a newer format raises UnsupportedFormatError.

    The keyword arguments read another file framed alike (the MANIFEST): its header magic, the
    newest format version it reads, the record types it accepts, and the format's name and
    file noun in error messages ("bad {name} {noun} header", "header names {noun} N").
    """

    def __init__(
        self,
        path: str,
        number: int | None = None,
        *,
        magic: bytes = SEGMENT_MAGIC,
        version: int = WAL_VERSION,
        record_types: frozenset[int] | None = None,
        name: str = "WAL",
        noun: str = "segment",
    ) -> None:
        self.path = path
        self.number = number
        self._magic = magic
        self._version = version
        self._types = _RECORD_TYPES if record_types is None else record_types
        self._name = name
        self._noun = noun
        self.torn_at: int | None = None
        self.valid_end = 0
        self._buf = bytearray()
        self._pos = 0
        self._eof = False
        self._header_done = False
        self._done = False
        self._last_synced_to = 0

    def feed(self, data: bytes) -> None:
        if self._eof:
            raise RuntimeError("feed() after feed_eof()")
        self._buf += data

    def feed_eof(self) -> None:
        self._eof = True

    def next_record(self) -> WalRecord | _NeedData | _End:
        if self._done:
            return END
        if not self._header_done:
            verdict = self._read_header()
            if verdict is not None:
                return verdict
        buf = self._buf
        pos = self._pos
        avail = len(buf) - pos
        if avail == 0:
            return self._finish(None) if self._eof else NEED_DATA
        if avail < RECORD_HEADER.size:
            return self._bad(pos, "record header cut short") if self._eof else NEED_DATA
        mark, checksum, rtype, synced_to, length = RECORD_HEADER.unpack_from(buf, pos)
        if mark != RECORD_MARK:
            return self._bad(pos, "no record mark")
        end = pos + RECORD_HEADER.size + length
        if end > len(buf):
            return self._bad(pos, "record runs past the end") if self._eof else NEED_DATA
        if _xxh3(memoryview(buf)[pos + CHECKED_FROM : end]) != checksum:
            return self._bad(pos, "record checksum mismatch")
        if rtype not in self._types or synced_to < self._last_synced_to:
            raise CorruptionError(self.path, pos, "record with a good checksum breaks the grammar")
        self._last_synced_to = synced_to
        self._pos = self.valid_end = end
        return WalRecord(pos, rtype, synced_to, bytes(buf[pos + RECORD_HEADER.size : end]))

    # -- internals ---------------------------------------------------------------------------

    def _read_header(self) -> _NeedData | _End | None:
        buf = self._buf
        size = SEGMENT_HEADER.size
        if len(buf) < size:
            if not self._eof:
                return NEED_DATA
            # A header is synced before any record is written, so a short one is a segment
            # whose creation a crash cut short: nothing in it was ever acknowledged.
            return self._finish(0)
        magic, version, _flags, number, checksum = SEGMENT_HEADER.unpack_from(buf, 0)
        if checksum != _xxh3(bytes(buf[:24])) or magic != self._magic:
            if not self._eof:
                return NEED_DATA
            if len(buf) == size:
                return self._finish(0)
            raise CorruptionError(self.path, 0, f"bad {self._name} {self._noun} header")
        if version > self._version:
            raise UnsupportedFormatError(
                f"{self.path}: {self._name} format version {version} is newer than this build "
                f"reads ({self._version}); upgrade aiokv"
            )
        if self.number is not None and number != self.number:
            raise CorruptionError(self.path, 0, f"header names {self._noun} {number}")
        self._header_done = True
        self._pos = self.valid_end = size
        return None

    def _finish(self, torn_at: int | None) -> _End:
        self.torn_at = torn_at
        self._done = True
        return END

    def _bad(self, pos: int, detail: str) -> _NeedData | _End:
        """Decides whether a bad record at `pos` is a torn tail or corruption."""
        if not self._eof:
            return NEED_DATA  # the answer depends on what follows: wait for all of it
        claimed = self._synced_claimed_after(pos)
        if claimed > pos:
            raise CorruptionError(
                self.path, pos, f"{detail}; a later record says offset {claimed} was synced"
            )
        return self._finish(pos)

    def _synced_claimed_after(self, pos: int) -> int:
        """The largest synced_to of any good record that starts after the bad one at `pos`.

        Bytes inside the bad record's own payload are user data and may hold something that
        looks like a record, so where the record's extent is known they are not searched:
        1. If the bad record's header is whole and its length ends inside the file (a checksum
           mismatch), the search starts where it ends.  If the length runs past the end of the
           file, either the record is torn or its length field is damaged; the search then
           starts at pos + 1, preferring a loud CorruptionError over silently dropping synced
           records after a damaged length (docs/format/wal.md, "Known issues").
        2. A record cannot vouch for bytes after its own start: a candidate whose synced_to
           is greater than its offset is not a record the writer wrote.
        """
        buf = bytes(self._buf)
        start = pos + 1
        if pos + RECORD_HEADER.size <= len(buf) and buf[pos : pos + 4] == RECORD_MARK:
            (length,) = struct.unpack_from("<I", buf, pos + 21)  # the header's length field
            if pos + RECORD_HEADER.size + length <= len(buf):
                start = pos + RECORD_HEADER.size + length
        best = 0
        at = buf.find(RECORD_MARK, start)
        while at >= 0:
            nxt = at + 1
            if at + RECORD_HEADER.size <= len(buf):
                _m, checksum, rtype, synced_to, length = RECORD_HEADER.unpack_from(buf, at)
                end = at + RECORD_HEADER.size + length
                if (
                    end <= len(buf)
                    and rtype in self._types
                    and synced_to <= at
                    and _xxh3(buf[at + CHECKED_FROM : end]) == checksum
                ):
                    best = max(best, synced_to)
                    nxt = end
            at = buf.find(RECORD_MARK, nxt)
        return best


_RECORD_TYPES = frozenset(int(t) for t in RecordType)
