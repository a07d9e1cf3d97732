"""Reads of the copy-on-write B+Tree: get and scan over committed pages, through a NodeReader.
See docs/format/btree.md.

Reads never block and never change anything: a reader holds a root, and the pages it reaches
stay as they are until the engine frees them after the reader is gone (Txn.freed).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from operator import itemgetter
from typing import Final, Protocol

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.btree.node_format import Branch, Cell, Leaf, LeafCell, Overflow
from aiokv.engine.btree.page_format import PageType, read_chain


class NodeReader(Protocol):
    """Where the tree reads committed pages.  An optional `path` attribute names the file in
    CorruptionError."""

    def node(self, no: int) -> Leaf | Branch:
        """Page `no` decoded (cached by the engine); may raise CorruptionError."""
        ...

    def page(self, no: int) -> bytes:
        """The raw PAGE_SIZE bytes of page `no` (overflow chains are read this way)."""
        ...


_kind = itemgetter(0)
_value = itemgetter(1)
_ONLY_PUT: Final = {int(ValueKind.PUT)}


def _path(r: NodeReader) -> str:
    return str(getattr(r, "path", ""))


def _resolve(r: NodeReader, cell: LeafCell) -> Cell:
    v = cell[1]
    if type(v) is bytes:
        return cell  # type: ignore[return-value]
    assert isinstance(v, Overflow)
    return (cell[0], read_chain(r.page, v.head, v.length, PageType.OVERFLOW, _path(r)), cell[2])


def get(r: NodeReader, root: int, key: bytes) -> Cell | None:
    """The cell of `key` in the tree at `root` (0: empty), its value read whole; None if absent.

    Raises:
        CorruptionError: a page on the path fails its checks.
    """
    if not root:
        return None
    node = r.node(root)
    while type(node) is Branch:
        node = r.node(node.children[bisect_right(node.keys, key)])
    keys = node.keys
    i = bisect_left(keys, key)
    if i < len(keys) and keys[i] == key:
        cell = node.cells[i]  # type: ignore[union-attr]
        return cell if type(cell[1]) is bytes else _resolve(r, cell)  # type: ignore[return-value]
    return None


def scan(
    r: NodeReader,
    root: int,
    lo: bytes | None,
    lo_inclusive: bool,
    hi: bytes | None,
    reverse: bool,
    limit: int,
) -> list[tuple[bytes, Cell]]:
    """Up to `limit` (key, cell) pairs with lo < key (lo <= key if lo_inclusive) and key < hi,
    ascending, or descending when `reverse`; None bounds are open.

    A scan resumes by passing its last key as the exclusive bound (lo forward, hi in reverse).
    """
    out: list[tuple[bytes, Cell]] = []
    for keys, cells, big in _slices(r, root, lo, lo_inclusive, hi, reverse, limit):
        if big:
            out += [(k, _resolve(r, c)) for k, c in zip(keys, cells, strict=True)]
        else:  # every value inline: the cells are Cells already
            out += zip(keys, cells, strict=True)  # type: ignore[arg-type]
    return out


def scan_plain(
    r: NodeReader,
    root: int,
    lo: bytes | None,
    lo_inclusive: bool,
    hi: bytes | None,
    reverse: bool,
    limit: int,
) -> list[tuple[bytes, bytes]] | None:
    """As scan, but (key, value) pairs, when every cell it takes is an inline PUT; else None
    (the caller scans again with `scan`).  A scan over plain data builds one pair per item."""
    out: list[tuple[bytes, bytes]] = []
    for keys, cells, big in _slices(r, root, lo, lo_inclusive, hi, reverse, limit):
        if big or set(map(_kind, cells)) != _ONLY_PUT:
            return None
        out += zip(keys, map(_value, cells), strict=True)
    return out


def _slices(
    r: NodeReader,
    root: int,
    lo: bytes | None,
    lo_inclusive: bool,
    hi: bytes | None,
    reverse: bool,
    limit: int,
) -> Iterator[tuple[list[bytes], list[LeafCell], bool]]:
    """The walk's leaves, cut to the bounds, in walk order (each reversed in reverse), with
    at most `limit` items in all: (keys, cells, whether a value may be an Overflow)."""
    if not root or limit <= 0:
        return
    stack: list[tuple[Branch, int]] = []
    node = r.node(root)
    while type(node) is Branch:
        if reverse:
            i = len(node.keys) if hi is None else bisect_left(node.keys, hi)
        else:
            i = 0 if lo is None else bisect_right(node.keys, lo)
        stack.append((node, i))
        node = r.node(node.children[i])
    leaf: Leaf | None = node  # type: ignore[assignment]
    find_lo = bisect_left if lo_inclusive else bisect_right
    left = limit
    while leaf is not None:
        keys = leaf.keys
        start = 0 if lo is None else find_lo(keys, lo)
        end = len(keys) if hi is None else bisect_left(keys, hi)
        if start < end:
            if reverse:
                start = max(start, end - left)
                yield (
                    keys[end - 1 : start - 1 if start else None : -1],
                    leaf.cells[end - 1 : start - 1 if start else None : -1],
                    leaf.big,
                )
            else:
                end = min(end, start + left)
                yield keys[start:end], leaf.cells[start:end], leaf.big
            left -= end - start
        if left <= 0 or (start > 0 if reverse else end < len(keys)):
            return
        leaf = _next_leaf(r, stack, reverse)


def _next_leaf(r: NodeReader, stack: list[tuple[Branch, int]], reverse: bool) -> Leaf | None:
    step = -1 if reverse else 1
    while stack:
        branch, i = stack[-1]
        i += step
        if 0 <= i < len(branch.children):
            stack[-1] = (branch, i)
            node = r.node(branch.children[i])
            while type(node) is Branch:
                j = len(node.children) - 1 if reverse else 0
                stack.append((node, j))
                node = r.node(node.children[j])
            return node  # type: ignore[return-value]
        stack.pop()
    return None
