"""An SST's metadata: the properties block and the fixed-size footer.  See docs/format/sst.md.

    properties := fixed_size: u32, fixed[fixed_size], smallest, largest, point_smallest,
                  point_largest, checksum: u64            each key is (length: u32, bytes)
    fixed (v1) := entries, tombstones, range_dels, merges, expiring, data_blocks,
                  raw_key_bytes, raw_value_bytes, smallest_seq, largest_seq, smallest_expiry,
                  largest_expiry, created_ms: u64 each; block_size: u32; filter_kind: u8
    footer     := index, filter, range_dels, properties: handle each (offset: u64, size: u64),
                  version: u32, flags: u32, checksum: u64 (xxh3_64 of the 72 bytes before it),
                  magic: b"aiokvSST"

A handle of size 0 is an absent block (always written as offset 0, size 0).

Invariant 1: the footer is the last FOOTER.size bytes of the file; the magic is its last 8.
Invariant 2: fixed_size >= PROPS_FIXED.size; readers ignore fixed bytes they do not know, so a
later writer may append fields there without a new format version.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

import xxhash

from aiokv.engine.lsm.block import BlockFormatError, seal
from aiokv.errors import CorruptionError, UnsupportedFormatError

SST_MAGIC: Final = b"aiokvSST"
SST_VERSION: Final = 1
FOOTER = struct.Struct("<8QIIQ8s")  # 4 handles, version, flags, checksum, magic: 88 bytes
FOOTER_CHECKED: Final = 72  # the footer checksum covers the handles, version and flags
PROPS_FIXED = struct.Struct("<13QIB")  # the v1 fields: 13 u64, block_size u32, filter_kind u8
_U32 = struct.Struct("<I")

Handle = tuple[int, int]  # offset, size


@dataclass(frozen=True, slots=True)
class TableProperties:
    """What a table says about itself (its properties block).

    Attributes:
        entries: point entries (every version of every key).
        tombstones: point DELETEs plus range tombstones.
        range_dels: range tombstones.
        merges, expiring: MERGE and PUT_EXPIRING entries.
        data_blocks: data blocks.
        raw_key_bytes, raw_value_bytes: the sum of the point entries' key and value lengths.
        smallest_seq, largest_seq: over point entries and range tombstones.
        smallest_expiry, largest_expiry: over PUT_EXPIRING entries (0 if there are none).
        created_ms: the creation time the writer was given (0 if none).
        block_size: the writer's data block target; filter_kind: 0 none, 1 bloom, 2 ribbon.
        smallest, largest: the file's key range: point keys and range tombstones (a range
            tombstone's exclusive end counts as included: the range is a little wider).
        point_smallest, point_largest: the point keys' range (b"" if there are none).
    """

    entries: int
    tombstones: int
    range_dels: int
    merges: int
    expiring: int
    data_blocks: int
    raw_key_bytes: int
    raw_value_bytes: int
    smallest_seq: int
    largest_seq: int
    smallest_expiry: int
    largest_expiry: int
    created_ms: int
    block_size: int
    filter_kind: int
    smallest: bytes
    largest: bytes
    point_smallest: bytes
    point_largest: bytes


_KEYS = ("smallest", "largest", "point_smallest", "point_largest")


def encode_properties(p: TableProperties) -> bytes:
    """Encodes the properties block (with its checksum)."""
    fixed = PROPS_FIXED.pack(
        p.entries,
        p.tombstones,
        p.range_dels,
        p.merges,
        p.expiring,
        p.data_blocks,
        p.raw_key_bytes,
        p.raw_value_bytes,
        p.smallest_seq,
        p.largest_seq,
        p.smallest_expiry,
        p.largest_expiry,
        p.created_ms,
        p.block_size,
        p.filter_kind,
    )
    parts = [_U32.pack(len(fixed)), fixed]
    for key in (p.smallest, p.largest, p.point_smallest, p.point_largest):
        parts += (_U32.pack(len(key)), key)
    return seal(b"".join(parts))


def decode_properties(raw: bytes) -> TableProperties:
    """Decodes a properties block whose checksum the caller has checked.

    Raises:
        BlockFormatError: the block does not follow the grammar.
    """
    end = len(raw) - 8
    if end < 4:
        raise BlockFormatError("properties block shorter than its header")
    (fixed_size,) = _U32.unpack_from(raw, 0)
    if fixed_size < PROPS_FIXED.size or 4 + fixed_size > end:
        raise BlockFormatError(f"properties fixed part of {fixed_size} bytes")
    fields = PROPS_FIXED.unpack_from(raw, 4)
    pos = 4 + fixed_size
    keys = []
    for _ in _KEYS:
        if pos + 4 > end:
            raise BlockFormatError("properties key runs past the block")
        (size,) = _U32.unpack_from(raw, pos)
        pos += 4
        if pos + size > end:
            raise BlockFormatError("properties key runs past the block")
        keys.append(raw[pos : pos + size])
        pos += size
    if pos != end:
        raise BlockFormatError(f"{end - pos} bytes after the properties")
    return TableProperties(*fields, *keys)


def encode_footer(handles: list[Handle]) -> bytes:
    """Encodes the footer: handles of the index, filter, range-del and properties blocks."""
    flat = [x for handle in handles for x in handle]
    head = FOOTER.pack(*flat, SST_VERSION, 0, 0, SST_MAGIC)[:FOOTER_CHECKED]
    return head + struct.pack("<Q", xxhash.xxh3_64_intdigest(head)) + SST_MAGIC


def parse_footer(path: str, tail: bytes, file_size: int) -> list[Handle]:
    """Checks the footer (the last FOOTER.size bytes of a file) and returns its four handles.

    Checks, in order: size, magic, checksum, version.

    Raises:
        CorruptionError: the file is too short, the magic or the checksum is wrong.
        UnsupportedFormatError: a good footer of another format version.
    """
    at = file_size - FOOTER.size
    if at < 0 or len(tail) != FOOTER.size:
        raise CorruptionError(path, 0, f"file of {file_size} bytes is shorter than a footer")
    *flat, version, _flags, checksum, magic = FOOTER.unpack(tail)
    if magic != SST_MAGIC:
        raise CorruptionError(path, at, "no SST magic at the end of the file")
    if xxhash.xxh3_64_intdigest(tail[:FOOTER_CHECKED]) != checksum:
        raise CorruptionError(path, at, "footer checksum mismatch")
    if version != SST_VERSION:
        raise UnsupportedFormatError(
            f"{path}: SST format version {version} is not one this build reads "
            f"({SST_VERSION}); upgrade aiokv"
        )
    return [(flat[i], flat[i + 1]) for i in range(0, 8, 2)]
