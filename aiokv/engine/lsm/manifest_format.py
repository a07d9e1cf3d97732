"""MANIFEST bytes: the version-edit payload, the file framing and CURRENT.  Pure: no I/O.

See docs/format/manifest.md.  All integers are little-endian.

    manifest := header, record*             framed exactly like a WAL segment (wal_format.py),
                                            with magic b"aiokvMFT", version 2 (1 is still read)
                                            and record type EDIT = 1
    payload  := field*                      one VersionEdit; empty payload = empty edit
    field    := tag: u8, body               bodies by tag (Tag below):
      LOG_NUMBER 1 / NEXT_FILE_NUMBER 2 / LAST_SEQ 3 / MAX_FAMILY_ID 9 := value: u64
      NEW_FILE 4       := cf: u32, level: u8, number, size, smallest_seq, largest_seq, entries,
                          tombstones, smallest_expiry, range_dels, created_ms: u64 each,
                          smallest: bstr, largest: bstr
      DELETED_FILE 5   := cf: u32, level: u8, number: u64
      COMPACT_POINTER 6:= cf: u32, level: u8, key: bstr
      ADD_FAMILY 7     := cf: u32, name: bstr (UTF-8), options: bstr (opaque here)
      DROP_FAMILY 8    := cf: u32
      FAMILY_FLUSHED 10:= cf: u32, seq: u64
    bstr     := length: u32, bytes[length]
    CURRENT  := "MANIFEST-" digits{6,} "\\n", "size " decimal "\\n", "xxh3 " hex{16} "\\n"
                (xxh3_64 of the two lines before it; size: bytes synced when it was created)
    Version 1 differs only in: NEW_FILE has no created_ms (read as 0); tags 9 and 10 are
    unknown.

Invariant 1: fields are written scalars first, then each list in VersionEdit's order, so
encode(decode(p)) == p for every payload this module writes; the decoder accepts any order.
Invariant 2: a scalar tag appears at most once per payload; an unknown tag is an error (an
edit the reader cannot understand must not be half-applied).
Invariant 3: every level is below NUM_LEVELS.
Invariant 4: the encoder writes only MANIFEST_VERSION; the decoder reads every version in
READ_VERSIONS, told which by the caller (the file header's version).
"""

from __future__ import annotations

import re
import struct
from enum import IntEnum
from typing import Final

import xxhash

from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta
from aiokv.engine.lsm.version_edit import VersionEdit
from aiokv.engine.wal_format import CHECKED_FROM, RECORD_HEADER, RECORD_MARK, WalReader

MANIFEST_MAGIC: Final = b"aiokvMFT"  # 8 bytes, like the WAL's, so the shared header fits
MANIFEST_VERSION: Final = 2  # what this build writes; 2 added created_ms and MAX_FAMILY_ID
READ_VERSIONS: Final = frozenset({1, MANIFEST_VERSION})  # a v1 file still opens
_VERSION_AT: Final = 8  # the shared header's version field follows its 8-byte magic
CURRENT: Final = "CURRENT"
CURRENT_TMP: Final = "CURRENT.tmp"


class ManifestRecordType(IntEnum):  # On disk: never renumber or reuse.
    EDIT = 1  # payload: one encoded VersionEdit


RECORD_TYPES: Final = frozenset(int(t) for t in ManifestRecordType)


class Tag(IntEnum):  # On disk: never renumber or reuse.
    LOG_NUMBER = 1
    NEXT_FILE_NUMBER = 2
    LAST_SEQ = 3
    NEW_FILE = 4
    DELETED_FILE = 5
    COMPACT_POINTER = 6
    ADD_FAMILY = 7
    DROP_FAMILY = 8
    MAX_FAMILY_ID = 9  # version 2 on
    FAMILY_FLUSHED = 10  # version 2 on


class ManifestDecodeError(ValueError):
    """Bytes that are not a valid edit or CURRENT; the caller adds the path and offset."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


_SCALAR = struct.Struct("<BQ")  # tag, value
_FILE = struct.Struct("<BIBQQQQQQQQQI")  # tag, cf, level, 9 u64 fields, smallest's length
_FILE_V1 = struct.Struct("<BIBQQQQQQQQI")  # version 1: no created_ms
_DELETED = struct.Struct("<BIBQ")  # tag, cf, level, number
_CF_LEVEL = struct.Struct("<BIBI")  # tag, cf, level, key length (COMPACT_POINTER)
_CF_LEN = struct.Struct("<BII")  # tag, cf, name length (ADD_FAMILY)
_CF = struct.Struct("<BI")  # tag, cf (DROP_FAMILY)
_CF_SEQ = struct.Struct("<BIQ")  # tag, cf, seq (FAMILY_FLUSHED)
_U32 = struct.Struct("<I")
_SCALARS_V1: Final[dict[int, str]] = {
    Tag.LOG_NUMBER: "log_number",
    Tag.NEXT_FILE_NUMBER: "next_file_number",
    Tag.LAST_SEQ: "last_seq",
}
_SCALARS: Final[dict[int, str]] = {**_SCALARS_V1, Tag.MAX_FAMILY_ID: "max_family_id"}
# Per version read: its scalar tags and its NEW_FILE layout.
_LAYOUTS: Final = {1: (_SCALARS_V1, _FILE_V1), 2: (_SCALARS, _FILE)}


def manifest_name(number: int) -> str:
    """The file name of manifest `number`.

    >>> manifest_name(7)
    'MANIFEST-000007'
    """
    return f"MANIFEST-{number:06d}"


def encode_edit(edit: VersionEdit) -> bytes:
    """Encodes one edit as a record payload of format version MANIFEST_VERSION.

    Raises:
        ValueError: a field does not fit its width (a negative number, a level past u8, ...).

    >>> decode_edit(encode_edit(VersionEdit(log_number=3))) == VersionEdit(log_number=3)
    True
    """
    u32 = _U32.pack
    try:
        parts = [
            _SCALAR.pack(tag, value)
            for tag, value in (
                (Tag.LOG_NUMBER, edit.log_number),
                (Tag.NEXT_FILE_NUMBER, edit.next_file_number),
                (Tag.LAST_SEQ, edit.last_seq),
                (Tag.MAX_FAMILY_ID, edit.max_family_id),
            )
            if value is not None
        ]
        for cf, level, f in edit.new_files:
            parts += (
                _FILE.pack(Tag.NEW_FILE, cf, level, f.number, f.size, f.smallest_seq,
                           f.largest_seq, f.entries, f.tombstones, f.smallest_expiry,
                           f.range_dels, f.created_ms, len(f.smallest)),
                f.smallest, u32(len(f.largest)), f.largest,
            )  # fmt: skip
        parts += [_DELETED.pack(Tag.DELETED_FILE, *d) for d in edit.deleted_files]
        for cf, level, key in edit.compact_pointers:
            parts += (_CF_LEVEL.pack(Tag.COMPACT_POINTER, cf, level, len(key)), key)
        for cf, name, options in edit.added_families:
            raw = name.encode()
            parts += (_CF_LEN.pack(Tag.ADD_FAMILY, cf, len(raw)), raw, u32(len(options)), options)
        parts += [_CF.pack(Tag.DROP_FAMILY, cf) for cf in edit.dropped_families]
        parts += [_CF_SEQ.pack(Tag.FAMILY_FLUSHED, cf, s) for cf, s in edit.family_flushed]
    except struct.error as e:
        raise ValueError(f"version edit field out of range: {e}") from None
    return b"".join(parts)


def decode_edit(payload: bytes, version: int = MANIFEST_VERSION) -> VersionEdit:
    """Decodes a record payload of a manifest of format `version` into an edit.

    A version 1 NEW_FILE has no created_ms (it decodes as 0) and tag 9 is unknown there.

    Raises:
        ManifestDecodeError: an unknown tag, a field cut short, a repeated scalar, a level out
            of range, or a family name that is not UTF-8.
        ValueError: `version` is not in READ_VERSIONS (the caller checks the header first).

    >>> decode_edit(bytes([Tag.MAX_FAMILY_ID]) + bytes(8)).max_family_id
    0
    >>> decode_edit(bytes([Tag.MAX_FAMILY_ID]) + bytes(8), version=1)
    Traceback (most recent call last):
    aiokv.engine.lsm.manifest_format.ManifestDecodeError: unknown tag 9 at payload offset 0
    """
    try:
        scalars, file_layout = _LAYOUTS[version]
    except KeyError:
        raise ValueError(f"no MANIFEST format version {version} in this build") from None
    v1 = version == 1
    edit = VersionEdit()
    pos = 0
    end = len(payload)
    try:
        while pos < end:
            tag = payload[pos]
            if tag in scalars:
                _, value = _SCALAR.unpack_from(payload, pos)
                pos += _SCALAR.size
                if getattr(edit, scalars[tag]) is not None:
                    raise ManifestDecodeError(f"{Tag(tag).name} given twice")
                setattr(edit, scalars[tag], value)
            elif tag == Tag.NEW_FILE:
                f = file_layout.unpack_from(payload, pos)
                if v1:  # no created_ms: 0, "unknown"
                    f = (*f[:-1], 0, f[-1])
                (_, cf, level, number, size, sseq, lseq, entries, tombs, expiry, rdels,
                 created, n) = f  # fmt: skip
                smallest, pos = _bstr(payload, pos + file_layout.size, n)
                (n,) = _U32.unpack_from(payload, pos)
                largest, pos = _bstr(payload, pos + 4, n)
                meta = FileMeta(number, size, smallest, largest, sseq, lseq, entries, tombs,
                                expiry, rdels, created)  # fmt: skip
                edit.new_files.append((cf, _level(level), meta))
            elif tag == Tag.DELETED_FILE:
                _, cf, level, number = _DELETED.unpack_from(payload, pos)
                pos += _DELETED.size
                edit.deleted_files.append((cf, _level(level), number))
            elif tag == Tag.COMPACT_POINTER:
                _, cf, level, n = _CF_LEVEL.unpack_from(payload, pos)
                key, pos = _bstr(payload, pos + _CF_LEVEL.size, n)
                edit.compact_pointers.append((cf, _level(level), key))
            elif tag == Tag.ADD_FAMILY:
                _, cf, n = _CF_LEN.unpack_from(payload, pos)
                raw, pos = _bstr(payload, pos + _CF_LEN.size, n)
                (n,) = _U32.unpack_from(payload, pos)
                options, pos = _bstr(payload, pos + 4, n)
                edit.added_families.append((cf, raw.decode(), options))
            elif tag == Tag.DROP_FAMILY:
                _, cf = _CF.unpack_from(payload, pos)
                pos += _CF.size
                edit.dropped_families.append(cf)
            elif tag == Tag.FAMILY_FLUSHED and not v1:
                _, cf, seq = _CF_SEQ.unpack_from(payload, pos)
                pos += _CF_SEQ.size
                edit.family_flushed.append((cf, seq))
            else:
                raise ManifestDecodeError(f"unknown tag {tag} at payload offset {pos}")
    except struct.error:
        raise ManifestDecodeError(f"field at payload offset {pos} is cut short") from None
    except UnicodeDecodeError:
        raise ManifestDecodeError("a column family name is not UTF-8") from None
    return edit


def _bstr(payload: bytes, pos: int, n: int) -> tuple[bytes, int]:
    if pos + n > len(payload):
        raise struct.error("byte string runs past the payload")
    return payload[pos : pos + n], pos + n


def _level(level: int) -> int:
    if level >= NUM_LEVELS:
        raise ManifestDecodeError(f"level {level} is not below {NUM_LEVELS}")
    return level


def manifest_reader(path: str, number: int | None) -> WalReader:
    """The shared sans-IO reader (wal_format.WalReader), set up for manifest `number`.

    It refuses a header of a version above MANIFEST_VERSION (UnsupportedFormatError) and
    accepts any other; `header_version` then tells the records' version.
    """
    return WalReader(
        path,
        number,
        magic=MANIFEST_MAGIC,
        version=MANIFEST_VERSION,
        record_types=RECORD_TYPES,
        name="MANIFEST",
        noun="file",
    )


def header_version(data: bytes) -> int:
    """The format version in the header of manifest `data`, once its reader accepted it.

    >>> from aiokv.engine.wal_format import encode_segment_header
    >>> header_version(encode_segment_header(3, magic=MANIFEST_MAGIC, version=1))
    1
    """
    (version,) = _U32.unpack_from(data, _VERSION_AT)
    return int(version)


def claimed_after(data: bytes, pos: int) -> int:
    """The largest synced_to of any good EDIT record starting after `pos` in manifest `data`.

    Unlike the shared reader, this searches every byte after `pos`: a bad record's length may
    be what is damaged, and one still ending inside the file would hide the records after it.
    """
    best = 0
    at = data.find(RECORD_MARK, pos + 1)
    while at >= 0:
        if at + RECORD_HEADER.size <= len(data):
            _mark, checksum, rtype, synced_to, length = RECORD_HEADER.unpack_from(data, at)
            end = at + RECORD_HEADER.size + length
            if (
                rtype in RECORD_TYPES
                and synced_to <= at  # a record cannot vouch for bytes after its own start
                and end <= len(data)
                and xxhash.xxh3_64_intdigest(data[at + CHECKED_FROM : end]) == checksum
            ):
                best = max(best, synced_to)
        at = data.find(RECORD_MARK, at + 1)
    return best


# -- CURRENT ------------------------------------------------------------------------------------

_CURRENT = re.compile(rb"(MANIFEST-(\d{6,})\nsize (0|[1-9]\d{0,19})\n)xxh3 ([0-9a-f]{16})\n")


def encode_current(number: int, size: int) -> bytes:
    """The content of CURRENT naming manifest `number`, `size` bytes long when it was created.

    >>> encode_current(7, 120)[:22]
    b'MANIFEST-000007\\nsize 1'
    >>> decode_current(encode_current(7, 120))
    (7, 120)
    """
    body = f"{manifest_name(number)}\nsize {size}\n".encode()
    return body + f"xxh3 {xxhash.xxh3_64_intdigest(body):016x}\n".encode()


def decode_current(data: bytes) -> tuple[int, int]:
    """Parses CURRENT: (manifest number, its size when created).

    Raises:
        ManifestDecodeError: not the three lines of the grammar, a bad checksum, or a
            manifest name that is not the canonical one for its number.
    """
    m = _CURRENT.fullmatch(data)
    if m is None:
        raise ManifestDecodeError("CURRENT is not a manifest name, size and checksum")
    if int(m[4], 16) != xxhash.xxh3_64_intdigest(m[1]):
        raise ManifestDecodeError("CURRENT checksum mismatch")
    number = int(m[2])
    if manifest_name(number).encode() != b"MANIFEST-" + m[2]:
        raise ManifestDecodeError("CURRENT names a manifest by a non-canonical name")
    return number, int(m[3])
