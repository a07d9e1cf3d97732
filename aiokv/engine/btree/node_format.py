"""B+Tree node pages (LEAF, BRANCH) and their decoded forms.  See docs/format/btree.md.

All integers are little-endian; offsets are from the start of the page.

    leaf   := header (type LEAF, count n), cell_byte: u8[n], offset: u16[2n + 1],
              expiry_ms: u64[m], (key_i, value_i)[n], zeros
    branch := header (type BRANCH, count n), child: u32[n + 1], key_byte: u8[n],
              offset: u16[n + 1], key[n], zeros

A leaf's key i is bytes offset[2i]..offset[2i+1] and its value offset[2i+1]..offset[2i+2]; a
branch's key i is offset[i]..offset[i+1].  cell_byte = kind (ValueKind PUT, MERGE or
PUT_EXPIRING) | HAS_EXPIRY | KEY_SPILLED | VALUE_SPILLED; key_byte is 0 or KEY_SPILLED.  There is
one expiry_ms for each cell with HAS_EXPIRY, in cell order.  A spilled key or value is stored
as a ref (head: u32, length: u32) to an OVERFLOW chain holding its bytes.  Header flags bit 0
(FLAG_SPILLS) is set when any key or value of the page spills.

Invariant 1: keys strictly increase; a branch's child i holds keys k with
key[i-1] <= k < key[i].
Invariant 2: offset[0] is the end of the arrays before the data, offsets never decrease, and
the last is at most PAGE_SIZE; `size` of a decoded node is that last offset.
Invariant 3: a key spills iff it is longer than MAX_KEY_INLINE; a value spills iff the cell
would otherwise exceed MAX_CELL (so at least four cells fit in a page).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from itertools import accumulate, chain, repeat
from operator import sub
from typing import Final, NamedTuple

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.btree.page_format import (
    FLAG_SPILLS,
    HEADER_SIZE,
    PAGE_SIZE,
    PageType,
    open_page,
    read_chain,
    seal_page,
)
from aiokv.errors import CorruptionError

HAS_EXPIRY: Final = 0x10
KEY_SPILLED: Final = 0x40
VALUE_SPILLED: Final = 0x80
REF = struct.Struct("<II")  # head page, length: a spilled key or value
LEAF_BASE: Final = HEADER_SIZE + 2  # header and the one offset more than 2 per cell
BRANCH_BASE: Final = HEADER_SIZE + 4 + 2  # header, the extra child, the extra offset
LEAF_CELL_BASE: Final = 1 + 4  # cell byte, two offsets
BRANCH_CELL_BASE: Final = 4 + 1 + 2  # child, key byte, offset
CAPACITY: Final = PAGE_SIZE - BRANCH_BASE  # 4074: the most cell bytes a node of either kind holds
MAX_CELL: Final = CAPACITY // 4  # 1018: four cells always fit
MIN_FILL: Final = CAPACITY // 8  # 509: a non-root node holds at least this many cell bytes
MAX_KEY_INLINE: Final = 500  # a longer key spills; keeps a branch cell <= CAPACITY // 8

_PUT = int(ValueKind.PUT)
_MERGE = int(ValueKind.MERGE)
_PUT_EXPIRING = int(ValueKind.PUT_EXPIRING)
_KINDS = (_PUT, _MERGE, _PUT_EXPIRING)
_PLAIN = bytes(_KINDS) + bytes(k | HAS_EXPIRY for k in _KINDS)  # cell bytes without a spill
_KIND_OF = bytes(b & 0x0F for b in range(256))  # translate table: cell byte -> kind
_EXPIRY_OF = bytes(1 if b & HAS_EXPIRY else 0 for b in range(256))

Cell = tuple[int, bytes, int]  # (kind, value, expiry_ms): a value as get and scan return it


class Overflow(NamedTuple):
    """A spilled value in a decoded leaf: its chain's head page and its length."""

    head: int
    length: int


LeafCell = tuple[int, "bytes | Overflow", int]  # a cell as a Leaf holds it


class Leaf:
    """A decoded leaf: parallel lists `keys` (ascending) and `cells`.

    `size` is the page bytes the node takes encoded; `kref` maps each spilled key to the head of
    its chain (None when no key spills); `big` is True when a value may be an Overflow.
    """

    __slots__ = ("big", "cells", "keys", "kref", "size")

    def __init__(
        self,
        keys: list[bytes],
        cells: list[LeafCell],
        size: int,
        kref: dict[bytes, int] | None = None,
        big: bool = False,
    ) -> None:
        self.keys = keys
        self.cells = cells
        self.size = size
        self.kref = kref
        self.big = big

    def __repr__(self) -> str:
        return f"Leaf({self.keys!r}, {self.cells!r}, size={self.size})"


class Branch:
    """A decoded branch: separator `keys` and `children` (one more than keys)."""

    __slots__ = ("children", "keys", "kref", "size")

    def __init__(
        self,
        keys: list[bytes],
        children: list[int],
        size: int,
        kref: dict[bytes, int] | None = None,
    ) -> None:
        self.keys = keys
        self.children = children
        self.size = size
        self.kref = kref

    def __repr__(self) -> str:
        return f"Branch({self.keys!r}, {self.children!r}, size={self.size})"


Node = Leaf | Branch


def key_size(key: bytes) -> int:
    """Bytes a key takes inline in a node."""
    n = len(key)
    return n if n <= MAX_KEY_INLINE else REF.size


def leaf_cell_size(key: bytes, cell: LeafCell) -> int:
    """Bytes a cell takes in a leaf page (cell byte, offsets, expiry, key and value)."""
    v = cell[1]
    return (
        LEAF_CELL_BASE
        + (len(key) if len(key) <= MAX_KEY_INLINE else REF.size)
        + (len(v) if type(v) is bytes else REF.size)
        + (8 if cell[2] else 0)
    )


def branch_cell_size(key: bytes) -> int:
    return BRANCH_CELL_BASE + key_size(key)


def value_spills(key: bytes, value: bytes, expiry_ms: int) -> bool:
    """Whether a value goes to an overflow chain (the cell would exceed MAX_CELL inline)."""
    return LEAF_CELL_BASE + key_size(key) + len(value) + (8 if expiry_ms else 0) > MAX_CELL


_FIELD = [f"{i}s" for i in range(PAGE_SIZE + 1)]  # struct format of a field of i bytes
_structs: dict[str, struct.Struct] = {}


def _st(fmt: str) -> struct.Struct:
    s = _structs.get(fmt)
    if s is None:
        s = _structs[fmt] = struct.Struct(fmt)
    return s


# -- encode -------------------------------------------------------------------------------------


def encode_node(node: Node, no: int) -> bytes:
    """The PAGE_SIZE bytes of `node` at page `no`.  Spilled keys must be in node.kref and
    spilled values be Overflow refs already (Txn.finish sees to both).

    >>> leaf = Leaf([b"a", b"b"], [(1, b"x", 0), (4, b"y", 9)], 0)
    >>> page = encode_node(leaf, 7)
    >>> back = decode_node(7, page, {}.__getitem__)
    >>> back.keys, back.cells, back.size
    ([b'a', b'b'], [(1, b'x', 0), (4, b'y', 9)], 40)
    """
    if type(node) is Leaf:
        return _encode_leaf(node, no)
    assert type(node) is Branch
    return _encode_branch(node, no)


def _inline_keys(keys: list[bytes], kref: dict[bytes, int] | None) -> tuple[list[bytes], bytes]:
    """Keys as stored (spilled ones as refs) and their KEY_SPILLED bits, one byte per key."""
    if max(map(len, keys), default=0) <= MAX_KEY_INLINE:
        return keys, bytes(len(keys))
    if kref is None:
        raise ValueError("a key spills but the node has no key refs")
    inline = [k if len(k) <= MAX_KEY_INLINE else REF.pack(kref[k], len(k)) for k in keys]
    return inline, bytes(KEY_SPILLED if len(k) > MAX_KEY_INLINE else 0 for k in keys)


def _encode_leaf(node: Leaf, no: int) -> bytes:
    keys = node.keys
    cells = node.cells
    n = len(keys)
    ikeys, kbits = _inline_keys(keys, node.kref)
    kinds_t, values_t, expiry_t = zip(*cells, strict=True) if cells else ((), (), ())
    values: Sequence[bytes] = values_t
    vbits = bytes(n)
    if node.big:
        values = [v if type(v) is bytes else REF.pack(*v) for v in values_t]
        vbits = bytes(0 if type(v) is bytes else VALUE_SPILLED for v in values_t)
    spills = any(kbits) or any(vbits)
    kinds = bytes(kinds_t)
    expiries: list[int] = []
    if any(expiry_t):
        expiries = [x for x in expiry_t if x]
        kinds = bytes(k | HAS_EXPIRY if x else k for k, x in zip(kinds_t, expiry_t, strict=True))
    if spills:
        kinds = bytes(map(int.__or__, kinds, map(int.__or__, kbits, vbits)))
    data = list(chain.from_iterable(zip(ikeys, values, strict=True)))
    start = LEAF_BASE + LEAF_CELL_BASE * n + 8 * len(expiries)
    offsets = list(accumulate(map(len, data), initial=start))
    if offsets[-1] > PAGE_SIZE:
        raise ValueError(f"leaf of {offsets[-1]} bytes does not fit in a page")
    body = b"".join(
        [
            kinds,
            _st(f"<{2 * n + 1}H").pack(*offsets),
            _st(f"<{len(expiries)}Q").pack(*expiries),
            *data,
        ]
    )
    return seal_page(PageType.LEAF, FLAG_SPILLS if spills else 0, n, no, body)


def _encode_branch(node: Branch, no: int) -> bytes:
    keys = node.keys
    n = len(keys)
    if len(node.children) != n + 1:
        raise ValueError(f"branch of {n} keys has {len(node.children)} children")
    ikeys, kbits = _inline_keys(keys, node.kref)
    start = BRANCH_BASE + BRANCH_CELL_BASE * n
    offsets = list(accumulate(map(len, ikeys), initial=start))
    if offsets[-1] > PAGE_SIZE:
        raise ValueError(f"branch of {offsets[-1]} bytes does not fit in a page")
    body = b"".join(
        [_st(f"<{n + 1}I").pack(*node.children), kbits, _st(f"<{n + 1}H").pack(*offsets), *ikeys]
    )
    return seal_page(PageType.BRANCH, FLAG_SPILLS if any(kbits) else 0, n, no, body)


# -- decode -------------------------------------------------------------------------------------

_NODE_TYPES = frozenset((PageType.LEAF, PageType.BRANCH))


def decode_node(
    no: int, buf: bytes, read_page: Callable[[int], bytes], path: str = ""
) -> Leaf | Branch:
    """Decodes page `no`; spilled keys are read through `read_page`, spilled values are left as
    Overflow refs (get and scan resolve them).

    Raises:
        CorruptionError: at offset no * PAGE_SIZE: bad checksum, type, page_no or lengths.
    """
    ptype, flags, n = open_page(buf, no, _NODE_TYPES, path)
    if ptype == PageType.LEAF:
        return _decode_leaf(no, buf, n, flags, read_page, path)
    return _decode_branch(no, buf, n, flags, read_page, path)


def _fields(
    no: int, buf: bytes, n: int, at: int, start: int, path: str
) -> tuple[tuple[int, ...], tuple[bytes, ...]]:
    """The n offsets at `at`, and the n - 1 byte strings between them, in one unpack call."""
    off: tuple[int, ...] = _st(f"<{n}H").unpack_from(buf, at)
    lens = list(map(sub, off[1:], off))
    if off[0] != start or off[-1] > PAGE_SIZE or (lens and min(lens) < 0):
        raise CorruptionError(path, no * PAGE_SIZE, f"page {no}: bad offsets")
    fields = struct.unpack_from("".join(map(_FIELD.__getitem__, lens)), buf, start)
    return off, fields


def _decode_leaf(
    no: int, buf: bytes, n: int, flags: int, read_page: Callable[[int], bytes], path: str
) -> Leaf:
    at = HEADER_SIZE + n
    if at + 4 * n + 2 > PAGE_SIZE:
        raise CorruptionError(path, no * PAGE_SIZE, f"page {no}: count {n} too large")
    cb = buf[HEADER_SIZE:at]
    m = cb.translate(_EXPIRY_OF).count(1)
    exp_at = at + 4 * n + 2
    off, fields = _fields(no, buf, 2 * n + 1, at, exp_at + 8 * m, path)
    keys = list(fields[0::2])
    values = fields[1::2]
    kinds = cb.translate(_KIND_OF)
    if m == 0:
        cells: list[LeafCell] = list(zip(kinds, values, repeat(0, n), strict=False))
    elif m == n:
        cells = list(zip(kinds, values, _st(f"<{n}Q").unpack_from(buf, exp_at), strict=False))
    else:
        it = iter(_st(f"<{m}Q").unpack_from(buf, exp_at))
        triples = zip(kinds, values, cb, strict=True)
        cells = [(k, v, next(it) if b & HAS_EXPIRY else 0) for k, v, b in triples]
    leaf = Leaf(keys, cells, off[-1])
    if cb.translate(None, _PLAIN):
        _unspill_leaf(no, leaf, cb, flags, read_page, path)
    return leaf


def _unspill_leaf(
    no: int, leaf: Leaf, cb: bytes, flags: int, read_page: Callable[[int], bytes], path: str
) -> None:
    """Resolves spilled keys and turns spilled values into Overflow refs; checks cell bytes."""
    at = no * PAGE_SIZE
    spills = False
    for b in set(cb):
        if b & 0x0F not in _KINDS or b & 0x20:
            raise CorruptionError(path, at, f"page {no}: bad cell byte {b:#x}")
        spills = spills or b >= KEY_SPILLED
    if spills != bool(flags & FLAG_SPILLS):
        raise CorruptionError(path, at, f"page {no}: the spill flag disagrees with the cells")
    cells = leaf.cells
    keys = leaf.keys
    for i, b in enumerate(cb):
        if b < KEY_SPILLED:
            continue
        kind, value, expiry = cells[i]
        if b & VALUE_SPILLED:
            if len(value) != REF.size:
                raise CorruptionError(path, at, f"page {no}: bad value ref")
            cells[i] = (kind, Overflow(*REF.unpack(value)), expiry)  # type: ignore[arg-type]
            leaf.big = True
        if b & KEY_SPILLED:
            ref = keys[i]
            keys[i] = _read_key(no, ref, read_page, path)
            if leaf.kref is None:
                leaf.kref = {}
            leaf.kref[keys[i]] = REF.unpack(ref)[0]


def _read_key(no: int, ref: bytes, read_page: Callable[[int], bytes], path: str) -> bytes:
    if len(ref) != REF.size:
        raise CorruptionError(path, no * PAGE_SIZE, f"page {no}: bad key ref")
    head, length = REF.unpack(ref)
    if length <= MAX_KEY_INLINE:
        raise CorruptionError(path, no * PAGE_SIZE, f"page {no}: a short key spills")
    return read_chain(read_page, head, length, PageType.OVERFLOW, path)


def _decode_branch(
    no: int, buf: bytes, n: int, flags: int, read_page: Callable[[int], bytes], path: str
) -> Branch:
    at = HEADER_SIZE + 4 * (n + 1)
    if at + 3 * n + 2 > PAGE_SIZE:
        raise CorruptionError(path, no * PAGE_SIZE, f"page {no}: count {n} too large")
    children = list(_st(f"<{n + 1}I").unpack_from(buf, HEADER_SIZE))
    kb = buf[at : at + n]
    off, fields = _fields(no, buf, n + 1, at + n, at + 3 * n + 2, path)
    keys = list(fields)
    node = Branch(keys, children, off[-1])
    if kb.count(0) != n:
        if kb.translate(None, bytes((0, KEY_SPILLED))) or not flags & FLAG_SPILLS:
            raise CorruptionError(path, no * PAGE_SIZE, f"page {no}: bad key byte")
        node.kref = {}
        for i, b in enumerate(kb):
            if b:
                ref = keys[i]
                keys[i] = _read_key(no, ref, read_page, path)
                node.kref[keys[i]] = REF.unpack(ref)[0]
    return node
