"""Reads the machine-checked parts of docs/format/*.md: marked blocks, tables and hex dumps.

A golden block sits between `<!-- golden:NAME:begin -->` and `<!-- golden:NAME:end -->`.  It holds
either one fenced code block or one markdown table.  A hex dump line is
`offset  hex bytes  note`, the three columns separated by two or more spaces; lines starting with
`#` are headings.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

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
