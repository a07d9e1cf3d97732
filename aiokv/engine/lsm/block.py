"""SST blocks: the data block (which also carries range tombstones), the index block, and the
checksum every block of a table ends with.  See docs/format/sst.md.  Little-endian throughout.

    block      := body, checksum: u64                    xxh3_64 of body
    data body  := keys, values, offsets: u32[2n+1], seqs: u64[n], kinds: u8[n],
                  [expiries: u64[n]], n: u32, flags: u8   expiries only with HAS_EXPIRIES
    index body := keys, key_offsets: u32[n+1], block_offsets: u64[n+1], n: u32

In a data block, offsets[i] is where key i starts and offsets[n + i] where value i starts,
counted from the start of the block, so each key and value is the slice between two neighbouring
offsets.  A block decodes in a handful of C-level calls (one struct or array call per array, and
either one struct call or one comprehension of slices for the keys) instead of a varint chain
walked entry by entry.  Block offsets in the index are file offsets: block i of the table is
[block_offsets[i], block_offsets[i + 1]).

Invariant 1: entries are sorted by (key ascending, seq descending); a key repeats once per version.
Invariant 2: offsets[0] = 0, offsets never decrease, and offsets[2n] is where offsets start.
Invariant 3: a flag is set exactly when what it says holds for the whole block; unknown flags
are corruption.  Readers rely on the flags to take shortcuts without looking at each entry.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Sequence
from itertools import accumulate, chain, islice
from operator import lt
from typing import Final, Literal

import xxhash

from aiokv.engine.batch_format import ValueKind

Entry = tuple[int, bytes, int, int]  # kind, value, seq, expiry_ms (as in memtable.py)

# Data block flags.  On disk: never renumber or reuse.
HAS_EXPIRIES: Final = 1  # the expiries array is present: some entry is PUT_EXPIRING
PLAIN: Final = 2  # every entry is a PUT with expiry 0, and no key repeats
FIXED_KEYS: Final = 4  # every key has the same length: one struct call splits them
FIXED_VALUES: Final = 8  # every value has the same length
KNOWN_FLAGS: Final = HAS_EXPIRIES | PLAIN | FIXED_KEYS | FIXED_VALUES

CHECKSUM = struct.Struct("<Q")  # xxh3_64 of the body, at the end of every block
DATA_TRAILER = struct.Struct("<IB")  # n, flags: before the checksum
INDEX_TRAILER = struct.Struct("<I")  # n
DATA_FIXED: Final = 4 + DATA_TRAILER.size + CHECKSUM.size  # offsets[0], n, flags, checksum: 17
ENTRY_OVERHEAD: Final = 4 + 4 + 8 + 1  # key offset, value offset, seq, kind (no expiry): 17
_TAIL: Final = DATA_TRAILER.size + CHECKSUM.size

PUT: Final = int(ValueKind.PUT)
PUT_EXPIRING: Final = int(ValueKind.PUT_EXPIRING)

_xxh3 = xxhash.xxh3_64_intdigest
_pack_checksum = CHECKSUM.pack
_unpack_checksum = CHECKSUM.unpack_from
_pack_trailer = DATA_TRAILER.pack
_unpack_trailer = DATA_TRAILER.unpack_from

# Arrays decode a column with one memcpy; they are in native order, so big-endian hosts swap.
_U32: Final = "I" if array("I").itemsize == 4 else "L"
_SWAP: Final = sys.byteorder == "big"
assert array(_U32).itemsize == 4 and array("Q").itemsize == 8

_SPLITS: dict[tuple[int, int], struct.Struct] = {}
_MAX_SPLITS: Final = 1024  # cached (size, count) splitters: a few distinct ones per workload


class BlockFormatError(ValueError):
    """A block's bytes do not follow the grammar (its checksum was already good)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def seal(body: bytes) -> bytes:
    """The block: `body` followed by its xxh3_64 checksum."""
    return body + _pack_checksum(_xxh3(body))


def checksum_ok(raw: bytes) -> bool:
    """Whether `raw` (a whole block) ends with the checksum of what precedes it."""
    end = len(raw) - 8
    return end >= 0 and _xxh3(memoryview(raw)[:end]) == _unpack_checksum(raw, end)[0]


def _splitter(size: int, count: int) -> struct.Struct:
    """A Struct that cuts `count` consecutive pieces of `size` bytes, in C."""
    st = _SPLITS.get((size, count))
    if st is None:
        if len(_SPLITS) >= _MAX_SPLITS:
            _SPLITS.clear()
        st = _SPLITS[size, count] = struct.Struct(f"{size}s" * count)
    return st


def _array(code: str, raw: bytes, start: int, count: int, width: int) -> array[int]:
    a = array(code)
    a.frombytes(raw[start : start + count * width])
    if _SWAP:
        a.byteswap()
    return a


def _slices(raw: bytes, offs: Sequence[int]) -> tuple[bytes, ...]:
    """The pieces of `raw` between neighbouring offsets."""
    return tuple([raw[a:b] for a, b in zip(offs, islice(offs, 1, None), strict=False)])


class Block:
    """A decoded data block: what the block cache holds.  Treat it as immutable.

    Attributes:
        keys: the keys, in block order (bisect-ready; a key repeats once per version).
        seqs, kinds: per entry (indexable: an array of ints and a bytes object).
        expiries: per entry, or None when no entry of the block is PUT_EXPIRING.
        plain: every entry is a PUT with expiry 0 and no key repeats.
        raw: the block's bytes; voffs: the n + 1 value offsets into it (values are sliced
            from raw only when asked for).
        raw_size: len(raw); nbytes: memory charge for a byte-bounded cache.
    """

    __slots__ = (
        "_vsize",
        "expiries",
        "keys",
        "kinds",
        "nbytes",
        "plain",
        "raw",
        "raw_size",
        "ref",
        "seqs",
        "voffs",
    )

    def __init__(
        self,
        raw: bytes,
        keys: tuple[bytes, ...],
        voffs: array[int],
        seqs: array[int],
        kinds: bytes,
        expiries: array[int] | None,
        flags: int,
    ) -> None:
        n = len(keys)
        self.raw = raw
        self.keys = keys
        self.voffs = voffs
        self.seqs = seqs
        self.kinds = kinds
        self.expiries = expiries
        self.plain = bool(flags & PLAIN)
        self._vsize = voffs[1] - voffs[0] if flags & FIXED_VALUES and n else -1
        self.raw_size = len(raw)
        self.ref = False  # the block cache's CLOCK bit: set on every hit
        # raw (one bytes object), each key (a bytes object: 33 bytes of header, plus a list
        # slot of 8), the arrays (8 + 4 + 8 per entry, plus 8 with expiries) and the headers of
        # the arrays, the list and this object.
        self.nbytes = (
            len(raw)
            + (voffs[0] if n else 0)
            + n * (41 + 4 + 8 + 1 + (8 if expiries is not None else 0))
            + 400
        )

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"<Block {len(self.keys)} entries, {self.raw_size} bytes>"

    def value(self, i: int) -> bytes:
        """The value of entry i (sliced from the raw block)."""
        voffs = self.voffs
        return self.raw[voffs[i] : voffs[i + 1]]

    def values(self, start: int = 0, stop: int | None = None) -> list[bytes]:
        """The values of entries start..stop-1 (all by default), in C-level steps."""
        n = len(self.keys)
        stop = n if stop is None else min(stop, n)
        if start >= stop:
            return []
        voffs = self.voffs
        if self._vsize >= 0:
            return list(_splitter(self._vsize, stop - start).unpack_from(self.raw, voffs[start]))
        return list(_slices(self.raw, voffs[start : stop + 1]))

    def entry(self, i: int) -> Entry:
        """Entry i as the engine's (kind, value, seq, expiry_ms) tuple."""
        exp = self.expiries
        return (self.kinds[i], self.value(i), self.seqs[i], 0 if exp is None else exp[i])


def encode_block(
    keys: bytes,
    values: bytes,
    klens: Sequence[int],
    vlens: Sequence[int],
    seqs: bytes,
    kinds: bytes,
    expiries: bytes | None,
    distinct: bool,
    fixed_keys: Literal[True] | None = None,
    fixed_values: Literal[True] | None = None,
) -> bytes:
    """Encodes a data block from its columns, already joined or packed.

    Args:
        keys, values: the keys and the values, each joined into one blob.
        klens, vlens: the length of each key and value.
        seqs: the seqs packed as u64le; kinds: one byte per entry.
        expiries: the expiries packed as u64le (needed only when some kind is PUT_EXPIRING).
        distinct: no key repeats in the block (for the PLAIN flag).
        fixed_keys, fixed_values: True when the caller knows all keys (values) have one
            length; None: count them.
    """
    n = len(klens)
    flags = 0
    if PUT_EXPIRING in kinds:
        if expiries is None:
            raise ValueError("a block with PUT_EXPIRING entries needs their expiries")
        flags = HAS_EXPIRIES
    elif distinct and kinds.count(PUT) == n:
        flags = PLAIN
    if n and (fixed_keys or klens.count(klens[0]) == n):
        flags |= FIXED_KEYS
    if n and (fixed_values or vlens.count(vlens[0]) == n):
        flags |= FIXED_VALUES
    offsets = struct.pack(f"<{2 * n + 1}I", *accumulate(chain(klens, vlens), initial=0))
    parts = [keys, values, offsets, seqs, kinds]
    if flags & HAS_EXPIRIES:
        parts.append(expiries)  # type: ignore[arg-type]  # checked above
    parts.append(_pack_trailer(n, flags))
    return seal(b"".join(parts))


def encode_entries(
    keys: Sequence[bytes],
    seqs: Sequence[int],
    kinds: bytes,
    expiries: Sequence[int] | None,
    values: Sequence[bytes],
) -> bytes:
    """Encodes a data block from plain columns (range tombstones, tests).

    >>> raw = encode_entries([b"a", b"b"], [2, 1], bytes([1, 0]), None, [b"x", b""])
    >>> b = decode_block(raw)
    >>> b.keys, b.entry(0), b.entry(1)
    ((b'a', b'b'), (1, b'x', 2, 0), (0, b'', 1, 0))
    """
    n = len(keys)
    exp = None if expiries is None else struct.pack(f"<{n}Q", *expiries)
    if exp is None and PUT_EXPIRING in kinds:
        exp = bytes(8 * n)
    return encode_block(
        b"".join(keys),
        b"".join(values),
        list(map(len, keys)),
        list(map(len, values)),
        struct.pack(f"<{n}Q", *seqs),
        kinds,
        exp,
        all(map(lt, keys, islice(keys, 1, None))),
    )


def decode_block(raw: bytes) -> Block:
    """Decodes a data block whose checksum the caller has checked.

    Raises:
        BlockFormatError: the arrays do not fit the block, or the flags are unknown or false.
    """
    size = len(raw)
    if size < DATA_FIXED:
        raise BlockFormatError(f"data block of {size} bytes is shorter than its trailer")
    n, flags = _unpack_trailer(raw, size - _TAIL)
    if flags & ~KNOWN_FLAGS:
        raise BlockFormatError(f"unknown data block flags {flags:#x}")
    per = ENTRY_OVERHEAD + (8 if flags & HAS_EXPIRIES else 0)
    at = size - DATA_FIXED - per * n  # where offsets start
    if at < 0:
        raise BlockFormatError(f"{n} entries do not fit a data block of {size} bytes")
    offs = _array(_U32, raw, at, 2 * n + 1, 4)
    kend = offs[n]
    if offs[0] != 0 or offs[2 * n] != at or kend > at:
        raise BlockFormatError("data block offsets do not span its keys and values")
    if flags & FIXED_KEYS and n:
        klen = offs[1]
        if klen * n != kend:
            raise BlockFormatError("FIXED_KEYS flag on keys of different lengths")
        keys = _splitter(klen, n).unpack_from(raw)
    else:
        keys = _slices(raw, offs[: n + 1])
    voffs = offs[n:]
    if flags & FIXED_VALUES and n and (voffs[1] - kend) * n != at - kend:
        raise BlockFormatError("FIXED_VALUES flag on values of different lengths")
    p = at + 4 * (2 * n + 1)
    seqs = _array("Q", raw, p, n, 8)
    p += 8 * n
    kinds = raw[p : p + n]
    expiries = _array("Q", raw, p + n, n, 8) if flags & HAS_EXPIRIES else None
    return Block(raw, keys, voffs, seqs, kinds, expiries, flags)


def encode_index(last_keys: Sequence[bytes], block_offsets: Sequence[int]) -> bytes:
    """Encodes the index: the last key of each data block and the n + 1 block boundaries.

    >>> decode_index(encode_index([b"k", b"m"], [0, 40, 90]))
    ((b'k', b'm'), [0, 40, 90])
    """
    n = len(last_keys)
    if len(block_offsets) != n + 1:
        raise ValueError("an index of n blocks needs n + 1 block offsets")
    body = b"".join(
        (
            b"".join(last_keys),
            struct.pack(f"<{n + 1}I", *accumulate(map(len, last_keys), initial=0)),
            struct.pack(f"<{n + 1}Q", *block_offsets),
            INDEX_TRAILER.pack(n),
        )
    )
    return seal(body)


def decode_index(raw: bytes) -> tuple[tuple[bytes, ...], list[int]]:
    """Decodes an index block (checksum already checked) into (last keys, block offsets).

    Raises:
        BlockFormatError: the arrays do not fit the block or the offsets are out of order.
    """
    size = len(raw)
    fixed = INDEX_TRAILER.size + CHECKSUM.size
    if size < fixed + 12:
        raise BlockFormatError(f"index block of {size} bytes is shorter than its trailer")
    (n,) = INDEX_TRAILER.unpack_from(raw, size - fixed)
    at = size - fixed - 12 * (n + 1)
    if at < 0:
        raise BlockFormatError(f"{n} index entries do not fit an index block of {size} bytes")
    koffs = _array(_U32, raw, at, n + 1, 4)
    if koffs[0] != 0 or koffs[n] != at:
        raise BlockFormatError("index key offsets do not span its keys")
    boffs = _array("Q", raw, at + 4 * (n + 1), n + 1, 8).tolist()
    keys = _slices(raw, koffs)
    if not all(map(lt, koffs, islice(koffs, 1, None))):
        raise BlockFormatError("index keys are not all non-empty")
    if not all(map(lt, boffs, islice(boffs, 1, None))):
        raise BlockFormatError("index block offsets do not increase")
    return keys, boffs
