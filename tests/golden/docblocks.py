"""Reads the machine-checked parts of docs/format/*.md: marked blocks, tables and hex dumps.

A golden block sits between `<!-- golden:NAME:begin -->` and `<!-- golden:NAME:end -->`.  It holds
either one fenced code block or one markdown table.  A hex dump line is
`offset  hex bytes  note`, the three columns separated by two or more spaces; lines starting with
`#` are headings.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import xxhash

FORMAT_DOCS = Path(__file__).resolve().parents[2] / "docs" / "format"


def read_doc(name: str) -> str:
    return (FORMAT_DOCS / name).read_text(encoding="utf-8")


def golden_block(doc: str, name: str) -> str:
    """The text between the begin and end markers of golden block `name`."""
    tag = re.escape(name)
    found = re.findall(rf"<!-- golden:{tag}:begin -->\n(.*?)<!-- golden:{tag}:end -->", doc, re.S)
    assert len(found) == 1, f"expected one golden block {name!r}, found {len(found)}"
    return str(found[0])


def fenced(block: str) -> str:
    """The content of the one fenced code block in `block`, without its fences."""
    found = re.findall(r"^```[\w-]*\n(.*?)^```$", block, re.S | re.M)
    assert len(found) == 1, "expected one fenced block"
    return str(found[0])


def table(block: str) -> list[dict[str, str]]:
    """The rows of the one markdown table in `block`, as dicts keyed by the header cells."""
    lines = [ln.strip() for ln in block.splitlines() if ln.strip().startswith("|")]
    cells = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    header, rule, *rows = cells
    assert all(set(c) <= set("-: ") for c in rule), "second table line must be the rule"
    assert all(len(r) == len(header) for r in rows), "ragged table"
    return [dict(zip(header, r, strict=True)) for r in rows]


class DumpLine(NamedTuple):
    offset: int
    data: bytes
    note: str


def hex_dump(text: str) -> list[DumpLine]:
    """The data lines of an annotated hex dump."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        offset, hexbytes, note = re.split(r"\s{2,}", line, maxsplit=2)
        out.append(DumpLine(int(offset), bytes.fromhex(hexbytes), note))
    return out


def flipped(data: bytes, at: int) -> bytes:
    """`data` with every bit of byte `at` inverted."""
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def check_dump_covers(dump: list[DumpLine], data: bytes) -> None:
    """Asserts the dump's lines follow each other with no gap and end where `data` ends."""
    at = 0
    for line in dump:
        assert line.offset == at, line
        at += len(line.data)
    assert at == len(data)


def check_note(line: DumpLine, data: bytes, enum_value: Callable[[str], int]) -> bool:
    """Checks what a dump line's note states about its bytes; False if it states nothing.

    Understood: `= 123` or `= 0x7b` (the little-endian value), `= 1 (NAME)` (also
    enum_value(NAME)), `xxh3_64(bytes a..b)` (the checksum of data[a..b]), and a trailing
    `"text"` (the bytes themselves).
    """
    checked = False
    value = int.from_bytes(line.data, "little")
    if m := re.search(r"=\s*(0x[0-9a-f]+|\d+)(?:\s*\((\w+)\))?$", line.note):
        assert value == int(m.group(1), 0), line
        if m.group(2):
            assert enum_value(m.group(2)) == value, line
        checked = True
    if m := re.search(r"xxh3_64\(bytes (\d+)\.\.(\d+)\)", line.note):
        assert value == xxhash.xxh3_64_intdigest(data[int(m[1]) : int(m[2]) + 1]), line
    if m := re.search(r'"(.*)"$', line.note):
        assert line.data == m.group(1).encode(), line
        checked = True
    return checked
