"""The memtable: the newest writes of one column family, in memory, with MVCC.

Layout, chosen for CPython (see DESIGN.md, "Performance doctrine"):

- `table` maps each key to its newest entry, a tuple `(kind, value, seq, expiry_ms)`, so that a
  point lookup is one dict lookup and the get fast path (`kind == PUT`) reads `value` directly.
- Older entries of a key are kept in `_history` (oldest first) only while a snapshot or a scan
  may still read them; with no snapshot live an overwrite simply replaces the entry.
- Key order is kept by a SortedList; new keys are first appended to `_unindexed` and folded in
  in bulk (before an ordered read, or every FOLD_EVERY new keys), so that a put does not pay for
  ordering and a scan never waits for more than FOLD_EVERY insertions.
- A MERGE entry needs the versions below it: while a key's newest entry is a MERGE, `_history`
  keeps its older entries back to (and including) the newest non-MERGE one, snapshot or not.
  Keys whose chain of operands grows past `merge_limit` are listed in `long_chains`, for the
  engine to fold (it may need the sources below this memtable for the base).
- A DELETE_RANGE is applied eagerly to the keys the memtable holds (a DELETE entry at the range's
  sequence number for each), so reads that hit the memtable never consult range tombstones; the
  range itself is kept in `range_dels` for the older data below this memtable.

Invariant 1: for every key, the entries of `_history[key]` and then `table[key]` have strictly
increasing sequence numbers.
Invariant 2: the keys of `table` are exactly the keys of `_index` plus those of `_unindexed`.
Invariant 3: while no snapshot is live (keep_history False), `_history` holds a key only if its
newest entry is a MERGE, and then exactly its entries back to the newest non-MERGE one.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice
from typing import Final

from sortedcontainers import SortedList

from aiokv.engine.batch_format import Op, ValueKind

Entry = tuple[int, bytes, int, int]  # kind, value, seq, expiry_ms

PUT: Final = int(ValueKind.PUT)
DELETE: Final = int(ValueKind.DELETE)
DELETE_RANGE: Final = int(ValueKind.DELETE_RANGE)
MERGE: Final = int(ValueKind.MERGE)
PUT_EXPIRING: Final = int(ValueKind.PUT_EXPIRING)
FOLD_EVERY: Final = 1024  # new keys folded at once: ~2 ms at 400K keys (SortedList.update)
ENTRY_OVERHEAD: Final = 64  # bytes of dict slot, tuple and ints per entry, for size accounting


class Memtable:
    """One column family's newest writes.  See the module docstring."""

    __slots__ = (
        "_history",
        "_index",
        "_unindexed",
        "approximate_bytes",
        "first_segment",
        "fold_floor",
        "keep_history",
        "limit",
        "long_chains",
        "merge_limit",
        "range_dels",
        "table",
    )

    def __init__(self, limit: int = 1 << 62, merge_limit: int = 64) -> None:
        self.limit = limit  # approximate_bytes at which the engine freezes it
        self.merge_limit = merge_limit  # operands per key before it is listed in long_chains
        self.long_chains: set[bytes] = set()
        # Chain length below which a key whose fold could not shorten it is not tried again.
        self.fold_floor: dict[bytes, int] = {}
        # Set by the engine: no WAL segment below this one holds this memtable's writes.
        self.first_segment = 0
        self.table: dict[bytes, Entry] = {}
        self._history: dict[bytes, list[Entry]] = {}
        self._index = SortedList()
        self._unindexed: list[bytes] = []
        self.range_dels: list[tuple[bytes, bytes, int]] = []  # start, end (exclusive), seq
        self.approximate_bytes = 0
        # Set by the engine while any snapshot or scan is live: overwrites then keep history.
        self.keep_history = False

    def __len__(self) -> int:
        return len(self.table)

    # -- writes --------------------------------------------------------------------------------

    def put(self, key: bytes, value: bytes, seq: int) -> bool:
        """Applies a single PUT: the put fast path.  Returns True once the memtable is full."""
        old = self.table.get(key)
        if old is None:
            self._unindexed.append(key)
            if len(self._unindexed) >= FOLD_EVERY:
                self._fold()
        elif self.keep_history:
            self._history.setdefault(key, []).append(old)
        elif old[0] == MERGE:
            self._history.pop(key, None)  # invariant 3: the chain is shadowed now
        self.table[key] = (PUT, value, seq, 0)
        self.approximate_bytes += len(key) + len(value) + ENTRY_OVERHEAD
        return self.approximate_bytes >= self.limit

    def merge(self, key: bytes, operand: bytes, seq: int) -> bool:
        """Applies a single MERGE: the merge fast path.  Returns True once the memtable is full."""
        table = self.table
        old = table.get(key)
        if old is None:
            self._unindexed.append(key)
            if len(self._unindexed) >= FOLD_EVERY:
                self._fold()
        else:
            chain = self._history.get(key)
            if chain is None:
                self._history[key] = [old]
            else:
                chain.append(old)
                if len(chain) >= self.merge_limit and not self.keep_history:
                    self._long(key, len(chain))
        table[key] = (MERGE, operand, seq, 0)
        self.approximate_bytes += len(key) + len(operand) + ENTRY_OVERHEAD
        return self.approximate_bytes >= self.limit

    def _long(self, key: bytes, length: int) -> None:
        if length >= self.fold_floor.get(key, 0):
            self.long_chains.add(key)

    def apply(self, ops: Iterable[Op], base_seq: int) -> None:
        """Applies ops with sequence numbers base_seq, base_seq + 1, ..."""
        keep_history = self.keep_history
        table = self.table
        history = self._history
        seq = base_seq
        for kind, _cf, key, value, expiry in ops:
            if kind == DELETE_RANGE:
                self._delete_range(key, value, seq, keep_history)
                seq += 1
                continue
            old = table.get(key)
            if old is None:
                self._unindexed.append(key)
            elif keep_history or kind == MERGE:
                chain = history.get(key)
                if chain is None:
                    history[key] = [old]
                else:
                    chain.append(old)
                    if kind == MERGE and len(chain) >= self.merge_limit and not keep_history:
                        self._long(key, len(chain))
            elif old[0] == MERGE:
                history.pop(key, None)  # invariant 3: the chain is shadowed now
            table[key] = (kind, value, seq, expiry)
            self.approximate_bytes += len(key) + len(value) + ENTRY_OVERHEAD
            seq += 1
        if len(self._unindexed) >= FOLD_EVERY:
            self._fold()

    def _delete_range(self, start: bytes, end: bytes, seq: int, keep_history: bool) -> None:
        self.range_dels.append((start, end, seq))
        self.approximate_bytes += len(start) + len(end) + ENTRY_OVERHEAD
        table = self.table
        for key in self.keys_in_range(start, end):
            old = table[key]
            if old[0] == DELETE:
                continue
            if keep_history:
                self._history.setdefault(key, []).append(old)
            elif old[0] == MERGE:
                self._history.pop(key, None)
            table[key] = (DELETE, b"", seq, 0)

    @property
    def history(self) -> dict[bytes, list[Entry]]:
        """Older entries by key, oldest first (empty while no snapshot or scan is live)."""
        return self._history

    def sorted_keys(self) -> list[bytes]:
        """Every key, in order (a frozen memtable's flush walks this)."""
        self._fold()
        return list(self._index)

    def set_keep_history(self, keep: bool) -> None:
        """Starts keeping older entries, or forgets them once no snapshot or scan is live."""
        self.keep_history = keep
        if not keep and self._history:
            table = self.table
            self._history = {
                k: _chain_to_base(h) for k, h in self._history.items() if table[k][0] == MERGE
            }

    def replace_chain(self, key: bytes, entries: list[Entry]) -> None:
        """Replaces the key's newest entry and its chain by `entries` (newest first: a folded
        chain, whose head keeps the newest sequence number)."""
        assert not self.keep_history and entries[0][2] == self.table[key][2]
        self.table[key] = entries[0]
        self.fold_floor.pop(key, None)
        if len(entries) > 1:
            self._history[key] = entries[:0:-1]
        else:
            self._history.pop(key, None)

    # -- reads ---------------------------------------------------------------------------------

    def entry_at(self, key: bytes, seq: int) -> Entry | None:
        """The newest entry of `key` with a sequence number <= seq, or None."""
        e = self.table.get(key)
        if e is None or e[2] <= seq:
            return e
        for old in reversed(self._history.get(key, ())):
            if old[2] <= seq:
                return old
        return None

    def versions_at(self, key: bytes, seq: int | None) -> list[Entry]:
        """The key's entries with sequence number <= seq (None: all), newest first."""
        e = self.table.get(key)
        if e is None:
            return []
        out = [e, *reversed(self._history.get(key, ()))]
        return out if seq is None else [x for x in out if x[2] <= seq]

    def range_deleted_at(self, key: bytes, seq: int) -> int:
        """The largest sequence number <= seq of a range tombstone covering key, or -1."""
        best = -1
        for start, end, rseq in self.range_dels:
            if start <= key < end and best < rseq <= seq:
                best = rseq
        return best

    def keys_in_range(
        self, start: bytes | None, end: bytes | None, reverse: bool = False
    ) -> list[bytes]:
        """Keys in [start, end) in order (reverse order if asked); None means unbounded."""
        self._fold()
        return list(self._index.irange(start, end, inclusive=(True, False), reverse=reverse))

    def keys_between(
        self, lo: bytes | None, lo_inclusive: bool, hi: bytes | None, limit: int, reverse: bool
    ) -> list[bytes]:
        """Up to `limit` keys between lo and hi (hi exclusive; None is unbounded), in order.

        Forward walks up from lo (included if lo_inclusive); reverse walks down from below hi
        to lo (included).  A scan resumes by passing its last key as the exclusive bound.
        """
        self._fold()
        if reverse:
            it = self._index.irange(lo, hi, inclusive=(True, False), reverse=True)
        else:
            it = self._index.irange(lo, hi, inclusive=(lo_inclusive, False))
        return list(islice(it, limit))

    def _fold(self) -> None:
        if self._unindexed:
            self._index.update(self._unindexed)
            self._unindexed = []

    # -- structure check -----------------------------------------------------------------------

    def check(self) -> None:
        """Asserts the invariants of the module docstring (for tests)."""
        self._fold()
        assert list(self._index) == sorted(self.table), "index and table disagree"
        for key, older in self._history.items():
            seqs = [e[2] for e in older] + [self.table[key][2]]
            assert seqs == sorted(set(seqs)), f"history of {key!r} not increasing: {seqs}"
            if not self.keep_history:
                assert self.table[key][0] == MERGE, f"history of {key!r} without a merge"
                assert older == _chain_to_base(older), f"chain of {key!r} past its base"


def _chain_to_base(older: list[Entry]) -> list[Entry]:
    """`older` (oldest first) cut to start at its newest non-MERGE entry, if any."""
    for i in range(len(older) - 1, -1, -1):
        if older[i][0] != MERGE:
            return older[i:]
    return older
