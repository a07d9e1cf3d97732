"""check(): verifies a whole B+Tree (bbolt's Tx.Check, sortedcontainers' _check) and lists its
pages.  See docs/format/btree.md, "Invariants".

It reports the first broken invariant as a CorruptionError at the page that breaks it:
keys not strictly ascending, a key outside the bounds its parent's separators give, a node
whose stored size disagrees with its cells, a node over CAPACITY or (not the root) under
MIN_FILL, leaves at different depths, a root branch with one child or an empty root leaf, a
bad value kind, an overflow chain of the wrong length, or any page reached twice.
"""

from __future__ import annotations

from operator import lt
from typing import TYPE_CHECKING

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.btree.node_format import (
    BRANCH_BASE,
    CAPACITY,
    LEAF_BASE,
    MIN_FILL,
    Branch,
    Leaf,
    Overflow,
    branch_cell_size,
    leaf_cell_size,
)
from aiokv.engine.btree.page_format import PAGE_SIZE, PageType, chain_pages
from aiokv.errors import CorruptionError

if TYPE_CHECKING:
    from aiokv.engine.btree.tree_read import NodeReader

_KINDS = frozenset((ValueKind.PUT, ValueKind.MERGE, ValueKind.PUT_EXPIRING))


def check(r: NodeReader, root: int) -> set[int]:
    """Every page the tree at `root` reaches (nodes and overflow chains); 0 is the empty tree.

    Raises:
        CorruptionError: the first broken invariant, at the offset of the page that breaks it.
    """
    walk = _Walk(r)
    if root:
        walk.node(root, None, None, 0)
    return walk.seen


class _Walk:
    def __init__(self, r: NodeReader) -> None:
        self.r = r
        self.path = str(getattr(r, "path", ""))
        self.seen: set[int] = set()
        self.leaf_depth = -1

    def fail(self, no: int, detail: str) -> CorruptionError:
        return CorruptionError(self.path, no * PAGE_SIZE, f"page {no}: {detail}")

    def claim(self, no: int) -> None:
        if no < 2 or no in self.seen:
            raise self.fail(no, "reached twice (or a meta page)")
        self.seen.add(no)

    def chain(self, head: int, length: int) -> None:
        nos, parts = chain_pages(self.r.page, head, PageType.OVERFLOW, self.path)
        for no in nos:
            self.claim(no)
        if sum(map(len, parts)) != length:
            raise self.fail(head, f"overflow chain does not hold {length} bytes")

    def node(self, no: int, lo: bytes | None, hi: bytes | None, depth: int) -> None:
        self.claim(no)
        node = self.r.node(no)
        keys = node.keys
        if not all(map(lt, keys, keys[1:])):
            raise self.fail(no, "keys not strictly ascending")
        if keys and ((lo is not None and keys[0] < lo) or (hi is not None and keys[-1] >= hi)):
            raise self.fail(no, "a key lies outside its parent's separators")
        if node.kref:
            for key, head in node.kref.items():
                self.chain(head, len(key))
        if type(node) is Leaf:
            base = LEAF_BASE
            size = base + sum(map(leaf_cell_size, keys, node.cells))
            if depth and not keys:
                raise self.fail(no, "an empty leaf")
            if not depth and not keys:
                raise self.fail(no, "an empty root leaf (an empty tree has root 0)")
            if not {c[0] for c in node.cells} <= _KINDS:
                raise self.fail(no, "a cell of a bad kind")
            for c in node.cells:
                if type(c[1]) is Overflow:
                    self.chain(c[1].head, c[1].length)
            if self.leaf_depth < 0:
                self.leaf_depth = depth
            elif depth != self.leaf_depth:
                raise self.fail(no, f"a leaf at depth {depth}, others at {self.leaf_depth}")
        else:
            assert type(node) is Branch
            base = BRANCH_BASE
            size = base + sum(map(branch_cell_size, keys))
            if len(node.children) != len(keys) + 1:
                raise self.fail(no, "children do not number keys + 1")
            if not depth and not keys:
                raise self.fail(no, "a root branch with one child")
        if size != node.size:
            raise self.fail(no, f"size {node.size} disagrees with its cells ({size})")
        if size - base > CAPACITY:
            raise self.fail(no, f"over capacity ({size - base} cell bytes)")
        if depth and size - base < MIN_FILL:
            raise self.fail(no, f"under the minimum fill ({size - base} cell bytes)")
        if type(node) is Branch:
            bounds = [lo, *keys, hi]
            for i, child in enumerate(node.children):
                self.node(child, bounds[i], bounds[i + 1], depth + 1)
