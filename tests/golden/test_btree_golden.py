"""The worked example of docs/format/btree.md, executed: its pages, its tables and its damage
table."""

from __future__ import annotations

import ast
import re

import pytest

from aiokv.engine.batch_format import ValueKind
from aiokv.engine.btree.node_format import (
    Branch,
    Leaf,
    Overflow,
    decode_node,
    encode_node,
    value_spills,
)
from aiokv.engine.btree.page_format import (
    FORMAT_VERSION,
    PAGE_SIZE,
    FamilyRecord,
    Meta,
    PageType,
    decode_catalog,
    decode_meta,
    encode_catalog,
    encode_chain,
    encode_meta,
    read_chain,
    seal_page,
)
from aiokv.engine.btree.tree import get
from aiokv.errors import CorruptionError, UnsupportedFormatError
from tests.golden.docblocks import (
    DumpLine,
    check_dump_covers,
    check_note,
    fenced,
    flipped,
    golden_block,
    read_doc,
    table,
)

DOC = read_doc("btree.md")
_ENUMS = {**ValueKind.__members__, **PageType.__members__}
PATH = "db/btree.pages"


def _dump(name: str) -> list[DumpLine]:
    """The lines of hex block `name`; `(N zero bytes)` in the bytes column is N zeros."""
    out = []
    for line in fenced(golden_block(DOC, name)).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        offset, hexbytes, note = re.split(r"\s{2,}", line, maxsplit=2)
        if m := re.fullmatch(r"\((\d+) zero bytes\)", hexbytes):
            data = bytes(int(m[1]))
        else:
            data = bytes.fromhex(hexbytes)
        out.append(DumpLine(int(offset), data, note))
    return out


DUMPS = {name: _dump(f"btree-{name}-hex") for name in ("meta", "leaf", "catalog", "overflow")}
DUMPS["branch"] = _dump("btree-branch-hex")
PAGES = {name: b"".join(line.data for line in dump) for name, dump in DUMPS.items()}
PAGE_NO = {"meta": 0, "leaf": 2, "catalog": 3, "overflow": 4, "branch": 5}
META = {row["field"]: int(row["value"]) for row in table(golden_block(DOC, "btree-meta"))}
LEAF_ROWS = table(golden_block(DOC, "btree-leaf"))
CATALOG_ROWS = table(golden_block(DOC, "btree-catalog"))
(BRANCH_ROW,) = table(golden_block(DOC, "btree-branch"))


def _lit(cell: str) -> object:
    text = cell.strip("`")
    if m := re.fullmatch(r"bytes\((\d+)\)", text):
        return bytes(int(m[1]))
    return ast.literal_eval(text)


def _file() -> dict[int, bytes]:
    return {PAGE_NO[name]: page for name, page in PAGES.items() if name != "branch"}


class _Reader:
    """A NodeReader over the example's pages."""

    path = PATH

    def __init__(self, pages: dict[int, bytes]) -> None:
        self.pages = pages

    def page(self, no: int) -> bytes:
        return self.pages[no]

    def node(self, no: int) -> Leaf | Branch:
        return decode_node(no, self.pages[no], self.page, PATH)


def _leaf_cells() -> tuple[list[bytes], list[tuple[int, bytes, int]]]:
    keys = [_lit(r["key"]) for r in LEAF_ROWS]
    cells = [
        (int(ValueKind[r["kind"]]), _lit(r["value"]), int(r["expiry_ms"] or 0)) for r in LEAF_ROWS
    ]
    return keys, cells  # type: ignore[return-value]


# -- the dumps themselves ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(DUMPS))
def test_hex_dump_offsets_cover_a_whole_page(name):
    check_dump_covers(DUMPS[name], PAGES[name])
    assert len(PAGES[name]) == PAGE_SIZE


@pytest.mark.parametrize("name", sorted(DUMPS))
def test_hex_dump_notes_match_their_bytes(name):
    for line in DUMPS[name]:
        checked = check_note(line, PAGES[name], lambda n: int(_ENUMS[n]))
        if "zero" in line.note:
            assert line.data == bytes(len(line.data)), line
            checked = True
        assert checked, f"nothing in the note of {line} is checked"


def test_every_page_checksum_note_covers_bytes_8_to_the_end():
    for name, dump in DUMPS.items():
        assert dump[0].note.startswith("checksum = xxh3_64(bytes 8..4095)"), name


# -- encode: the documented tables give the documented bytes -------------------------------------


def test_encoding_the_documented_meta_gives_page_0():
    page = encode_meta(Meta(**META))
    assert page == PAGES["meta"]
    assert META["txn_id"] % 2 == PAGE_NO["meta"]


def test_encoding_the_documented_leaf_gives_page_2_and_its_overflow_page_4():
    keys, cells = _leaf_cells()
    spilled = [
        i for i, (k, c) in enumerate(zip(keys, cells, strict=True)) if value_spills(k, *c[1:])
    ]
    assert spilled == [3]
    (i,) = spilled
    value = cells[i][1]
    assert encode_chain(PageType.OVERFLOW, value, [PAGE_NO["overflow"]]) == [PAGES["overflow"]]
    cells[i] = (cells[i][0], Overflow(PAGE_NO["overflow"], len(value)), cells[i][2])  # type: ignore[assignment]
    assert encode_node(Leaf(keys, cells, 0, None, True), PAGE_NO["leaf"]) == PAGES["leaf"]  # type: ignore[arg-type]


def test_encoding_the_documented_catalog_gives_page_3():
    records = [
        FamilyRecord(
            int(r["id"]), _lit(r["name"]), _lit(r["options"]), int(r["root"]), int(r["count"])
        )  # type: ignore[arg-type]
        for r in CATALOG_ROWS
    ]
    assert encode_catalog(records, [PAGE_NO["catalog"]]) == [PAGES["catalog"]]
    assert records[0].root == PAGE_NO["leaf"] and META["catalog_root"] == PAGE_NO["catalog"]


def test_encoding_the_documented_branch_gives_its_page():
    node = Branch(_lit(BRANCH_ROW["keys"]), _lit(BRANCH_ROW["children"]), 0)  # type: ignore[arg-type]
    assert encode_node(node, PAGE_NO["branch"]) == PAGES["branch"]


# -- decode: the documented bytes give the documented tables -------------------------------------


def test_decoding_page_0_gives_the_documented_meta():
    assert decode_meta(PAGES["meta"]) == Meta(**META)


def test_reading_the_example_file_gives_the_documented_cells():
    reader = _Reader(_file())
    records, chain = decode_catalog(reader.page, META["catalog_root"], PATH)
    assert chain == [PAGE_NO["catalog"]]
    assert [(r.name, r.root, r.count) for r in records] == [("default", 2, 4)]
    keys, cells = _leaf_cells()
    for key, cell in zip(keys, cells, strict=True):
        assert get(reader, records[0].root, key) == cell


def test_decoding_the_leaf_keeps_the_spilled_value_as_a_ref():
    leaf = decode_node(PAGE_NO["leaf"], PAGES["leaf"], {}.__getitem__)
    assert isinstance(leaf, Leaf)
    assert leaf.cells[3] == (1, Overflow(4, 1500), 0)
    assert leaf.size == 78
    assert read_chain(_file().__getitem__, 4, 1500, PageType.OVERFLOW) == bytes(1500)


def test_decoding_the_branch_gives_the_documented_keys_and_children():
    node = decode_node(PAGE_NO["branch"], PAGES["branch"], {}.__getitem__)
    assert isinstance(node, Branch)
    assert (node.keys, node.children) == (_lit(BRANCH_ROW["keys"]), _lit(BRANCH_ROW["children"]))


# -- the damage table ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["leaf", "catalog", "overflow", "branch"])
def test_a_flipped_byte_in_a_page_is_corruption_at_its_file_offset(name):
    no = PAGE_NO[name]
    for at in range(PAGE_SIZE):
        pages = _file() | {no: flipped(PAGES[name], at)}
        with pytest.raises(CorruptionError) as info:
            if name == "catalog":
                decode_catalog(pages.__getitem__, no, PATH)
            elif name == "overflow":
                read_chain(pages.__getitem__, no, 1500, PageType.OVERFLOW, PATH)
            else:
                decode_node(no, pages[no], pages.__getitem__, PATH)
        assert (info.value.path, info.value.offset) == (PATH, no * PAGE_SIZE)


def test_a_node_page_read_at_another_number_is_corruption():
    with pytest.raises(CorruptionError, match="says it is page 2"):
        decode_node(7, PAGES["leaf"], {}.__getitem__, PATH)


def test_a_flipped_byte_in_the_meta_page_makes_it_invalid_not_an_error():
    for at in range(PAGE_SIZE):
        assert decode_meta(flipped(PAGES["meta"], at)) is None


def test_a_meta_page_of_a_newer_version_is_unsupported():
    body = PAGES["meta"][16:24] + (FORMAT_VERSION + 1).to_bytes(4, "little") + PAGES["meta"][28:]
    page = seal_page(PageType.META, 0, 0, 0, body[: PAGE_SIZE - 16])
    with pytest.raises(UnsupportedFormatError, match="newer"):
        decode_meta(page)
