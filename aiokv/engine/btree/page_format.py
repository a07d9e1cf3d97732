"""B+Tree file pages: the common header, meta pages, and the byte-stream chains (overflow values
and keys, the catalog, the free list).  Node pages (BRANCH, LEAF) are in node_format.py.

See docs/format/btree.md.  All integers are little-endian; a page number is a u32.

    file     := page[page_count]                  page i at offset i * PAGE_SIZE
    header   := checksum: u64 (xxh3_64 of the page's bytes 8..PAGE_SIZE-1), type: u8,
                flags: u8, count: u16, page_no: u32
    meta     := header (type META, count 0, page_no 0 or 1), magic: b"aiokvBTR", version: u32,
                page_size: u32, txn_id: u64, page_count: u64, catalog_root: u32,
                freelist_head: u32, checkpoint_seq: u64, max_family_id: u32, zeros
    chain    := header (type OVERFLOW, CATALOG or FREELIST; count = data bytes in this page),
                next: u32 (0 = last page), data[count], zeros
    catalog  := n: u32, (id: u32, root: u32, count: u64, name_len: u16, options_len: u32,
                name, options)[n]                 the data of a CATALOG chain
    freelist := n: u32, page: u32[n]               the data of a FREELIST chain, pages ascending

Invariant 1: every page's checksum checks and its page_no is where it lies in the file.
Invariant 2: the meta page of transaction t lies at page t % 2; the valid one with the larger
txn_id is current.
Invariant 3: a chain's pages each hold DATA_PER_PAGE bytes but the last, which holds 1 or more.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from itertools import pairwise
from typing import Final

import xxhash

from aiokv.errors import CorruptionError, UnsupportedFormatError

PAGE_SIZE: Final = 4096  # the OS page and mmap granularity; a leaf of ~30 cells decodes in ~10 us
HEADER = struct.Struct("<QBBHI")  # checksum, type, flags, count, page_no
HEADER_SIZE: Final = 16
CHECKED_FROM: Final = 8  # the checksum covers the page after itself
FLAG_SPILLS: Final = 1  # header flags bit 0: the node references overflow chains
META_MAGIC: Final = b"aiokvBTR"
FORMAT_VERSION: Final = 1
META_BODY = struct.Struct("<8sIIQQIIQI")  # magic .. max_family_id, after the header
NEXT = struct.Struct("<I")  # a chain page's next pointer, right after the header
CHAIN_DATA_AT: Final = HEADER_SIZE + NEXT.size
DATA_PER_PAGE: Final = PAGE_SIZE - CHAIN_DATA_AT  # 4076 data bytes per chain page
MAX_PAGE_NO: Final = 2**32 - 1  # page numbers are u32: a file holds at most 16 TiB

_xxh3 = xxhash.xxh3_64_intdigest
_pack_header = HEADER.pack
_pack_q = struct.Struct("<Q").pack
_ZEROS = bytes(PAGE_SIZE)


class PageType(IntEnum):  # On disk: never renumber or reuse.
    META = 1
    BRANCH = 2
    LEAF = 3
    OVERFLOW = 4
    FREELIST = 5
    CATALOG = 6


def seal_page(ptype: int, flags: int, count: int, no: int, body: bytes) -> bytes:
    """A whole page: the header (checksum computed), `body`, then zeros to PAGE_SIZE.

    `body` is everything after the 16-byte header and must fit in the page.
    """
    if len(body) > PAGE_SIZE - HEADER_SIZE:
        raise ValueError(f"page body of {len(body)} bytes does not fit in a page")
    rest = _pack_header(0, ptype, flags, count, no)[CHECKED_FROM:] + body
    rest += _ZEROS[: PAGE_SIZE - CHECKED_FROM - len(rest)]
    return _pack_q(_xxh3(rest)) + rest


def open_page(
    buf: bytes, no: int, types: frozenset[int] | int, path: str = ""
) -> tuple[int, int, int]:
    """Checks a page's size, checksum, type and page_no; returns (type, flags, count).

    Raises:
        CorruptionError: at offset no * PAGE_SIZE, naming the check that failed.
    """
    if len(buf) != PAGE_SIZE:
        raise CorruptionError(path, no * PAGE_SIZE, f"page {no} is {len(buf)} bytes")
    checksum, ptype, flags, count, page_no = HEADER.unpack_from(buf, 0)
    if _xxh3(memoryview(buf)[CHECKED_FROM:]) != checksum:
        raise CorruptionError(path, no * PAGE_SIZE, f"page {no}: checksum mismatch")
    if (ptype != types) if isinstance(types, int) else (ptype not in types):
        raise CorruptionError(path, no * PAGE_SIZE, f"page {no}: unexpected page type {ptype}")
    if page_no != no:
        raise CorruptionError(path, no * PAGE_SIZE, f"page {no} says it is page {page_no}")
    return ptype, flags, count


# -- meta pages ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Meta:
    """The root of a committed transaction: what a meta page says."""

    txn_id: int
    page_count: int  # the file's high-water mark, in pages
    catalog_root: int  # first page of the CATALOG chain, 0 when there is none
    freelist_head: int  # first page of the FREELIST chain, 0 when nothing is free
    checkpoint_seq: int  # every WAL op with a sequence number <= this is in the trees
    max_family_id: int


def encode_meta(m: Meta) -> bytes:
    """The meta page of transaction m.txn_id; it is written at page m.txn_id % 2.

    >>> m = Meta(txn_id=3, page_count=9, catalog_root=4, freelist_head=0, checkpoint_seq=77,
    ...          max_family_id=1)
    >>> page = encode_meta(m)
    >>> len(page), decode_meta(page) == m, page[16:24]
    (4096, True, b'aiokvBTR')
    """
    body = META_BODY.pack(
        META_MAGIC,
        FORMAT_VERSION,
        PAGE_SIZE,
        m.txn_id,
        m.page_count,
        m.catalog_root,
        m.freelist_head,
        m.checkpoint_seq,
        m.max_family_id,
    )
    return seal_page(PageType.META, 0, 0, m.txn_id % 2, body)


def decode_meta(buf: bytes) -> Meta | None:
    """The Meta of a meta page, or None when the page is torn or is no meta page.

    None covers a bad checksum, a wrong size, type, magic or page_no (the engine then takes
    the other meta page).

    Raises:
        UnsupportedFormatError: a valid meta page of a newer format version or another page size.
    """
    if len(buf) != PAGE_SIZE:
        return None
    checksum, ptype, _flags, _count, page_no = HEADER.unpack_from(buf, 0)
    if _xxh3(memoryview(buf)[CHECKED_FROM:]) != checksum or ptype != PageType.META:
        return None
    magic, version, page_size, txn, pages, catalog, freelist, seq, max_id = META_BODY.unpack_from(
        buf, HEADER_SIZE
    )
    if magic != META_MAGIC or page_no != txn % 2:
        return None
    if version > FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"B+Tree format version {version} is newer than this build reads "
            f"({FORMAT_VERSION}); upgrade aiokv"
        )
    if page_size != PAGE_SIZE:
        raise UnsupportedFormatError(f"B+Tree file of {page_size}-byte pages (this build: 4096)")
    return Meta(txn, pages, catalog, freelist, seq, max_id)


# -- chains: a byte stream over linked pages ----------------------------------------------------


def chain_pages_needed(size: int) -> int:
    """How many chain pages `size` bytes take (0 for none)."""
    return -(-size // DATA_PER_PAGE)


def encode_chain(ptype: int, data: bytes, pages: Sequence[int]) -> list[bytes]:
    """The pages of a chain holding `data`, to write at `pages` (in chain order).

    >>> [len(p) for p in encode_chain(PageType.OVERFLOW, bytes(5000), [7, 3])]
    [4096, 4096]
    """
    if len(pages) != chain_pages_needed(len(data)):
        raise ValueError(f"{len(data)} bytes need {chain_pages_needed(len(data))} pages")
    out = []
    last = len(pages) - 1
    for i, no in enumerate(pages):
        part = data[i * DATA_PER_PAGE : (i + 1) * DATA_PER_PAGE]
        nxt = pages[i + 1] if i < last else 0
        out.append(seal_page(ptype, 0, len(part), no, NEXT.pack(nxt) + part))
    return out


def chain_pages(
    read_page: Callable[[int], bytes], head: int, ptype: int, path: str = ""
) -> tuple[list[int], list[bytes]]:
    """The page numbers of the chain at `head` and the data each holds.

    Raises:
        CorruptionError: a page fails its checks, a page but the last is not full, or the chain
            loops.
    """
    nos: list[int] = []
    parts: list[bytes] = []
    seen: set[int] = set()
    no = head
    while no:
        if no in seen:
            raise CorruptionError(path, no * PAGE_SIZE, f"chain at page {head} loops at {no}")
        seen.add(no)
        buf = read_page(no)
        _t, _f, count = open_page(buf, no, ptype, path)
        (nxt,) = NEXT.unpack_from(buf, HEADER_SIZE)
        if count > DATA_PER_PAGE or count == 0 or (nxt and count != DATA_PER_PAGE):
            raise CorruptionError(path, no * PAGE_SIZE, f"chain page {no} holds {count} bytes")
        nos.append(no)
        parts.append(buf[CHAIN_DATA_AT : CHAIN_DATA_AT + count])
        no = nxt
    return nos, parts


def read_chain(
    read_page: Callable[[int], bytes], head: int, length: int, ptype: int, path: str = ""
) -> bytes:
    """The `length` bytes of the chain at `head`.

    Raises:
        CorruptionError: as chain_pages, or the chain holds another number of bytes.
    """
    _nos, parts = chain_pages(read_page, head, ptype, path)
    data = b"".join(parts)
    if len(data) != length:
        raise CorruptionError(
            path, head * PAGE_SIZE, f"chain at page {head} holds {len(data)} bytes, not {length}"
        )
    return data


# -- the catalog --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FamilyRecord:
    """One column family: its tree's root page (0 = empty) and how many keys the tree holds."""

    id: int
    name: str
    options: bytes
    root: int
    count: int


_COUNT = struct.Struct("<I")
_RECORD = struct.Struct("<IIQHI")  # id, root, count, name_len, options_len


def _catalog_bytes(records: Sequence[FamilyRecord]) -> bytes:
    if not records:
        return b""
    parts = [_COUNT.pack(len(records))]
    for r in records:
        name = r.name.encode()
        parts += (_RECORD.pack(r.id, r.root, r.count, len(name), len(r.options)), name, r.options)
    return b"".join(parts)


def catalog_pages_needed(records: Sequence[FamilyRecord]) -> int:
    """How many CATALOG pages the records take (0 for no records: catalog_root is then 0)."""
    return chain_pages_needed(len(_catalog_bytes(records)))


def encode_catalog(records: Sequence[FamilyRecord], pages: Sequence[int]) -> list[bytes]:
    """The CATALOG pages holding `records`, to write at `pages` (pages[0] is the catalog root).

    >>> rec = FamilyRecord(id=0, name="default", options=b"{}", root=5, count=2)
    >>> pages = encode_catalog([rec], [3])
    >>> decode_catalog({3: pages[0]}.__getitem__, 3) == ([rec], [3])
    True
    """
    return encode_chain(PageType.CATALOG, _catalog_bytes(records), pages)


def decode_catalog(
    read_page: Callable[[int], bytes], head: int, path: str = ""
) -> tuple[list[FamilyRecord], list[int]]:
    """The family records of the catalog at `head`, and the pages its chain occupies.

    Raises:
        CorruptionError: a page fails its checks or the records do not fill the data exactly.
    """
    if not head:
        return [], []
    nos, parts = chain_pages(read_page, head, PageType.CATALOG, path)
    data = b"".join(parts)
    at = head * PAGE_SIZE
    try:
        (n,) = _COUNT.unpack_from(data, 0)
        pos = _COUNT.size
        records = []
        for _ in range(n):
            fid, root, count, name_len, options_len = _RECORD.unpack_from(data, pos)
            pos += _RECORD.size
            name = data[pos : pos + name_len].decode()
            options = data[pos + name_len : pos + name_len + options_len]
            pos += name_len + options_len
            records.append(FamilyRecord(fid, name, options, root, count))
    except (struct.error, UnicodeDecodeError) as exc:
        raise CorruptionError(path, at, f"catalog does not decode: {exc}") from None
    if pos != len(data):
        raise CorruptionError(path, at, f"catalog of {len(data)} bytes holds {pos} bytes of data")
    return records, nos


# -- the free list ------------------------------------------------------------------------------


def freelist_pages_needed(free: Sequence[int]) -> int:
    """How many FREELIST pages the free list takes (0 when nothing is free: the head is 0)."""
    return chain_pages_needed(4 + 4 * len(free)) if free else 0


def encode_freelist(free: Sequence[int], pages: Sequence[int]) -> list[bytes]:
    """The FREELIST pages holding the sorted page numbers `free`, to write at `pages`.

    >>> pages = encode_freelist([9, 12], [4])
    >>> decode_freelist({4: pages[0]}.__getitem__, 4)
    ([9, 12], [4])
    """
    data = struct.pack(f"<I{len(free)}I", len(free), *free) if free else b""
    return encode_chain(PageType.FREELIST, data, pages)


def decode_freelist(
    read_page: Callable[[int], bytes], head: int, path: str = ""
) -> tuple[list[int], list[int]]:
    """The free page numbers of the free list at `head`, and the pages its chain occupies.

    Raises:
        CorruptionError: a page fails its checks, the data is not n and n page numbers, or the
            numbers are not strictly ascending.
    """
    if not head:
        return [], []
    nos, parts = chain_pages(read_page, head, PageType.FREELIST, path)
    data = b"".join(parts)
    at = head * PAGE_SIZE
    if len(data) < 4 or len(data) != 4 + 4 * _COUNT.unpack_from(data, 0)[0]:
        raise CorruptionError(path, at, f"free list of {len(data)} bytes has a wrong count")
    free = list(struct.unpack_from(f"<{(len(data) - 4) // 4}I", data, 4))
    if any(a >= b for a, b in pairwise(free)) or (free and free[0] < 2):
        raise CorruptionError(path, at, "free list pages not ascending, or a meta page")
    return free, nos
