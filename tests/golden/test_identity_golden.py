"""The IDENTITY example of docs/format/files.md, executed: its bytes and its checksum."""

from __future__ import annotations

import re

import orjson
import xxhash

from aiokv.engine.identity import FORMAT_VERSION, decode_identity, encode_identity
from tests.golden.docblocks import fenced, golden_block, read_doc

DOC = read_doc("files.md")
FILE = fenced(golden_block(DOC, "identity-file")).encode()  # the fence keeps the final newline
CHECKSUM_INPUT = fenced(golden_block(DOC, "identity-checksum-input")).rstrip("\n").encode()
FIELDS = orjson.loads(FILE)


def test_encoding_the_documented_fields_gives_the_documented_file():
    assert FILE.endswith(b"}\n")
    assert encode_identity(FIELDS["engine"], FIELDS["db_id"]) == FILE


def test_decoding_the_documented_file_gives_its_fields():
    fields = decode_identity("db/IDENTITY", FILE)
    assert fields == FIELDS
    assert fields["magic"] == "aiokv"
    assert fields["format_version"] == FORMAT_VERSION


def test_documented_checksum_is_xxh3_of_the_documented_input():
    assert FIELDS["checksum"] == f"{xxhash.xxh3_64_intdigest(CHECKSUM_INPUT):016x}"
    (prose,) = re.findall(r"Its `xxh3_64` is `0x([0-9a-f]{16})`", DOC)
    assert prose == FIELDS["checksum"]


def test_documented_checksum_input_is_the_file_without_its_checksum():
    rest = {k: v for k, v in FIELDS.items() if k != "checksum"}
    assert orjson.dumps(rest, option=orjson.OPT_SORT_KEYS) == CHECKSUM_INPUT


def test_documented_sizes_are_the_real_sizes():
    (input_size,) = re.findall(r"checksum input, (\d+) bytes", DOC)
    (file_size,) = re.findall(r"The file, (\d+) bytes", DOC)
    assert (int(input_size), int(file_size)) == (len(CHECKSUM_INPUT), len(FILE))
