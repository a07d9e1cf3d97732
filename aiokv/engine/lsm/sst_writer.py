"""SstWriter: builds an SST from entries in table order, in bounded steps.  See docs/format/sst.md.

    table := data_block*, [filter], [range_dels], index, properties, footer

Flush and compaction feed it slices of about a thousand entries on the event loop, take the
finished blocks' bytes after each slice and write them elsewhere; `finish()` is a generator
that yields while the filter builder works and returns the tail of the file.  Nothing here
does I/O.  Each slice is checked and cut into blocks with whole-column C-level calls (map,
accumulate, join, struct.pack of n items); the Python code runs once per block, not per entry.

Invariant 1: entries arrive in (key ascending, seq descending) order, across slices too.
Invariant 2: a data block is cut after the first entry that brings its estimated size
(DATA_FIXED + the sum of key + value + ENTRY_OVERHEAD over its entries) to block_size.
Invariant 3: a call that raises leaves the writer as it was (every check precedes every change).
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from collections.abc import Generator, Sequence
from itertools import accumulate, chain, compress, islice, repeat
from operator import add, eq, gt, le, lt, not_
from typing import Final, Protocol

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.lsm.block import (
    DATA_FIXED,
    ENTRY_OVERHEAD,
    PUT_EXPIRING,
    encode_block,
    encode_entries,
    encode_index,
    seal,
)
from aiokv.engine.lsm.sst_props import (
    Handle,
    TableProperties,
    encode_footer,
    encode_properties,
)
from aiokv.engine.steps import run_to_end

__all__ = ["FilterBuilder", "SstWriter", "TableProperties", "finish_sync"]

MAX_KEY_SIZE: Final = 1 << 20  # 1 MiB, the largest key the database accepts
MAX_VALUE_SIZE: Final = 1 << 30  # 1 GiB: keeps every block under the 4 GiB its u32 offsets reach
DEFAULT_BLOCK_SIZE: Final = 4096  # one page: a block read touches one or two pages
DELETE: Final = int(ValueKind.DELETE)
MERGE: Final = int(ValueKind.MERGE)
_POINT_KINDS: Final = bytes([0, 1, 2, 4])  # DELETE, PUT, MERGE, PUT_EXPIRING (no DELETE_RANGE)
_RANGE_KIND: Final = int(ValueKind.DELETE_RANGE)
_U64_MAX: Final = (1 << 64) - 1


class FilterBuilder(Protocol):
    """Builds a table's filter (implemented in filter.py).  `kind`: 1 bloom, 2 ribbon."""

    kind: int

    def add_keys(self, keys: list[bytes]) -> None: ...

    def finish(self) -> Generator[None, None, bytes]: ...


class SstWriter:
    """Builds one table.  See the module docstring.

    >>> from aiokv.engine.lsm.sst_reader import Table
    >>> w = SstWriter()
    >>> w.add(b"k", 1, 1, 0, b"v")
    >>> data = w.take() + finish_sync(w)
    >>> w.properties.entries, len(data)
    (1, 302)
    >>> t = Table.open(1, "000001.sst", data, lambda payload: None)
    >>> t.get(b"k", None, t.read_block)
    (1, b'v', 1, 0)
    """

    def __init__(
        self,
        block_size: int = DEFAULT_BLOCK_SIZE,
        filter_builder: FilterBuilder | None = None,
        *,
        created_ms: int = 0,
    ) -> None:
        if block_size < 1:
            raise ValueError("block_size must be positive")
        self.block_size = block_size
        self.created_ms = created_ms
        self._filter = filter_builder
        self._ready: list[bytes] = []  # finished blocks not yet taken
        self._offset = 0  # file offset of the pending block: bytes of finished blocks
        self._index_keys: list[bytes] = []
        self._index_offsets = [0]
        self._rdels: list[tuple[bytes, bytes, int]] = []
        self._props: TableProperties | None = None
        self._finishing = False
        # Point entry statistics.
        self.entries = 0
        self._deletes = self._merges = self._expiring = 0
        self._key_bytes = self._value_bytes = 0
        self._min_seq = _U64_MAX
        self._max_seq = 0
        self._min_exp = _U64_MAX
        self._max_exp = 0
        self._first_key: bytes | None = None
        self._last_key: bytes | None = None
        self._last_seq = 0
        self._reset_pending()

    def _reset_pending(self) -> None:
        # The pending (unfinished) block, as pieces of the slices it came from.
        self._p_keys: list[bytes] = []
        self._p_values: list[bytes] = []
        self._p_klens: list[int] = []
        self._p_vlens: list[int] = []
        self._p_seqs = bytearray()
        self._p_kinds = bytearray()
        self._p_exps: list[bytes | int] = []  # packed expiries, or a count of zero expiries
        self._p_size = 0  # estimated bytes of its entries (0: the block is empty)
        self._p_distinct = True
        self._p_last = b""

    # -- adding entries ---------------------------------------------------------------------

    @property
    def estimated_size(self) -> int:
        """Bytes so far: finished blocks plus the estimated size of the unfinished one."""
        return self._offset + (self._p_size + DATA_FIXED if self._p_size else 0)

    def add(self, key: bytes, seq: int, kind: int, expiry: int, value: bytes) -> None:
        """Adds one entry (see add_many)."""
        self.add_many([key], [seq], [kind], [expiry] if expiry else None, [value])

    def add_many(
        self,
        keys: Sequence[bytes],
        seqs: Sequence[int],
        kinds: Sequence[int] | bytes,
        expiries: Sequence[int] | None,
        values: Sequence[bytes],
    ) -> None:
        """Adds entries that continue the table's (key ascending, seq descending) order.

        Args:
            keys: 1 to MAX_KEY_SIZE bytes each.  seqs: 1 to 2**64 - 1.
            kinds: ValueKind numbers (DELETE, PUT, MERGE, PUT_EXPIRING), a list or bytes.
            expiries: expiry_ms per entry, non-zero exactly for PUT_EXPIRING (None: all 0).
            values: b"" for DELETE; at most MAX_VALUE_SIZE bytes.

        Raises:
            ValueError: the order is broken or an entry is invalid; the writer is unchanged.
        """
        if self._finishing:
            raise RuntimeError("add_many() after finish()")
        n = len(keys)
        if not len(seqs) == len(kinds) == len(values) == n or (
            expiries is not None and len(expiries) != n
        ):
            raise ValueError("add_many() columns differ in length")
        if not n:
            return
        kb = kinds if isinstance(kinds, bytes) else bytes(kinds)
        if kb.translate(None, _POINT_KINDS):
            raise ValueError("kinds must be DELETE, PUT, MERGE or PUT_EXPIRING")
        klens = list(map(len, keys))
        vlens = list(map(len, values))
        # One length for all (the common case) is one C-level count; min/max otherwise.
        kfix = klens[0] if klens.count(klens[0]) == n else -1
        vfix = vlens[0] if vlens.count(vlens[0]) == n else -1
        if kfix >= 0:
            if not 0 < kfix <= MAX_KEY_SIZE:
                raise ValueError(f"keys must be 1 to {MAX_KEY_SIZE} bytes")
        elif min(klens) < 1 or max(klens) > MAX_KEY_SIZE:
            raise ValueError(f"keys must be 1 to {MAX_KEY_SIZE} bytes")
        if (vfix if vfix >= 0 else max(vlens)) > MAX_VALUE_SIZE:
            raise ValueError(f"values must be at most {MAX_VALUE_SIZE} bytes")
        if min(seqs) < 1:
            raise ValueError("seqs must be at least 1")
        try:
            seqb = struct.pack(f"<{n}Q", *seqs)
            expb = None if expiries is None else struct.pack(f"<{n}Q", *expiries)
        except struct.error as e:
            raise ValueError(f"seq or expiry out of the u64 range: {e}") from None
        nexp = kb.count(PUT_EXPIRING)
        exps: list[int] = []
        if expiries is None:
            if nexp:
                raise ValueError("PUT_EXPIRING entries need their expiries")
        elif not nexp:
            if any(expiries):
                raise ValueError("only PUT_EXPIRING entries carry an expiry")
        else:
            mask = list(map(eq, kb, repeat(PUT_EXPIRING)))
            if any(compress(expiries, map(not_, mask))):
                raise ValueError("only PUT_EXPIRING entries carry an expiry")
            exps = list(compress(expiries, mask))
            if not all(exps):
                raise ValueError("a PUT_EXPIRING entry needs a non-zero expiry")
        if DELETE in kb and any(compress(vlens, map(eq, kb, repeat(DELETE)))):
            raise ValueError("a DELETE carries no value")
        repeats, joins = self._check_order(keys, seqs)
        kblob = b"".join(keys)  # TypeError for non-bytes, before anything changes
        vblob = b"".join(values)

        # Checked: from here on nothing raises.
        if self._filter is not None:
            self._filter.add_keys(_distinct(keys, repeats, joins))
        self._account(keys, seqs, kb, len(kblob), len(vblob), nexp, exps)
        self._cut(keys, kblob, vblob, klens, vlens, seqb, kb, expb, repeats, joins, kfix, vfix)

    def _check_order(
        self, keys: Sequence[bytes], seqs: Sequence[int]
    ) -> tuple[list[bool] | None, bool]:
        """Checks invariant 1; returns (repeats, joins): repeats[i] says key i + 1 equals key
        i (None when no key repeats), joins that the first key continues the previous slice.
        """
        nxt = islice(keys, 1, None)
        repeats = None
        if not all(map(lt, keys, nxt)):
            if not all(map(le, keys, islice(keys, 1, None))):
                raise ValueError("keys out of order")
            repeats = list(map(eq, keys, islice(keys, 1, None)))
            if not all(map(gt, compress(seqs, repeats), compress(islice(seqs, 1, None), repeats))):
                raise ValueError("versions of a key out of order: seqs must decrease")
        last = self._last_key
        joins = False
        if last is not None:
            first = keys[0]
            if first < last:
                raise ValueError("keys out of order with the previous add_many()")
            if first == last:
                if seqs[0] >= self._last_seq:
                    raise ValueError("versions of a key out of order: seqs must decrease")
                joins = True
        return repeats, joins

    def _account(
        self,
        keys: Sequence[bytes],
        seqs: Sequence[int],
        kb: bytes,
        key_bytes: int,
        value_bytes: int,
        nexp: int,
        exps: list[int],
    ) -> None:
        self.entries += len(keys)
        self._deletes += kb.count(DELETE)
        self._merges += kb.count(MERGE)
        self._expiring += nexp
        self._key_bytes += key_bytes
        self._value_bytes += value_bytes
        self._min_seq = min(self._min_seq, min(seqs))
        self._max_seq = max(self._max_seq, max(seqs))
        if exps:
            self._min_exp = min(self._min_exp, min(exps))
            self._max_exp = max(self._max_exp, max(exps))
        if self._first_key is None:
            self._first_key = keys[0]
        self._last_key = keys[-1]
        self._last_seq = seqs[-1]

    def _cut(
        self,
        keys: Sequence[bytes],
        kblob: bytes,
        vblob: bytes,
        klens: list[int],
        vlens: list[int],
        seqb: bytes,
        kb: bytes,
        expb: bytes | None,
        repeats: list[bool] | None,
        joins: bool,
        kfix: int,
        vfix: int,
    ) -> None:
        """Cuts a checked slice into blocks (invariant 2); the rest stays pending.

        kfix (vfix) is the length of every key (value) of the slice, or -1.
        """
        n = len(keys)
        # Prefix sums (sizes[i]: estimated bytes of entries 0..i-1); ranges when lengths are fixed.
        sizes: Sequence[int]
        kcum: Sequence[int]
        vcum: Sequence[int]
        if kfix >= 0 and vfix >= 0:
            step = kfix + vfix + ENTRY_OVERHEAD
            sizes = range(0, step * (n + 1), step)
        else:
            sizes = list(accumulate(map(add, map(add, klens, vlens), repeat(ENTRY_OVERHEAD, n))))
            sizes.insert(0, 0)
        kcum = range(0, kfix * (n + 1), kfix) if kfix > 0 else list(accumulate(klens, initial=0))
        vcum = range(0, vfix * (n + 1), vfix) if vfix > 0 else list(accumulate(vlens, initial=0))
        need = self.block_size - DATA_FIXED
        a = 0
        while a < n:
            b = bisect_left(sizes, sizes[a] + need - self._p_size, a + 1)
            b = min(b, n)
            distinct = repeats is None or not any(islice(repeats, a, b - 1))
            if a == 0 and joins and self._p_size:
                distinct = False  # the pending block ends with this slice's first key
            piece = (
                kblob[kcum[a] : kcum[b]],
                vblob[vcum[a] : vcum[b]],
                klens[a:b],
                vlens[a:b],
                seqb[8 * a : 8 * b],
                kb[a:b],
                None if expb is None else expb[8 * a : 8 * b],
            )
            size = sizes[b] - sizes[a]
            if self._p_size + size + DATA_FIXED < self.block_size:
                self._pend(piece, b - a, size, distinct, keys[b - 1])
            elif not self._p_size:  # the whole block comes from this slice
                # A fixed length over the slice holds for the block; otherwise let it count.
                block = encode_block(*piece, distinct, kfix >= 0 or None, vfix >= 0 or None)
                self._emit(block, keys[b - 1])
            else:
                self._pend(piece, b - a, size, distinct, keys[b - 1])
                self._flush_pending()
            a = b

    def _pend(
        self,
        piece: tuple[bytes, bytes, list[int], list[int], bytes, bytes, bytes | None],
        count: int,
        size: int,
        distinct: bool,
        last: bytes,
    ) -> None:
        keys, values, klens, vlens, seqs, kinds, exps = piece
        self._p_keys.append(keys)
        self._p_values.append(values)
        self._p_klens += klens
        self._p_vlens += vlens
        self._p_seqs += seqs
        self._p_kinds += kinds
        self._p_exps.append(count if exps is None else exps)
        self._p_size += size
        self._p_distinct = self._p_distinct and distinct
        self._p_last = last

    def _flush_pending(self) -> None:
        kinds = bytes(self._p_kinds)
        exps = None
        if PUT_EXPIRING in kinds:
            exps = b"".join(bytes(8 * e) if isinstance(e, int) else e for e in self._p_exps)
        block = encode_block(
            b"".join(self._p_keys),
            b"".join(self._p_values),
            self._p_klens,
            self._p_vlens,
            bytes(self._p_seqs),
            kinds,
            exps,
            self._p_distinct,
        )
        last = self._p_last
        self._reset_pending()
        self._emit(block, last)

    def _emit(self, block: bytes, last_key: bytes) -> None:
        self._ready.append(block)
        self._offset += len(block)
        self._index_keys.append(last_key)
        self._index_offsets.append(self._offset)

    def add_range_del(self, start: bytes, end: bytes, seq: int) -> None:
        """Adds a range tombstone: every key in [start, end) with a lower seq is deleted.

        `end` may be one byte longer than a key can be: compaction clips a tombstone at
        `last_key + b"\x00"`, the smallest key after the last key of its output.

        Raises:
            ValueError: start >= end, a start of 0 or more than MAX_KEY_SIZE bytes, a longer
                end, a bad seq.
        """
        if self._finishing:
            raise RuntimeError("add_range_del() after finish()")
        if not start < end:
            raise ValueError("a range tombstone needs start < end")
        if not 0 < len(start) <= MAX_KEY_SIZE or len(end) > MAX_KEY_SIZE + 1:
            raise ValueError(f"range bounds must be 1 to {MAX_KEY_SIZE} bytes (+1 for end)")
        if not 1 <= seq <= _U64_MAX:
            raise ValueError("seq out of range")
        self._rdels.append((bytes(start), bytes(end), seq))

    # -- output -----------------------------------------------------------------------------

    def take(self) -> bytes:
        """The bytes of the blocks finished since the last take() (b"" if none)."""
        out = b"".join(self._ready)
        self._ready = []
        return out

    def finish(self) -> Generator[None, None, bytes]:
        """Finishes the table: drives the filter builder (yielding between its steps), then
        returns every byte not yet taken: the last data block, filter, range tombstones,
        index, properties and footer.  `properties` is set once it returns.

        Raises:
            ValueError: the table would hold nothing at all.
        """
        if self._finishing:
            raise RuntimeError("finish() called twice")
        if not self.entries and not self._rdels:
            raise ValueError("an SST needs at least one entry or range tombstone")
        self._finishing = True
        if self._p_size:
            self._flush_pending()
        fb = self._filter
        filter_kind = 0
        filter_block = b""
        if fb is not None and self.entries:
            filter_block = seal((yield from fb.finish()))
            filter_kind = fb.kind
        rdels = sorted(self._rdels, key=_rdel_order)
        rdel_block = b""
        if rdels:
            rdel_block = encode_entries(
                [r[0] for r in rdels],
                [r[2] for r in rdels],
                bytes([_RANGE_KIND]) * len(rdels),
                None,
                [r[1] for r in rdels],
            )
        index = encode_index(self._index_keys, self._index_offsets)
        props = self._properties(rdels, filter_kind)
        props_block = encode_properties(props)
        self._props = props
        # File order: filter, range tombstones, index, properties; absent blocks are (0, 0).
        handles: list[Handle] = []
        pos = self._offset
        for block in (filter_block, rdel_block, index, props_block):
            handles.append((pos, len(block)) if block else (0, 0))
            pos += len(block)
        filter_h, rdel_h, index_h, props_h = handles
        footer = encode_footer([index_h, filter_h, rdel_h, props_h])
        self._ready += (filter_block, rdel_block, index, props_block, footer)
        return self.take()

    def _properties(
        self, rdels: list[tuple[bytes, bytes, int]], filter_kind: int
    ) -> TableProperties:
        first = self._first_key or b""
        last = self._last_key or b""
        smallest = min([r[0] for r in rdels] + ([first] if self.entries else []))
        largest = max([r[1] for r in rdels] + ([last] if self.entries else []))
        seqs = [r[2] for r in rdels]
        return TableProperties(
            entries=self.entries,
            tombstones=self._deletes + len(rdels),
            range_dels=len(rdels),
            merges=self._merges,
            expiring=self._expiring,
            data_blocks=len(self._index_keys),
            raw_key_bytes=self._key_bytes,
            raw_value_bytes=self._value_bytes,
            smallest_seq=min([self._min_seq, *seqs]),
            largest_seq=max([self._max_seq, *seqs]),
            smallest_expiry=self._min_exp if self._expiring else 0,
            largest_expiry=self._max_exp,
            created_ms=self.created_ms,
            block_size=self.block_size,
            filter_kind=filter_kind,
            smallest=smallest,
            largest=largest,
            point_smallest=first,
            point_largest=last,
        )

    @property
    def properties(self) -> TableProperties:
        """The table's properties, once finish() has returned."""
        if self._props is None:
            raise RuntimeError("properties are known once finish() has returned")
        return self._props


def _rdel_order(r: tuple[bytes, bytes, int]) -> tuple[bytes, int, bytes]:
    return r[0], -r[2], r[1]


def _distinct(keys: Sequence[bytes], repeats: list[bool] | None, joins: bool) -> list[bytes]:
    """Each user key of a slice once (the filter wants keys, not versions)."""
    if repeats is None:
        return list(keys[1:]) if joins else list(keys)
    return list(compress(keys, chain((not joins,), map(not_, repeats))))


def finish_sync(w: SstWriter) -> bytes:
    """Runs w.finish() to its end and returns every byte not yet taken (tests, small tables)."""
    return run_to_end(w.finish())
