"""The worked example of a MERGE cell's value in docs/format/btree.md, executed."""

from __future__ import annotations

import pytest

from aiokv.engine.btree.chain import decode_chain, encode_chain
from aiokv.errors import CorruptionError
from tests.golden.docblocks import check_dump_covers, fenced, golden_block, hex_dump, read_doc

VERSIONS = [(2, b"+1", 0, 0), (4, b"7", 0, 1_700_000_000_000)]


def dump():
    return hex_dump(fenced(golden_block(read_doc("btree.md"), "btree-merge-chain")))


def test_the_documented_bytes_are_what_encode_chain_writes():
    lines = dump()
    data = b"".join(line.data for line in lines)
    check_dump_covers(lines, data)
    assert encode_chain(VERSIONS) == data
    assert decode_chain(data, seq=7) == [(k, v, 7, x) for k, v, _, x in VERSIONS]


@pytest.mark.parametrize("cut", [0, 5, 13, 14, 28])
def test_a_chain_cut_short_or_empty_is_corruption(cut):
    data = encode_chain(VERSIONS)[:cut]
    with pytest.raises(CorruptionError, match="merge chain"):
        decode_chain(data, 0, "/db/btree.pages", 8192)
