"""Table: an open SST over a buffer (bytes or an mmap), with point lookups and block access.

See docs/format/sst.md.  Pure: the caller maps the file and owns the block cache.

    table := data_block*, [filter], [range_dels], index, properties, footer

Opening reads and checks the footer, then the index, filter, range-del and properties blocks
(each verified against its checksum); data blocks are checked when read.  Every byte of a
table lies under exactly one checksum, so damage anywhere surfaces as CorruptionError(path,
offset of the damaged block, detail), from open() or from read_block(), never as altered data.

Invariant 1: the blocks tile the file: data blocks from offset 0, then the present ones of
filter, range-dels, index, properties, then the footer, with no gap.
Invariant 2: index_keys[i] is the last key of block i; index_keys never decrease (a key whose
versions span a block boundary is the last key of one block and the first of the next).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from itertools import islice
from operator import le, lt, neg
from typing import Final, Protocol, TypeVar

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.lsm.block import (
    Block,
    BlockFormatError,
    Entry,
    checksum_ok,
    decode_block,
    decode_index,
)
from aiokv.engine.lsm.sst_props import FOOTER, TableProperties, decode_properties, parse_footer
from aiokv.errors import CorruptionError

__all__ = ["Block", "Entry", "FilterReader", "Table", "TableProperties"]

_RANGE_KIND: Final = int(ValueKind.DELETE_RANGE)
T = TypeVar("T")


class Buffer(Protocol):
    """A whole file: len() and slices as bytes (bytes, or an mmap)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> bytes: ...


class FilterReader(Protocol):
    """A decoded filter (filter.py): False means the key is certainly absent."""

    def may_contain(self, key: bytes) -> bool: ...


class Table:
    """An open table.  Use Table.open(); see the module docstring.

    Attributes:
        number, path: the table's file number and path (named in every error).
        properties: its TableProperties.  smallest, largest: the file's key range, widened
            by the range tombstones.  range_dels: (start, end_exclusive, seq), sorted by start.
        index_keys: the last key of each data block (bisect-ready); block_count: their number.
        filter: the decoded filter, or None.
        filter_checked, filter_useful: lookups that asked the filter, and those it answered
            "absent" (so `filter_checked - filter_useful` went on to a block).
        filter_useless: lookups the filter let through that found no entry of the key (its
            false positives).
    """

    __slots__ = (
        "_buf",
        "_hi",
        "_lo",
        "_offsets",
        "_rd_starts",
        "block_count",
        "filter",
        "filter_checked",
        "filter_useful",
        "filter_useless",
        "index_keys",
        "largest",
        "number",
        "path",
        "properties",
        "range_dels",
        "smallest",
    )

    properties: TableProperties  # set by open()

    def __init__(self, number: int, path: str, buf: Buffer) -> None:
        """An unchecked shell: use Table.open()."""
        self.number = number
        self.path = path
        self._buf = buf
        self.smallest = self.largest = b""
        # Tuples, not lists, here and in Block.keys: a tuple of bytes leaves the garbage
        # collector's tracking, so a large block cache does not lengthen full collections.
        self.index_keys: tuple[bytes, ...] = ()
        self.block_count = 0
        self._offsets: list[int] = [0]
        # With no point entries, lo > hi puts every key out of range (keys are non-empty).
        self._lo = b"\x01"
        self._hi = b"\x00"
        self.range_dels: list[tuple[bytes, bytes, int]] = []
        self._rd_starts: list[bytes] = []
        self.filter: FilterReader | None = None
        self.filter_checked = 0
        self.filter_useful = 0
        self.filter_useless = 0

    @classmethod
    def open(
        cls,
        number: int,
        path: str,
        buf: Buffer,
        decode_filter: Callable[[bytes], FilterReader | None],
    ) -> Table:
        """Parses and checks a table's footer, index, filter, range-dels and properties.

        Args:
            buf: the whole file (anything with len() whose slices are bytes).
            decode_filter: turns the filter block's payload into a FilterReader (or None to
                do without); called only when the table has a filter.

        Raises:
            CorruptionError: the footer or a metadata block fails its checks (short file, bad
                magic, checksum mismatch, blocks that do not tile the file, ...).
            UnsupportedFormatError: the footer names a format version this build cannot read.
        """
        t = cls(number, path, buf)
        size = len(buf)
        foot = size - FOOTER.size
        handles = parse_footer(path, buf[max(foot, 0) : size], size)
        index_h, filter_h, rdel_h, props_h = handles
        present = [h for h in (filter_h, rdel_h, index_h, props_h) if h[1]]
        if not index_h[1] or not props_h[1] or any(h[0] for h in handles if not h[1]):
            raise CorruptionError(path, foot, "footer lacks an index or properties handle")
        data_end = present[0][0]
        pos = data_end
        for off, length in present:
            if off != pos:
                raise CorruptionError(path, foot, "block handles do not tile the file")
            pos += length
        if pos != foot:
            raise CorruptionError(path, foot, "block handles do not tile the file")

        props = t._decode(props_h, "properties", decode_properties)
        t.properties = props
        keys, offsets = t._decode(index_h, "index", decode_index)
        if offsets[0] != 0 or offsets[-1] != data_end or len(keys) != props.data_blocks:
            raise CorruptionError(path, index_h[0], "index does not match the data blocks")
        if not all(map(le, keys, islice(keys, 1, None))):
            raise CorruptionError(path, index_h[0], "index keys out of order")
        if (keys[-1] if keys else b"") != props.point_largest or bool(keys) != bool(props.entries):
            raise CorruptionError(path, index_h[0], "index disagrees with the properties")
        t.index_keys = keys
        t._offsets = offsets
        t.block_count = len(keys)
        t.smallest = props.smallest
        t.largest = props.largest
        if keys:
            t._lo = props.point_smallest
            t._hi = props.point_largest
        if rdel_h[1]:
            t.range_dels = t._decode(rdel_h, "range-del", _decode_range_dels)
        if len(t.range_dels) != props.range_dels:
            raise CorruptionError(path, rdel_h[0], "range tombstone count disagrees")
        t._rd_starts = [r[0] for r in t.range_dels]
        if filter_h[1]:
            raw = t._checked(filter_h, "filter")
            t.filter = decode_filter(raw[:-8])
        return t

    def _checked(self, handle: tuple[int, int], what: str) -> bytes:
        off, length = handle
        raw = self._buf[off : off + length]
        if not checksum_ok(raw):
            raise CorruptionError(self.path, off, f"{what} block checksum mismatch")
        return raw

    def _decode(self, handle: tuple[int, int], what: str, decode: Callable[[bytes], T]) -> T:
        raw = self._checked(handle, what)
        try:
            return decode(raw)
        except BlockFormatError as e:
            raise CorruptionError(self.path, handle[0], f"{what} block: {e.detail}") from None

    # -- blocks -----------------------------------------------------------------------------

    def block_index_for(self, key: bytes) -> int:
        """The first block whose last key is >= key (block_count when past the end)."""
        return bisect_left(self.index_keys, key)

    def block_handle(self, i: int) -> tuple[int, int]:
        """(file offset, size) of data block i."""
        off = self._offsets
        return off[i], off[i + 1] - off[i]

    def read_block(self, i: int) -> Block:
        """Reads, checks and decodes data block i (the caller caches it).

        Raises:
            CorruptionError: the block fails its checksum or grammar (at the block's offset).
            IndexError: no block i.
        """
        if not 0 <= i < self.block_count:
            raise IndexError(f"block {i} of a table of {self.block_count} blocks")
        off = self._offsets[i]
        raw = self._buf[off : self._offsets[i + 1]]
        if not checksum_ok(raw):
            raise CorruptionError(self.path, off, "data block checksum mismatch")
        try:
            return decode_block(raw)
        except BlockFormatError as e:
            raise CorruptionError(self.path, off, f"data block: {e.detail}") from None

    # -- lookups ----------------------------------------------------------------------------

    def get(self, key: bytes, seq: int | None, block_of: Callable[[int], Block]) -> Entry | None:
        """The newest entry of `key` with seq <= `seq` (None: the newest of all), or None.

        Checks the point key range, then the filter, then the index; reads blocks through
        `block_of(i)` (the caller's cache in front of read_block).  The table's own range
        tombstones are not applied: see `tombstone_seq`.
        """
        if key < self._lo or key > self._hi:
            return None
        f = self.filter
        if f is not None:
            self.filter_checked += 1
            if not f.may_contain(key):
                self.filter_useful += 1
                return None
        i = bisect_left(self.index_keys, key)
        b = block_of(i)
        keys = b.keys
        j = bisect_left(keys, key)  # < len(keys): the block's last key is >= key
        if keys[j] != key:
            if f is not None:
                self.filter_useless += 1
            return None
        seqs = b.seqs
        if seq is None or seqs[j] <= seq:
            vo = b.voffs
            exp = b.expiries
            return (b.kinds[j], b.raw[vo[j] : vo[j + 1]], seqs[j], 0 if exp is None else exp[j])
        return self._older(key, seq, i, b, j, block_of)

    def _older(
        self, key: bytes, seq: int, i: int, b: Block, j: int, block_of: Callable[[int], Block]
    ) -> Entry | None:
        """Walks the versions of `key` from entry j of block i for the newest seq <= `seq`."""
        while True:
            keys = b.keys
            end = bisect_right(keys, key, j)
            k = bisect_left(b.seqs, -seq, j, end, key=neg)  # seqs decrease over the versions
            if k < end:
                return b.entry(k)
            i += 1
            if end < len(keys) or i >= self.block_count:
                return None
            b = block_of(i)  # the versions may go on in the next block
            if b.keys[0] != key:
                return None
            j = 0

    def versions(
        self, key: bytes, seq: int | None, block_of: Callable[[int], Block]
    ) -> list[Entry]:
        """Every entry of `key` with seq <= `seq` (None: all), newest first (merge reads)."""
        if key < self._lo or key > self._hi:
            return []
        f = self.filter
        if f is not None and not f.may_contain(key):
            return []
        i = bisect_left(self.index_keys, key)
        out: list[Entry] = []
        while i < self.block_count:
            b = block_of(i)
            keys = b.keys
            j = bisect_left(keys, key)
            end = bisect_right(keys, key, j)
            out += [b.entry(k) for k in range(j, end) if seq is None or b.seqs[k] <= seq]
            if end < len(keys):
                break
            i += 1  # the versions may go on in the next block
        return out

    def tombstone_seq(self, key: bytes, seq: int | None = None) -> int:
        """The highest seq (<= `seq`) of this table's range tombstones covering key, or 0."""
        hi = bisect_right(self._rd_starts, key)
        return max(
            (s for _, end, s in self.range_dels[:hi] if key < end and (seq is None or s <= seq)),
            default=0,
        )

    def __repr__(self) -> str:
        return f"<Table {self.number} {self.path!r}: {self.block_count} blocks>"


def _decode_range_dels(raw: bytes) -> list[tuple[bytes, bytes, int]]:
    b = decode_block(raw)
    if b.kinds.count(_RANGE_KIND) != len(b.kinds):
        raise BlockFormatError("range-del block holds an entry of another kind")
    ends = b.values()
    if not all(map(lt, b.keys, ends)):
        raise BlockFormatError("range tombstone with start >= end")
    if not all(map(le, b.keys, islice(b.keys, 1, None))):
        raise BlockFormatError("range tombstones out of order")
    return list(zip(b.keys, ends, b.seqs, strict=True))
