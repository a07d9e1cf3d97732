"""The B+Tree engine's reader of committed pages: decoded nodes by page number, bounded.

A get walks root to leaf through `node`; a node is decoded from the page file's mapping once
and kept until the cache is full, when the oldest eighth (insertion order) is dropped: a dict
in insertion order costs no bookkeeping per hit, and the root and upper branches, decoded
first, are read on every walk and re-decoded at once if dropped.  A checkpoint puts the nodes
it wrote (decoded already) and drops the pages it freed.
"""

from __future__ import annotations

from aiokv.engine.btree.node_format import Branch, Leaf, Node, decode_node
from aiokv.engine.btree.pagefile import PageFile


class NodeCache:
    """tree.NodeReader over an open PageFile (set `pages` once the file is open)."""

    __slots__ = ("_cap", "_nodes", "pages")

    def __init__(self, cap: int) -> None:
        self._cap = max(16, cap)
        self._nodes: dict[int, Node] = {}
        self.pages: PageFile | None = None

    @property
    def path(self) -> str:
        return self.pages.path if self.pages is not None else ""

    def __len__(self) -> int:
        return len(self._nodes)

    def node(self, no: int) -> Leaf | Branch:
        n = self._nodes.get(no)
        if n is None:
            assert self.pages is not None
            n = decode_node(no, self.pages.read(no), self.page, self.pages.path)
            if len(self._nodes) >= self._cap:
                for k in list(self._nodes)[: self._cap // 8 + 1]:
                    del self._nodes[k]
            self._nodes[no] = n
        return n

    def page(self, no: int) -> bytes:
        assert self.pages is not None
        return self.pages.read(no)

    def put(self, no: int, node: Node) -> None:
        self._nodes[no] = node

    def forget(self, no: int) -> None:
        self._nodes.pop(no, None)
