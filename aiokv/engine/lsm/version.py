"""Versions: which tables make up each level of a column family at one moment.

A Version is immutable; every flush or compaction produces a new one from a VersionEdit
(version_edit.py).  Reads take the current Version without awaiting, so a get always sees
one whole Version.  A scan pins the Version it started on (engine `pin`/`unpin`); a table
file is deleted only once no pinned or current Version lists it.

Invariant 1: L0 files are ordered newest first: largest_seq strictly decreasing.  Their key
ranges may overlap.
Invariant 2: on every level L >= 1, files are sorted by key and do not overlap:
`f[i].largest < f[i + 1].smallest`.
Invariant 3: a file number appears at most once in a Version.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

NUM_LEVELS: Final = 7  # L0..L6: 10x per level from a 256 MiB base covers ~250 TiB


@dataclass(frozen=True, slots=True)
class FileMeta:
    """What the engine keeps in memory about one table (recorded in the manifest).

    `smallest`/`largest` (inclusive) bound every point key of the table and every key its
    range tombstones cover (compaction clips the tombstones it writes to its output tables so
    that this holds without making tables of one level overlap).
    """

    number: int
    size: int
    smallest: bytes
    largest: bytes
    smallest_seq: int
    largest_seq: int
    entries: int
    tombstones: int  # point deletes plus range tombstones
    smallest_expiry: int = 0  # 0: no expiring entry
    range_dels: int = 0  # range tombstones: reads consult them without opening the table
    created_ms: int = 0  # when its writer started (0: unknown); FIFO ages whole tables by it

    def overlaps(self, lo: bytes | None, hi: bytes | None) -> bool:
        """True if [smallest, largest] meets [lo, hi] (None: unbounded; hi inclusive)."""
        return (hi is None or self.smallest <= hi) and (lo is None or lo <= self.largest)


class Version:
    """The tables of one column family, per level.  See the module docstring."""

    __slots__ = ("largests", "levels")

    def __init__(self, levels: Sequence[Sequence[FileMeta]] | None = None) -> None:
        lv = [list(files) for files in levels] if levels else []
        lv += [[] for _ in range(NUM_LEVELS - len(lv))]
        lv[0].sort(key=lambda f: f.largest_seq, reverse=True)
        for files in lv[1:]:
            files.sort(key=lambda f: f.smallest)
        self.levels: tuple[tuple[FileMeta, ...], ...] = tuple(tuple(f) for f in lv)
        # Per level L >= 1, the largest keys in order: bisect finds the one file for a key.
        self.largests: tuple[list[bytes], ...] = tuple([f.largest for f in files] for files in lv)

    def files(self) -> Iterator[tuple[int, FileMeta]]:
        """Every (level, file), L0 first."""
        for level, files in enumerate(self.levels):
            for f in files:
                yield level, f

    def numbers(self) -> set[int]:
        return {f.number for files in self.levels for f in files}

    def level_size(self, level: int) -> int:
        return sum(f.size for f in self.levels[level])

    def total_size(self) -> int:
        return sum(f.size for files in self.levels for f in files)

    def file_for(self, level: int, key: bytes) -> FileMeta | None:
        """The file of level >= 1 whose range holds `key`, or None."""
        files = self.levels[level]
        i = bisect_left(self.largests[level], key)
        if i < len(files) and files[i].smallest <= key:
            return files[i]
        return None

    def overlapping(self, level: int, lo: bytes | None, hi: bytes | None) -> list[FileMeta]:
        """Files of `level` whose range meets [lo, hi] (hi inclusive; None unbounded)."""
        files = self.levels[level]
        if level == 0:
            return [f for f in files if f.overlaps(lo, hi)]
        i = 0 if lo is None else bisect_left(self.largests[level], lo)
        out = []
        while i < len(files) and (hi is None or files[i].smallest <= hi):
            out.append(files[i])
            i += 1
        return out

    def apply(
        self, added: Iterable[tuple[int, FileMeta]], deleted: Iterable[tuple[int, int]]
    ) -> Version:
        """A new Version: this one with `deleted` (level, number) removed and `added` added.

        Raises:
            ValueError: a deleted file is not on its level, or an added one is already there.
        """
        gone: dict[int, set[int]] = {}
        for level, number in deleted:
            gone.setdefault(level, set()).add(number)
        levels = []
        for level, files in enumerate(self.levels):
            drop = gone.pop(level, set())
            kept = [f for f in files if f.number not in drop]
            if len(kept) != len(files) - len(drop):
                raise ValueError(f"deleting a file that is not on level {level}")
            levels.append(kept)
        if gone:
            raise ValueError(f"deleting files on unknown levels {sorted(gone)}")
        present = {f.number for files in levels for f in files}
        for level, meta in added:
            if meta.number in present:
                raise ValueError(f"table {meta.number} added twice")
            present.add(meta.number)
            levels[level].append(meta)
        return Version(levels)

    def check(self) -> None:
        """Asserts the invariants of the module docstring (for tests)."""
        l0 = [f.largest_seq for f in self.levels[0]]
        assert l0 == sorted(l0, reverse=True), f"L0 not newest first: {l0}"
        for level, files in enumerate(self.levels[1:], 1):
            for a, b in pairwise(files):
                assert a.largest < b.smallest, f"L{level} tables {a.number}, {b.number} overlap"
        numbers = [f.number for files in self.levels for f in files]
        assert len(numbers) == len(set(numbers)), "a table listed twice"
