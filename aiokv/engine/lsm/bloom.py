"""Blocked Bloom filter, the default per-table filter.  See docs/format/sst.md, "Filters".

All integers are little-endian.

    bloom  := kind: u8 = 1, version: u8 = 1, probes_a: u8, probes_b: u8, blocks: u32,
              block[blocks]
    block  := 64 bytes, one 512-bit little-endian integer: bit i is bit i % 8 of byte i // 8

A key is hashed once, h = xxh3_64(key).  Its block is (h >> 32) mod blocks.  Its mask is
PROBES[probes_a][h & 0x3FFF] | PROBES[probes_b][(h >> 14) & 0x3FFF], where PROBES[p][v] sets
bits (g >> 9j) & 511 for j < p, g = xxh3_64(v as 2 bytes, little-endian): two look-ups in a
table of 16384 precomputed 512-bit masks instead of k shifts (Python's cost is per operation).
The key may be in the set iff every bit of its mask is set in its block.

Invariant 1: 0 <= probes_b <= probes_a <= 7 and probes_a >= 1 (7 probes use 63 bits of g).
Invariant 2: the payload is exactly 8 + 64 * blocks bytes.
Invariant 3: blocks = 0 only for an empty key set; such a filter answers False for every key.

The reader keeps each block complemented (the 512-bit ~block), so a query is
`not (cb & mask_a or cb & mask_b)`: no mask is ever ORed together, and a key absent from the
set usually stops after the first AND.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator
from typing import Final

import xxhash

from aiokv.engine.lsm.filter import FILTER_BLOOM, FilterFormatError

BLOOM_VERSION: Final = 1
HEADER: Final = struct.Struct("<BBBBI")  # kind, version, probes_a, probes_b, blocks
BLOCK_BYTES: Final = 64  # one cache line
PROBE_INDEX_BITS: Final = 14  # 16384 masks: at 10 bits/key 13 bits gave 1.10-1.20% false
# positives, 14 bits 1.03-1.09%, 16 bits 0.99% but its 6 MiB miss the L2 cache (+150 ns a query)
MAX_PROBES: Final = 7  # per table look-up: 7 positions of 9 bits use 63 of g's 64 bits
BUILD_SLICE: Final = 2048  # keys per finish() step: about 1 ms at 300-450 ns a key
_TABLE_SLICE: Final = 1024  # probe-table entries per step (about 0.7 us each)

_xxh3 = xxhash.xxh3_64_intdigest
_INDEX_MASK: Final = (1 << PROBE_INDEX_BITS) - 1
assert _INDEX_MASK == 0x3FFF  # the query inlines it
_COMPLEMENT: Final = bytes(range(255, -1, -1))  # bytes.translate table: b -> 255 - b
_from_bytes = int.from_bytes

# Probes k per bits_per_key (index): even, so that both look-ups use the one table (the
# second table of an odd k pushes both out of L2: 300 ns instead of 255 ns a query, measured),
# and the even k of lowest measured false-positive rate (100K keys, 400K absent).  At 10 bits
# a key: k = 4: 1.40%, k = 6: 1.09%, k = 8: 1.13% (k = 7 gives 1.05%, but slower).
_K_FOR_BITS: Final = (0, 1, 2, 2, 2, 4, 4, 4, 6, 6, 6, 8, 8, 8, 8, 10, 10, 10, 10, 10, 10)
_K_MAX_BITS: Final = (12, 12, 12, 12, 12, 14)  # bits_per_key 21 .. 25, and above


def probes_for(bits_per_key: int) -> tuple[int, int]:
    """(probes_a, probes_b) for `bits_per_key` (1 to 32).

    >>> probes_for(10), probes_for(1)
    ((3, 3), (1, 0))
    """
    if bits_per_key < len(_K_FOR_BITS):
        k = _K_FOR_BITS[bits_per_key]
    else:
        k = _K_MAX_BITS[min(bits_per_key - len(_K_FOR_BITS), len(_K_MAX_BITS) - 1)]
    return (k + 1) // 2, k // 2


def probe_table(p: int) -> list[int]:
    """PROBES[p]: 16384 masks of 512 bits with p probes each (built once, about 1.6 MiB)."""
    gen = probe_table_steps(p)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            table: list[int] = stop.value
            return table


_TABLES: dict[int, list[int]] = {}  # p -> PROBES[p]; only the p's in use are ever built


def probe_table_steps(p: int) -> Generator[None, None, list[int]]:
    """PROBES[p], built the first time in steps of about 1 ms (16384 hashes and masks)."""
    if (table := _TABLES.get(p)) is not None:
        return table
    table = []
    for start in range(0, 1 << PROBE_INDEX_BITS, _TABLE_SLICE):
        values = [v.to_bytes(2, "little") for v in range(start, start + _TABLE_SLICE)]
        table += [_probe_mask(g, p) for g in map(_xxh3, values)]
        yield
    return _TABLES.setdefault(p, table)


def _probe_mask(g: int, p: int) -> int:
    mask = 0
    for j in range(p):
        mask |= 1 << ((g >> 9 * j) & 511)
    return mask


class BloomBuilder:
    """Collects key hashes, then builds the filter in bounded steps.  See the module docstring.

    >>> from aiokv.engine.lsm.filter import finish_sync
    >>> b = BloomBuilder(10)
    >>> b.add_keys([b"apple", b"pear"])
    >>> f = decode_bloom(finish_sync(b))
    >>> f.may_contain(b"apple"), f.may_contain(b"pear")
    (True, True)
    """

    kind = FILTER_BLOOM

    def __init__(self, bits_per_key: int) -> None:
        self.bits_per_key = bits_per_key
        self._hashes: list[int] = []

    def add_keys(self, keys: list[bytes]) -> None:
        self._hashes += map(_xxh3, keys)

    def finish(self) -> Generator[None, None, bytes]:
        """Yields between steps of about 1 ms; returns the filter's bytes.

        Consumes the collected hashes from their end, a slice a step, so that they are freed
        a slice at a time too (a million ints freed at once stall the loop for 20 ms)."""
        hashes = self._hashes
        n = len(hashes)
        pa, pb = probes_for(self.bits_per_key)
        ta = yield from probe_table_steps(pa)
        tb = yield from probe_table_steps(pb)
        nb = -(-n * self.bits_per_key // (8 * BLOCK_BYTES))  # a duplicate key costs its bits
        blocks = [0] * nb
        while hashes:
            chunk = hashes[-BUILD_SLICE:]
            del hashes[-BUILD_SLICE:]
            for h in chunk:
                blocks[(h >> 32) % nb] |= ta[h & _INDEX_MASK] | tb[h >> 14 & _INDEX_MASK]
            yield
        out = [HEADER.pack(FILTER_BLOOM, BLOOM_VERSION, pa, pb, nb)]
        for start in range(0, nb, BUILD_SLICE):
            out += [b.to_bytes(BLOCK_BYTES, "little") for b in blocks[start : start + BUILD_SLICE]]
            yield
        return b"".join(out)


class BloomReader:
    """A decoded Bloom filter.  `may_contain(key)` is False when key is certainly absent."""

    __slots__ = ("blocks", "may_contain", "probes")

    def __init__(self, cblocks: list[int], pa: int, pb: int) -> None:
        self.blocks = len(cblocks)
        self.probes = pa + pb
        self.may_contain: Callable[[bytes], bool] = _query(cblocks, pa, pb)


def _query(cblocks: list[int], pa: int, pb: int) -> Callable[[bytes], bool]:
    nb = len(cblocks)
    if nb == 0:
        return _nothing
    ta = probe_table(pa)
    tb = probe_table(pb)
    xxh3 = _xxh3

    def may_contain(key: bytes) -> bool:
        h = xxh3(key)
        cb = cblocks[(h >> 32) % nb]
        return not (cb & ta[h & 0x3FFF] or cb & tb[h >> 14 & 0x3FFF])

    return may_contain


def _nothing(key: bytes) -> bool:
    return False


def decode_bloom(data: bytes) -> BloomReader:
    """Decodes a Bloom filter's bytes (as BloomBuilder.finish() returns them).

    Raises:
        FilterFormatError: a bad header or a payload of the wrong size.
    """
    if len(data) < HEADER.size:
        raise FilterFormatError(f"bloom filter of {len(data)} bytes is shorter than its header")
    kind, version, pa, pb, nb = HEADER.unpack_from(data)
    if kind != FILTER_BLOOM:
        raise FilterFormatError(f"filter kind {kind} is not bloom")
    if version != BLOOM_VERSION:
        raise FilterFormatError(f"unsupported bloom filter version {version}")
    if not 1 <= pa <= MAX_PROBES or not 0 <= pb <= pa:
        raise FilterFormatError(f"bad bloom probe counts {pa}, {pb}")
    if len(data) != HEADER.size + BLOCK_BYTES * nb:
        raise FilterFormatError(f"bloom filter of {nb} blocks has {len(data)} bytes")
    flipped = data.translate(_COMPLEMENT)  # every block complemented in one C call
    starts = range(HEADER.size, len(data), BLOCK_BYTES)
    cblocks = [_from_bytes(flipped[o : o + BLOCK_BYTES], "little") for o in starts]
    return BloomReader(cblocks, pa, pb)
