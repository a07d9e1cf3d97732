"""The IDENTITY file: round trip, checks, versions, and which directories a store may claim."""

from __future__ import annotations

import re

import orjson
import pytest
import xxhash

import aiokv
from aiokv.engine.fs import join
from aiokv.engine.identity import (
    FORMAT_VERSION,
    IDENTITY,
    decode_identity,
    encode_identity,
    ensure_identity,
)
from aiokv.engine.memfs import CrashMode, MemFileSystem
from aiokv.errors import CorruptionError, InvalidArgumentError, UnsupportedFormatError

DIR = "/db"
PATH = "/db/IDENTITY"
DB_ID = "00112233445566778899aabbccddeeff"


def _fs() -> MemFileSystem:
    fs = MemFileSystem()
    fs.mkdir(DIR)
    return fs


def _signed(fields: dict[str, object]) -> bytes:
    """An IDENTITY with any fields, carrying the checksum the reader expects."""
    body = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)
    fields = {**fields, "checksum": f"{xxhash.xxh3_64_intdigest(body):016x}"}
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS) + b"\n"


def _fields(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "magic": "aiokv",
        "format_version": FORMAT_VERSION,
        "engine": "lsm",
        "db_id": DB_ID,
    }
    return {**base, **changes}


def _write(fs: MemFileSystem, data: bytes) -> None:
    f = fs.create(PATH)
    f.append(data)
    f.sync()
    f.close()


# -- the codec ------------------------------------------------------------------------------------


def test_encode_then_decode_round_trips():
    fields = decode_identity(PATH, encode_identity("lsm", DB_ID))
    assert {k: fields[k] for k in ("magic", "format_version", "engine", "db_id")} == _fields()
    assert re.fullmatch(r"[0-9a-f]{16}", fields["checksum"])


def test_encoding_is_one_compact_line_with_sorted_keys():
    data = encode_identity("btree", DB_ID)
    assert data.endswith(b"}\n") and data.count(b"\n") == 1 and b" " not in data
    assert list(orjson.loads(data)) == sorted(orjson.loads(data))


def test_every_single_bit_flip_is_corruption():
    data = encode_identity("lsm", DB_ID)
    for at in range(len(data)):
        for bit in range(8):
            bad = data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1 :]
            with pytest.raises(CorruptionError) as info:
                decode_identity(PATH, bad)
            assert (info.value.path, info.value.offset) == (PATH, 0)


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (b"", "not JSON"),
        (b'{"magic": "aiokv"', "not JSON"),
        (b"[1, 2]\n", "magic"),
        (b'{"magic": "leveldb"}\n', "magic"),
        (b'{"magic": "aiokv", "format_version": 1}\n', "checksum"),
    ],
)
def test_bytes_that_are_not_an_identity_are_corruption(data, detail):
    with pytest.raises(CorruptionError, match=detail):
        decode_identity(PATH, data)


@pytest.mark.parametrize("version", [0, -1, "1", 1.0, True, None])
def test_format_version_that_is_not_a_positive_int_is_corruption(version):
    with pytest.raises(CorruptionError, match="format_version"):
        decode_identity(PATH, _signed(_fields(format_version=version)))


def test_newer_format_version_raises_unsupported_format_error():
    with pytest.raises(UnsupportedFormatError, match=f"{PATH}.*version {FORMAT_VERSION + 1}"):
        decode_identity(PATH, _signed(_fields(format_version=FORMAT_VERSION + 1)))


def test_unknown_keys_are_ignored_but_covered_by_the_checksum():
    data = _signed(_fields(added_later={"x": 1}))
    assert decode_identity(PATH, data)["added_later"] == {"x": 1}
    with pytest.raises(CorruptionError, match="checksum"):
        decode_identity(PATH, data.replace(b'"x":1', b'"x":2'))


def test_whitespace_and_key_order_do_not_matter_to_the_reader():
    fields = orjson.loads(encode_identity("lsm", DB_ID))
    reordered = "{\n  " + ",\n  ".join(f'"{k}": {orjson.dumps(v).decode()}' for k, v in
                                        reversed(fields.items())) + "\n}"  # fmt: skip
    assert decode_identity(PATH, reordered.encode()) == fields


# -- ensure_identity ------------------------------------------------------------------------------


def test_ensure_identity_writes_then_reads_back_the_same_id():
    fs = _fs()
    db_id = ensure_identity(fs, DIR, "lsm", error_if_exists=False)
    assert re.fullmatch(r"[0-9a-f]{32}", db_id)
    assert ensure_identity(fs, DIR, "lsm", error_if_exists=False) == db_id
    assert fs.list_dir(DIR) == [IDENTITY]


def test_each_new_directory_gets_its_own_id():
    ids = {ensure_identity(_fs(), DIR, "lsm", error_if_exists=False) for _ in range(3)}
    assert len(ids) == 3


def test_identity_is_durable_once_ensure_identity_returns():
    fs = _fs()
    db_id = ensure_identity(fs, DIR, "lsm", error_if_exists=False)
    image = fs.crash_clone(CrashMode.DROP_UNSYNCED)
    assert image.list_dir(DIR) == [IDENTITY]
    assert decode_identity(PATH, image.read_file(PATH))["db_id"] == db_id


def test_corrupted_identity_is_corruption():
    fs = _fs()
    ensure_identity(fs, DIR, "lsm", error_if_exists=False)
    _write(fs, fs.read_file(PATH).replace(b"lsm", b"lsn"))
    with pytest.raises(CorruptionError, match="checksum"):
        ensure_identity(fs, DIR, "lsm", error_if_exists=False)


def test_newer_identity_is_unsupported_format():
    fs = _fs()
    _write(fs, _signed(_fields(format_version=FORMAT_VERSION + 1)))
    with pytest.raises(UnsupportedFormatError):
        ensure_identity(fs, DIR, "lsm", error_if_exists=False)


def test_engine_mismatch_is_invalid_argument_naming_the_right_engine():
    fs = _fs()
    ensure_identity(fs, DIR, "btree", error_if_exists=False)
    with pytest.raises(InvalidArgumentError, match="engine='btree'"):
        ensure_identity(fs, DIR, "lsm", error_if_exists=False)


def test_error_if_exists_refuses_a_directory_with_an_identity():
    fs = _fs()
    ensure_identity(fs, DIR, "lsm", error_if_exists=False)
    with pytest.raises(InvalidArgumentError, match="error_if_exists"):
        ensure_identity(fs, DIR, "lsm", error_if_exists=True)


def test_non_empty_foreign_directory_is_refused_naming_a_file():
    fs = _fs()
    fs.create(join(DIR, "notes.txt")).close()
    with pytest.raises(InvalidArgumentError, match=r"notes\.txt"):
        ensure_identity(fs, DIR, "lsm", error_if_exists=False)
    assert not fs.exists(PATH)


def test_directory_of_segments_without_identity_is_refused():
    fs = _fs()
    fs.create(join(DIR, "000001.log")).close()
    with pytest.raises(InvalidArgumentError, match=r"000001\.log"):
        ensure_identity(fs, DIR, "lsm", error_if_exists=False)


def test_lock_and_a_leftover_temp_file_are_not_foreign():
    fs = _fs()
    fs.create(join(DIR, "LOCK")).close()
    f = fs.create(join(DIR, "IDENTITY.tmp"))
    f.append(b'{"half written')
    f.close()
    db_id = ensure_identity(fs, DIR, "lsm", error_if_exists=False)
    assert decode_identity(PATH, fs.read_file(PATH))["db_id"] == db_id
    assert fs.list_dir(DIR) == [IDENTITY, "LOCK"]


# -- through aiokv.open ---------------------------------------------------------------------------


async def test_open_refuses_a_foreign_directory():
    fs = _fs()
    fs.create(join(DIR, "data.csv")).close()
    with pytest.raises(InvalidArgumentError, match=r"data\.csv"):
        await aiokv.open(DIR, fs=fs)
    fs.remove(join(DIR, "data.csv"))
    async with aiokv.open(DIR, fs=fs) as db:  # the failed open let go of the lock
        await db.put(b"k", b"v")
    assert fs.exists(PATH)


async def test_open_with_a_corrupt_identity_fails_with_corruption():
    fs = MemFileSystem()
    async with aiokv.open(DIR, fs=fs):
        pass
    _write(fs, fs.read_file(PATH)[:-10])
    with pytest.raises(CorruptionError, match="IDENTITY"):
        await aiokv.open(DIR, fs=fs)
