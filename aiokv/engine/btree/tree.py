"""The copy-on-write B+Tree: one write transaction (Txn), plus the names the engine uses from
tree_read (get, scan), tree_check (check) and node_format (decode_node, encode_node, Leaf,
Branch, Cell).  Pure: pages come from a NodeReader and new pages go to Txn.dirty.  See
docs/format/btree.md.

Invariant 1: a Txn never changes a node reachable from a root it was given; it copies the node
to a page of its own first (copy on write), and lists the old page in `freed`.
Invariant 2: every page the new tree reaches is either a page of an old tree no Txn step
released, or a page in `dirty`; every page a Txn took from `alloc` ends in `dirty` or `unused`.
Invariant 3: after every apply, delete_range and drop, each non-root node holds at least
MIN_FILL cell bytes and at most CAPACITY, all leaves are at one depth, and a root branch has
at least two children.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate, pairwise

from aiokv.engine.btree.node_format import (
    BRANCH_BASE,
    CAPACITY,
    LEAF_BASE,
    MAX_CELL,
    MAX_KEY_INLINE,
    MIN_FILL,
    Branch,
    Cell,
    Leaf,
    LeafCell,
    Node,
    Overflow,
    branch_cell_size,
    decode_node,
    encode_node,
    leaf_cell_size,
    value_spills,
)
from aiokv.engine.btree.page_format import (
    FLAG_SPILLS,
    PageType,
    chain_pages,
    chain_pages_needed,
    encode_chain,
    open_page,
    read_chain,
)
from aiokv.engine.btree.tree_check import check
from aiokv.engine.btree.tree_read import NodeReader, get, scan

__all__ = [
    "Branch",
    "Cell",
    "Leaf",
    "NodeReader",
    "Overflow",
    "Txn",
    "check",
    "decode_node",
    "encode_node",
    "get",
    "scan",
]

Change = tuple[bytes, Cell | None]
Result = tuple[list[bytes], list[int]] | None  # (separators, pages) replacing a node; None: same
_SMALL_BATCH = 8  # up to this many changes in a leaf go one bisect each; more go through a dict
_NEVER_SPILLS = MAX_CELL - 5 - MAX_KEY_INLINE - 8  # a value this short never spills
_NODE_TYPES = frozenset((PageType.LEAF, PageType.BRANCH))


def separator(left: bytes, right: bytes) -> bytes:
    """The shortest prefix s of `right` with left < s <= right (left < right).

    >>> separator(b"apple", b"apricot"), separator(b"ab", b"abc")
    (b'apr', b'abc')
    """
    n = min(len(left), len(right))
    i = 0
    if left[:n] == right[:n]:
        i = n
    else:
        lo, hi = 0, n  # left[:lo] == right[:lo], left[:hi] != right[:hi]
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if left[:mid] == right[:mid]:
                lo = mid
            else:
                hi = mid
        i = lo
    return right[: i + 1]


def _cuts(sizes: list[int], total: int) -> list[int]:
    """Where to cut items of `sizes` (summing to total > CAPACITY) into balanced pieces.

    Pieces hold about total / p bytes, p = ceil(total / (CAPACITY - largest)); each cut is the
    item boundary nearest its target, so a piece is within one largest item of total / p: at
    most CAPACITY, and (with items at most MAX_CELL) more than MIN_FILL.
    """
    p = -(-total // (CAPACITY - max(sizes)))
    bounds = list(accumulate(sizes, initial=0))
    cuts = []
    for m in range(1, p):
        x = total * m / p
        i = bisect_left(bounds, x)
        if x - bounds[i - 1] <= bounds[i] - x:
            i -= 1
        cuts.append(i)
    return cuts


class Txn:
    """One copy-on-write transaction.  Never mutates a node reachable from an old root.

    Use: any number of apply / delete_range / drop / relocate calls (each takes the root the
    previous one returned for that tree), then finish().  After finish, `dirty` holds every
    page to write, `freed` the pages of old trees the new trees no longer reach (free once no
    reader holds an old root), and `unused` pages taken from `alloc` that ended up unused (free
    at once).
    `count_delta` is keys added minus keys removed, over all calls.
    """

    def __init__(self, r: NodeReader, alloc: Callable[[], int]) -> None:
        self._r = r
        self._alloc_page = alloc
        self._path = str(getattr(r, "path", ""))
        self.dirty: dict[int, bytes] = {}
        self.freed: list[int] = []
        self.unused: list[int] = []
        self.count_delta = 0
        self._nodes: dict[int, Node] = {}  # nodes this Txn owns (mutable until finish)
        self._fresh: set[int] = set()  # every page taken from alloc
        self._spare: list[int] = []  # fresh pages no longer used: handed out again first
        self._spilled: list[int] = []  # indexes of the current apply's changes that spilled
        self._done = False

    @property
    def nodes(self) -> dict[int, Node]:
        """The new nodes by page number (after finish: what `dirty` decodes to)."""
        return self._nodes

    # -- public steps ----------------------------------------------------------------------------

    def apply(self, root: int, changes: Sequence[Change]) -> int:
        """Applies `changes` (sorted by key, unique; None deletes) to the tree at `root` and
        returns the new root (0 = empty)."""
        self._check_open()
        if not changes:
            return root
        ks = [c[0] for c in changes]
        vs = [c[1] for c in changes]
        self._spilled = []
        for i in [i for i, v in enumerate(vs) if v is not None and len(v[1]) > _NEVER_SPILLS]:
            kind, value, expiry = vs[i]  # type: ignore[misc]
            if value_spills(ks[i], value, expiry):
                vs[i] = (kind, self._write_chain(value), expiry)  # type: ignore[assignment]
                self._spilled.append(i)
        if not root:
            root = self._alloc()
            self._nodes[root] = Leaf([], [], LEAF_BASE)
        return self._new_root(root, self._apply(root, ks, vs, 0, len(ks)))  # type: ignore[arg-type]

    def delete_range(self, root: int, lo: bytes, hi: bytes) -> int:
        """Deletes every key k with lo <= k < hi; returns the new root (0 = empty)."""
        self._check_open()
        if not root or lo >= hi:
            return root
        return self._new_root(root, self._range(root, lo, hi))

    def drop(self, root: int) -> None:
        """Releases every page of the tree at `root` (a family drop)."""
        self._check_open()
        if root:
            self.count_delta -= self._free_tree(root)

    def relocate(self, root: int, below: int) -> int:
        """Copies every page of the tree at `root` whose number is >= `below` (nodes, and the
        overflow chains of spilled values and keys) to pages from `alloc`, and every node on the
        path to such a page (its child pointer changes); returns the new root.  The old pages go
        to `freed` as usual.  Pages < below that need no change stay where they are.

        A vacuum: with an `alloc` that hands out the lowest free pages first, every page >= below
        is free afterwards if there were enough free pages below it.  Pages this Txn wrote are
        its own and stay (they came from `alloc` already).  A relocated node keeps its content,
        so fill is unchanged; a chain with any page >= below is written again whole.  Every node
        is visited; a leaf below `below` whose header says nothing spills is not decoded.
        """
        self._check_open()
        if not root:
            return root
        height = 0  # the leaves' depth, found without decoding a leaf
        no = root
        while True:
            node = self._nodes.get(no)
            if node is None:
                ptype = open_page(self._r.page(no), no, _NODE_TYPES, self._path)[0]
                if ptype == PageType.LEAF:
                    break
                node = self._r.node(no)
            if type(node) is Leaf:
                break
            no = node.children[0]  # type: ignore[union-attr]
            height += 1
        new = self._relocate(root, below, height)
        return root if new is None else new

    def finish(self) -> None:
        """Writes spilled keys to chains and encodes every new node into `dirty`."""
        self._check_open()
        for no, node in self._nodes.items():
            big = [k for k in node.keys if len(k) > MAX_KEY_INLINE]
            node.kref = {k: self._write_chain(k).head for k in big} if big else None
            self.dirty[no] = encode_node(node, no)
        self.unused = self._spare
        self._spare = []
        self._done = True

    # -- pages -----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._done:
            raise RuntimeError("Txn used after finish()")

    def _alloc(self) -> int:
        if self._spare:
            return self._spare.pop()
        no = self._alloc_page()
        self._fresh.add(no)
        return no

    def _release(self, no: int) -> None:
        """Page `no` is no longer part of the new tree."""
        if no in self._fresh:
            self._nodes.pop(no, None)
            self.dirty.pop(no, None)
            self._spare.append(no)
        else:
            self.freed.append(no)

    def _page(self, no: int) -> bytes:
        page = self.dirty.get(no)
        return self._r.page(no) if page is None else page

    def _write_chain(self, data: bytes) -> Overflow:
        pages = [self._alloc() for _ in range(chain_pages_needed(len(data)))]
        self.dirty.update(zip(pages, encode_chain(PageType.OVERFLOW, data, pages), strict=True))
        return Overflow(pages[0], len(data))

    def _release_chain(self, head: int) -> None:
        for no in chain_pages(self._page, head, PageType.OVERFLOW, self._path)[0]:
            self._release(no)

    def _release_values(self, cells: Sequence[LeafCell | None]) -> None:
        for c in cells:
            if c is not None and type(c[1]) is Overflow:
                self._release_chain(c[1].head)

    def _release_node(self, no: int, node: Node) -> None:
        """Releases a node's page and its key chains (a fresh node has none yet)."""
        if node.kref and no not in self._fresh:
            for head in node.kref.values():
                self._release_chain(head)
        self._release(no)

    def _node(self, no: int) -> Node:
        node = self._nodes.get(no)
        return self._r.node(no) if node is None else node

    def _own(self, no: int) -> tuple[int, Node]:
        """A node this Txn may change in place: the node itself if new, else a copy."""
        node = self._nodes.get(no)
        if node is not None:
            return no, node
        old = self._r.node(no)
        self._release_node(no, old)
        copy: Node
        if type(old) is Leaf:
            copy = Leaf(list(old.keys), list(old.cells), old.size, None, old.big)
        else:
            assert type(old) is Branch
            copy = Branch(list(old.keys), list(old.children), old.size)
        new = self._alloc()
        self._nodes[new] = copy
        return new, copy

    # -- apply -----------------------------------------------------------------------------------

    def _apply(
        self, no: int, ks: list[bytes], vs: list[LeafCell | None], lo: int, hi: int
    ) -> Result:
        node = self._node(no)
        if type(node) is Leaf:
            return self._apply_leaf(no, node, ks, vs, lo, hi)
        assert type(node) is Branch
        bkeys = node.keys
        parts = []
        i = lo
        while i < hi:
            ci = bisect_right(bkeys, ks[i])
            j = bisect_left(ks, bkeys[ci], i, hi) if ci < len(bkeys) else hi
            parts.append((ci, i, j))
            i = j
        results = []
        for ci, a, b in parts:
            res = self._apply(node.children[ci], ks, vs, a, b)
            if res is not None:
                results.append((ci, res))
        return self._splice(no, results) if results else None

    def _apply_leaf(
        self, no: int, leaf: Leaf, ks: list[bytes], vs: list[LeafCell | None], lo: int, hi: int
    ) -> Result:
        spilled = self._spilled
        big = bool(spilled) and bisect_left(spilled, lo) < bisect_left(spilled, hi)
        if hi - lo <= _SMALL_BATCH:
            owned = no in self._nodes
            at = 0
            for t in range(lo, hi):
                k = ks[t]
                v = vs[t]
                keys = leaf.keys
                at = bisect_left(keys, k, at)
                found = at < len(keys) and keys[at] == k
                if v is None and not found:
                    continue
                if not owned:
                    no, leaf = self._own(no)  # type: ignore[assignment]
                    owned = True
                    keys = leaf.keys
                cells = leaf.cells
                if found:
                    old = cells[at]
                    leaf.size -= leaf_cell_size(k, old)
                    if type(old[1]) is Overflow:
                        self._release_chain(old[1].head)
                    if v is None:
                        del keys[at]
                        del cells[at]
                        self.count_delta -= 1
                        continue
                    cells[at] = v
                else:
                    keys.insert(at, k)
                    cells.insert(at, v)  # type: ignore[arg-type]
                    self.count_delta += 1
                leaf.size += leaf_cell_size(k, v)  # type: ignore[arg-type]
            if not owned:
                return None
        else:
            sub_k = ks[lo:hi]
            sub_v = vs[lo:hi]
            d = dict(zip(leaf.keys, leaf.cells, strict=True))
            olds = list(map(d.get, sub_k))
            if sub_v.count(None) == len(sub_v) == olds.count(None):
                return None
            no, leaf = self._own(no)  # type: ignore[assignment]
            if leaf.big:
                self._release_values(olds)
            pairs = zip(sub_k, olds, strict=True)
            removed = sum([leaf_cell_size(k, o) for k, o in pairs if o is not None])
            pairs = zip(sub_k, sub_v, strict=True)
            added = sum([leaf_cell_size(k, v) for k, v in pairs if v is not None])
            d.update(zip(sub_k, sub_v, strict=True))  # type: ignore[arg-type]
            if None in sub_v:
                for k in [k for k, v in zip(sub_k, sub_v, strict=True) if v is None]:
                    del d[k]
            keys = sorted(d)
            self.count_delta += len(keys) - len(leaf.keys)
            leaf.keys = keys
            leaf.cells = list(map(d.__getitem__, keys))
            leaf.size += added - removed
        leaf.big = leaf.big or big
        return self._settle_leaf(no, leaf)

    def _settle_leaf(self, no: int, leaf: Leaf) -> tuple[list[bytes], list[int]]:
        """The pages an owned leaf becomes: none if empty, itself if it fits, else pieces."""
        if not leaf.keys:
            self._release(no)
            return [], []
        if leaf.size - LEAF_BASE <= CAPACITY:
            return [], [no]
        return self._place_leaf(leaf.keys, leaf.cells, leaf.big, no)

    def _place_leaf(
        self, keys: list[bytes], cells: list[LeafCell], big: bool, reuse: int | None
    ) -> tuple[list[bytes], list[int]]:
        """New leaves holding keys and cells (the first at page `reuse` if given)."""
        if big or max(map(len, keys), default=0) > MAX_KEY_INLINE:
            sizes = list(map(leaf_cell_size, keys, cells))
        else:  # the common case, without a call per cell
            pairs = zip(keys, cells, strict=True)
            sizes = [len(k) + len(c[1]) + (13 if c[2] else 5) for k, c in pairs]
        total = sum(sizes)
        cuts = _cuts(sizes, total) if total > CAPACITY else []
        bounds = [0, *cuts, len(keys)]
        sums = list(accumulate(sizes, initial=0))
        nos = []
        for a, b in pairwise(bounds):
            no = reuse if reuse is not None else self._alloc()
            reuse = None
            self._nodes[no] = Leaf(keys[a:b], cells[a:b], LEAF_BASE + sums[b] - sums[a], None, big)
            nos.append(no)
        return [separator(keys[c - 1], keys[c]) for c in cuts], nos

    def _place_branch(
        self, keys: list[bytes], children: list[int], reuse: int | None
    ) -> tuple[list[bytes], list[int]]:
        """New branches holding keys and children; the keys at the cuts move up."""
        sizes = list(map(branch_cell_size, keys))
        total = sum(sizes)
        cuts = _cuts(sizes, total) if total > CAPACITY else []
        sums = list(accumulate(sizes, initial=0))
        nos = []
        a = 0
        for c in [*cuts, len(keys)]:
            no = reuse if reuse is not None else self._alloc()
            reuse = None
            size = BRANCH_BASE + sums[c] - sums[a]
            self._nodes[no] = Branch(keys[a:c], children[a : c + 1], size)
            nos.append(no)
            a = c + 1
        return [keys[c] for c in cuts], nos

    def _splice(self, no: int, results: list[tuple[int, tuple[list[bytes], list[int]]]]) -> Result:
        """Puts the children's results into branch `no`, then restores fill."""
        no, node = self._own(no)
        assert type(node) is Branch
        keys = node.keys
        children = node.children
        new: list[int] = []
        for ci, (seps, nos) in reversed(results):
            if nos:
                children[ci : ci + 1] = nos
                keys[ci:ci] = seps
                node.size += sum(map(branch_cell_size, seps))
                new += nos
            else:
                del children[ci]
                if keys:
                    node.size -= branch_cell_size(keys.pop(ci - 1 if ci else 0))
        node.size += self._fix_fill(keys, children, new)
        if not children:
            self._release(no)
            return [], []
        if node.size - BRANCH_BASE <= CAPACITY:
            return [], [no]
        return self._place_branch(keys, children, no)

    def _fix_fill(self, keys: list[bytes], children: list[int], new: list[int]) -> int:
        """Merges each underfull node of `new` in a branch's children with a sibling (in place);
        returns the change in the branch's cell bytes."""
        delta = 0
        while len(children) > 1 and new:
            c = new.pop()
            node = self._nodes.get(c)
            if node is None or not self._underfull(node):
                continue
            try:
                i = children.index(c)
            except ValueError:
                continue
            j = i - 1 if i else 0
            seps, nos = self._merge(children[j], keys[j], children[j + 1])
            children[j : j + 2] = nos
            delta += sum(map(branch_cell_size, seps)) - branch_cell_size(keys[j])
            keys[j : j + 1] = seps
            new += nos
        return delta

    @staticmethod
    def _underfull(node: Node) -> bool:
        base = LEAF_BASE if type(node) is Leaf else BRANCH_BASE
        return node.size - base < MIN_FILL

    def _merge(self, a: int, sep: bytes, b: int) -> tuple[list[bytes], list[int]]:
        """Merges sibling nodes a and b (separated by `sep`) and splits the result evenly."""
        na = self._node(a)
        nb = self._node(b)
        self._release_node(a, na)
        self._release_node(b, nb)
        if type(na) is Leaf:
            assert type(nb) is Leaf
            return self._place_leaf(na.keys + nb.keys, na.cells + nb.cells, na.big or nb.big, None)
        assert type(na) is Branch and type(nb) is Branch
        keys = [*na.keys, sep, *nb.keys]
        children = na.children + nb.children
        self._fix_fill(keys, children, [c for c in children if c in self._nodes])
        return self._place_branch(keys, children, None)

    def _new_root(self, old: int, res: Result) -> int:
        if res is None:
            return old
        seps, nos = res
        while len(nos) > 1:
            size = BRANCH_BASE + sum(map(branch_cell_size, seps))
            no = self._alloc()
            self._nodes[no] = Branch(seps, nos, size)
            seps, nos = (
                ([], [no]) if size - BRANCH_BASE <= CAPACITY else self._place_branch(seps, nos, no)
            )
        if not nos:
            return 0
        root = nos[0]
        node = self._node(root)
        while type(node) is Branch and len(node.children) == 1:
            self._release_node(root, node)
            root = node.children[0]
            node = self._node(root)
        return root

    # -- relocate --------------------------------------------------------------------------------

    def _relocate(self, no: int, below: int, height: int) -> int | None:
        """Relocates the subtree at `no` (leaves `height` levels down); returns the node's new
        page, or None when it stays at `no`."""
        node = self._nodes.get(no)
        owned = node is not None
        if node is None:
            if not height and no < below:
                _t, flags, _n = open_page(self._r.page(no), no, PageType.LEAF, self._path)
                if not flags & FLAG_SPILLS:
                    return None  # nothing hangs off it and it stays: no decode
            node = self._r.node(no)
        if type(node) is Branch:
            moves = []
            for i, child in enumerate(node.children):
                new = self._relocate(child, below, height - 1)
                if new is not None:
                    moves.append((i, new))
            if not moves and (owned or (no < below and not self._keys_move(node, below))):
                return None
            if not owned:
                no, node = self._own(no)
            children = node.children  # type: ignore[union-attr]
            for i, new in moves:
                children[i] = new
            return None if owned else no
        assert type(node) is Leaf
        refs: list[tuple[int, Overflow]] = []
        if node.big:
            cells = node.cells
            refs = [(i, v) for i, (_k, v, _x) in enumerate(cells) if type(v) is Overflow]
        moved = [(i, ov) for i, ref in refs if (ov := self._move_chain(ref, below)) is not None]
        if not moved and (owned or (no < below and not self._keys_move(node, below))):
            return None
        if not owned:
            no, node = self._own(no)
        cells = node.cells  # type: ignore[union-attr]
        for i, ov in moved:
            kind, _v, expiry = cells[i]
            cells[i] = (kind, ov, expiry)
        return None if owned else no

    def _chain_moves(self, head: int, length: int, below: int) -> list[int] | None:
        """The pages of an old chain that has a page >= below; None if it stays."""
        if chain_pages_needed(length) <= 1:
            return [head] if head >= below else None
        nos = chain_pages(self._page, head, PageType.OVERFLOW, self._path)[0]
        return nos if max(nos) >= below else None

    def _keys_move(self, node: Node, below: int) -> bool:
        """Whether an old node's spilled keys have a chain to move (a copy rewrites them)."""
        if not node.kref:
            return False
        return any(self._chain_moves(h, len(k), below) for k, h in node.kref.items())

    def _move_chain(self, ref: Overflow, below: int) -> Overflow | None:
        """A copy of a spilled value's chain if it must move (the old pages released)."""
        if ref.head in self._fresh:
            return None
        nos = self._chain_moves(ref.head, ref.length, below)
        if nos is None:
            return None
        data = read_chain(self._page, ref.head, ref.length, PageType.OVERFLOW, self._path)
        new = self._write_chain(data)
        for no in nos:
            self._release(no)
        return new

    # -- delete_range and drop -------------------------------------------------------------------

    def _range(self, no: int, lo: bytes, hi: bytes) -> Result:
        node = self._node(no)
        if type(node) is Leaf:
            a = bisect_left(node.keys, lo)
            b = bisect_left(node.keys, hi)
            if a == b:
                return None
            no, leaf = self._own(no)
            assert type(leaf) is Leaf
            if leaf.big:
                self._release_values(leaf.cells[a:b])
            leaf.size -= sum(map(leaf_cell_size, leaf.keys[a:b], leaf.cells[a:b]))
            del leaf.keys[a:b]
            del leaf.cells[a:b]
            self.count_delta -= b - a
            return self._settle_leaf(no, leaf)
        assert type(node) is Branch
        first = bisect_right(node.keys, lo)
        last = bisect_left(node.keys, hi)
        results: list[tuple[int, tuple[list[bytes], list[int]]]] = []
        res = self._range(node.children[first], lo, hi)
        if res is not None:
            results.append((first, res))
        for ci in range(first + 1, last):
            self.count_delta -= self._free_tree(node.children[ci])
            results.append((ci, ([], [])))
        if last != first:
            res = self._range(node.children[last], lo, hi)
            if res is not None:
                results.append((last, res))
        return self._splice(no, results) if results else None

    def _free_tree(self, no: int) -> int:
        """Releases every page of the subtree at `no`; returns how many keys it held."""
        node = self._nodes.get(no)
        if node is None:
            ptype, flags, count = open_page(self._r.page(no), no, _NODE_TYPES, self._path)
            if ptype == PageType.LEAF and not flags & FLAG_SPILLS:
                self._release(no)  # nothing to read: no chains hang off it
                return count
            node = self._r.node(no)
        keys = 0
        if type(node) is Branch:
            for child in node.children:
                keys += self._free_tree(child)
        else:
            assert type(node) is Leaf
            keys = len(node.keys)
            if node.big:
                self._release_values(node.cells)
        self._release_node(no, node)
        return keys
