"""Homogeneous Ribbon filter (w = 128), the optional per-table filter.  See docs/format/sst.md.

All integers are little-endian.

    ribbon := kind: u8 = 2, version: u8 = 1, r: u8, reserved: u8 = 0,
              row_blocks: u32, partial: u32,
              column[r]: row_blocks u64 words each, partial column: partial u64 words

The filter is a solution S of a banded linear system over GF(2) with m = 64 * row_blocks rows
and one column of m bits per result bit.  Row i of a column is bit i % 64 of its word i // 64.
The first r columns cover every row; the partial column (present when partial > 0) covers
rows 0 .. 64 * partial - 1 and is zero below them, which makes the bits per key fractional.

A key is hashed once, h = xxh3_128(key).  Its start is u = h mod (m - 127) and its coefficient
row is c = h | 1 over rows u .. u + 127 (bit t of c is row u + t).  The key may be in the set
iff parity(c & column[u : u + 128]) is 0 for every column.  This is the "homogeneous" Ribbon
of Dillinger and Walzer: every key's result is 0, so a query needs no fingerprint, and
construction cannot fail; an absent key is a false positive with probability 2^-columns, plus
the chance that its row lies in the span of the set's rows (kept negligible by the overhead
below, and by rebuilding with more rows when the set's own rows turn out dependent).

Invariant 1: row_blocks = 0 (an empty set: no columns, answers False) or row_blocks >= 2.
Invariant 2: partial < row_blocks, and r + (partial > 0) >= 1.
Invariant 3: the payload is exactly 12 + 8 * (r * row_blocks + partial) bytes.

Building (sans-IO, in bounded steps): Gaussian elimination of each key's row into a pivot
array (online, banded: a row only ever moves towards higher rows); if a row other than a
duplicate key's reduces to zero, grow the table by 1/64 and start again (at most MAX_GROWS
times: such a row only raises the false-positive rate); back-substitution from the last row
up, all columns at once (one 136-bit lane per column), free rows taking pseudo-random bits:
bit j of xxh3_64(i as 4 bytes) in column j.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Generator
from typing import Final

import xxhash

from aiokv.engine.lsm.filter import FILTER_RIBBON, FilterFormatError

RIBBON_VERSION: Final = 1
HEADER: Final = struct.Struct("<BBBBII")  # kind, version, r, reserved, row_blocks, partial
WIDTH: Final = 128  # coefficient bits; w = 64 needs about 9% spare rows, w = 128 about 4%
MAX_COLUMNS: Final = 64  # free rows draw one column bit each from a 64-bit hash
QUERY_BLOCK: Final = 512  # rows per decoded int: 640-bit ints hold every 128-row window
MAX_GROWS: Final = 4  # rebuilds after a dependent row; then keep the (still correct) filter
FREE_SLICE: Final = 16384  # hashes freed per finish() step
ELIMINATE_STEP: Final = 6144  # rows walked by the keys placed in one step (about 1 ms)
SOLVE_SLICE: Final = 512  # rows (about 2 us each)
ENCODE_SLICE: Final = 4096  # 64-row blocks

_xxh3_128 = xxhash.xxh3_128_intdigest
_xxh3 = xxhash.xxh3_64_intdigest
_from_bytes = int.from_bytes
_LANE: Final = 136  # back-substitution lane: a 128-bit window and a byte for the shifts' spill
_WINDOW_BLOCK: Final = QUERY_BLOCK + WIDTH  # bits in a decoded int
_TZ8: Final = tuple([0] + [(i & -i).bit_length() - 1 for i in range(1, 256)])


def overhead_per_mille(n: int) -> int:
    """Rows per 1000 keys: the spare rows a set of n keys needs, growing with log(n).

    Measured with xxh3_128 rows: at 100K keys 3% spare rows gave no dependent row in 10
    builds; at 1M keys 4% gave one in 3 builds and 3% one in every build.

    >>> overhead_per_mille(100_000), overhead_per_mille(1_000_000)
    (1035, 1044)
    """
    return 1000 + min(80, max(20, 35 + 3 * (n.bit_length() - 17)))


def shape(n: int, bits_per_key: int) -> tuple[int, int]:
    """(row_blocks, words) of the first build for n keys: words stays fixed if rows are added.

    >>> shape(100_000, 7)
    (1620, 10957)
    """
    if n == 0:
        return 0, 0
    per_mille = overhead_per_mille(n)
    row_blocks = max(2, -(-(n * per_mille // 1000 + WIDTH - 1) // 64))
    words = max(1, (row_blocks * bits_per_key * 1000 + per_mille // 2) // per_mille)
    return row_blocks, words


class RibbonBuilder:
    """Collects key hashes, then builds the filter in bounded steps.  See the module docstring.

    >>> from aiokv.engine.lsm.filter import finish_sync
    >>> b = RibbonBuilder(7)
    >>> b.add_keys([b"apple", b"pear", b"apple"])
    >>> f = decode_ribbon(finish_sync(b))
    >>> f.may_contain(b"apple"), f.may_contain(b"pear")
    (True, True)
    """

    kind = FILTER_RIBBON

    def __init__(self, bits_per_key: int) -> None:
        self.bits_per_key = bits_per_key
        self.grows = 0  # rebuilds the last finish() needed (for tests and stats)
        self._hashes: list[int] = []

    def add_keys(self, keys: list[bytes]) -> None:
        self._hashes += map(_xxh3_128, keys)

    def finish(self) -> Generator[None, None, bytes]:
        """Yields between steps of about 1 ms; returns the filter's bytes.

        Consumes the collected hashes.  Working memory is freed a slice a step: freeing a
        million ints at once would stall the loop for tens of milliseconds."""
        hashes = self._hashes
        row_blocks, words = shape(len(hashes), self.bits_per_key)  # duplicates cost their bits
        if row_blocks == 0:
            return HEADER.pack(FILTER_RIBBON, RIBBON_VERSION, 0, 0, 0, 0)
        self.grows = 0
        while True:
            pivots = yield from _eliminate(hashes, 64 * row_blocks)
            if pivots is not None or self.grows == MAX_GROWS:
                break
            self.grows += 1
            row_blocks += max(1, row_blocks >> 6)
        if pivots is None:  # dependent rows even so: keep them, the filter stays correct
            pivots = yield from _eliminate(hashes, 64 * row_blocks, keep_going=True)
            assert pivots is not None
        while hashes:
            del hashes[-FREE_SLICE:]
            yield
        r, partial = divmod(words, row_blocks)
        lanes = yield from _solve(pivots, r, partial)
        columns = yield from _encode(lanes, r, partial)
        header = HEADER.pack(FILTER_RIBBON, RIBBON_VERSION, r, 0, row_blocks, partial)
        return header + columns


def _eliminate(
    hashes: list[int], rows: int, keep_going: bool = False
) -> Generator[None, None, list[int] | None]:
    """The pivot rows (0 where none), or None at the first dependent row.

    A key added twice is not a dependent row: its second copy walks the first one's path
    (pivots never change once placed) and reduces to zero on the very pivot the first copy
    placed, which `owner` records.  A row walks further as the table fills (the last keys
    take ten times the first ones' work), so steps are cut by rows walked, not keys placed."""
    starts = rows - (WIDTH - 1)
    pivot = [0] * rows
    owner = [0] * rows
    tz8 = _TZ8
    budget = ELIMINATE_STEP
    for h in hashes:
        s = first = h % starts
        c = h | 1
        while p := pivot[s]:
            c ^= p
            t = tz8[c & 255]  # c's lowest set bit; c & 1 is 0 here (p & 1 was 1)
            if not t:
                if not c:
                    if owner[s] != h and not keep_going:
                        return None
                    break
                t = (c & -c).bit_length() - 1
            s += t
            c >>= t
        else:
            pivot[s] = c
            owner[s] = h
        budget -= s - first + 4  # + 4: a key's own cost, in walked rows
        if budget < 0:
            budget = ELIMINATE_STEP
            yield
    return pivot


def _solve(pivot: list[int], r: int, partial: int) -> Generator[None, None, list[int]]:
    """Back-substitution: for every 64th row i, an int whose lane j (136 bits each) holds rows
    i .. i + 63 of column j in its low 64 bits.

    Lane j of `window` holds rows i .. i + 127 of column j.  A pivot row's value in every
    column at once: AND with the row in every lane, XOR-fold each byte's parity into its bit
    0, and sum the 16 parities with one multiplication (the sum's bit 0 lands on bit 120).
    136 bits suffice: the folds move a lane's low bits into the top byte of the lane below
    (bits 128-135, never read), and the product's bytes 17-30 land on the next lane's bytes
    0-13, where each byte's sum stays below 16 (no carry) and byte 15 receives nothing."""
    lanes = r + (partial > 0)
    ones = sum(1 << _LANE * j for j in range(lanes))  # bit 0 of every lane
    keep = ((1 << WIDTH) - 2) * ones  # bits 1 .. 127 of every lane: the window after a shift
    low_bytes = sum(1 << 8 * k for k in range(WIDTH // 8))  # bit 0 of each of 16 bytes
    byte_bits = low_bytes * ones
    spread = sum(1 << (_LANE - 1) * j for j in range(lanes))  # bit j of a u64 -> lane j, bit 0
    free_full = ones
    free_short = ones & ~(1 << _LANE * r)  # below the partial column's rows
    partial_rows = 64 * partial
    xxh3 = _xxh3
    pop = pivot.pop
    window = 0
    out: list[int] = []
    for top in range(len(pivot), 0, -SOLVE_SLICE):
        for i in range(top - 1, max(top - SOLVE_SLICE, 0) - 1, -1):
            window = (window << 1) & keep
            c = pop()  # pivot[i]; popping frees the rows a slice at a time
            if c:
                x = window & c * ones
                x ^= x >> 1
                x ^= x >> 2
                x ^= x >> 4  # bit 8k: parity of byte k; the product sums 16 of them
                window |= (x & byte_bits) * low_bytes >> WIDTH - 8 & ones
            else:
                free = free_full if i < partial_rows else free_short
                window |= xxh3(i.to_bytes(4, "little")) * spread & free
            if not i & 63:
                out.append(window)
        yield
    out.reverse()
    return out


def _encode(lanes: list[int], r: int, partial: int) -> Generator[None, None, bytes]:
    """The columns' bytes: column j's word k is the low 64 bits of lane j of lanes[k]."""
    count = r + (partial > 0)
    size = _LANE // 8 * count
    chunks = []
    for start in range(0, len(lanes), ENCODE_SLICE):
        chunks += [w.to_bytes(size, "little") for w in lanes[start : start + ENCODE_SLICE]]
        yield
    rows = b"".join(chunks)
    out = bytearray(8 * (r * len(lanes) + partial))
    at = 0
    for j in range(count):
        words = len(lanes) if j < r else partial
        for t in range(8):  # byte t of every word of column j, in one strided copy
            out[at + t : at + 8 * words : 8] = rows[_LANE // 8 * j + t :: size][:words]
        at += 8 * words
    return bytes(out)


class RibbonReader:
    """A decoded Ribbon filter.  `may_contain(key)` is False when key is certainly absent."""

    __slots__ = ("columns", "may_contain", "row_blocks")

    def __init__(self, row_blocks: int, columns: tuple[list[int], ...]) -> None:
        self.row_blocks = row_blocks
        self.columns = len(columns)
        self.may_contain: Callable[[bytes], bool] = _query(row_blocks, columns)


def _query(row_blocks: int, columns: tuple[list[int], ...]) -> Callable[[bytes], bool]:
    if row_blocks == 0:
        return _nothing
    starts = 64 * row_blocks - (WIDTH - 1)
    xxh3_128 = _xxh3_128

    def may_contain(key: bytes) -> bool:
        h = xxh3_128(key)
        u = h % starts
        window = (h | 1) << (u & 511)
        b = u >> 9
        # A key outside the set fails each column with probability 1/2: usually one or two.
        # (A loop: all() over a generator costs 200 ns more.)
        for col in columns:  # noqa: SIM110
            if (col[b] & window).bit_count() & 1:
                return False
        return True

    return may_contain


def _nothing(key: bytes) -> bool:
    return False


def decode_ribbon(data: bytes) -> RibbonReader:
    """Decodes a Ribbon filter's bytes (as RibbonBuilder.finish() returns them).

    Raises:
        FilterFormatError: a bad header or a payload of the wrong size.
    """
    if len(data) < HEADER.size:
        raise FilterFormatError(f"ribbon filter of {len(data)} bytes is shorter than its header")
    kind, version, r, reserved, row_blocks, partial = HEADER.unpack_from(data)
    if kind != FILTER_RIBBON:
        raise FilterFormatError(f"filter kind {kind} is not ribbon")
    if version != RIBBON_VERSION:
        raise FilterFormatError(f"unsupported ribbon filter version {version}")
    if reserved:
        raise FilterFormatError(f"ribbon reserved byte is {reserved}, not 0")
    count = r + (partial > 0)
    if row_blocks == 0:
        if count:
            raise FilterFormatError("empty ribbon filter with columns")
    elif row_blocks < 2 or partial >= row_blocks or not 1 <= count <= MAX_COLUMNS:
        raise FilterFormatError(f"bad ribbon shape: r {r}, row_blocks {row_blocks}, {partial}")
    size = HEADER.size + 8 * (r * row_blocks + partial)
    if len(data) != size:
        raise FilterFormatError(f"ribbon filter of {size} bytes has {len(data)} bytes")
    return RibbonReader(row_blocks, _windows(data, r, row_blocks, partial))


def _windows(data: bytes, r: int, row_blocks: int, partial: int) -> tuple[list[int], ...]:
    """Per column, one int per QUERY_BLOCK rows: rows [512 b, 512 b + 640) of the column."""
    if row_blocks == 0:
        return ()
    blocks = -(-(64 * row_blocks - (WIDTH - 1)) // QUERY_BLOCK)
    step = QUERY_BLOCK // 8
    span = _WINDOW_BLOCK // 8
    padded = step * blocks + span - step
    col_bytes = 8 * row_blocks
    at = HEADER.size
    spans = [(at + col_bytes * j, col_bytes) for j in range(r)]
    if partial:
        spans.append((at + col_bytes * r, 8 * partial))
    out = []
    for start, length in spans:
        col = data[start : start + length] + bytes(padded - length)
        out.append(
            [_from_bytes(col[o : o + span], "little") for o in range(0, step * blocks, step)]
        )
    return tuple(out)
