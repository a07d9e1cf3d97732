"""The IDENTITY file: which format version and engine wrote a database directory.

See docs/format/files.md.

    IDENTITY := json_object, "\\n"
    json_object has: "magic": "aiokv", "format_version": u32, "engine": "lsm" | "btree",
                     "db_id": 32 hex digits, "checksum": 16 hex digits (xxh3_64 of the object
                     serialized, keys sorted, without "checksum")

It is written before anything else in a new directory, by write-temp, sync, rename, sync-dir,
so a directory either has a whole IDENTITY or none.  Unknown keys are ignored (a later format
version may add keys without a bump as long as older readers stay correct).
"""

from __future__ import annotations

import os
from typing import Any, Final

import orjson
import xxhash

from aiokv.engine.fs import FileSystem, join
from aiokv.errors import CorruptionError, InvalidArgumentError, UnsupportedFormatError

IDENTITY: Final = "IDENTITY"
FORMAT_VERSION: Final = 1
_MAGIC: Final = "aiokv"


def _checksum(fields: dict[str, Any]) -> str:
    body = orjson.dumps(
        {k: v for k, v in fields.items() if k != "checksum"}, option=orjson.OPT_SORT_KEYS
    )
    return f"{xxhash.xxh3_64_intdigest(body):016x}"


def encode_identity(engine: str, db_id: str) -> bytes:
    fields: dict[str, Any] = {
        "magic": _MAGIC,
        "format_version": FORMAT_VERSION,
        "engine": engine,
        "db_id": db_id,
    }
    fields["checksum"] = _checksum(fields)
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS) + b"\n"


def decode_identity(path: str, data: bytes) -> dict[str, Any]:
    """Parses and checks an IDENTITY file.

    Raises:
        CorruptionError: the bytes are not a whole, checksummed IDENTITY.
        UnsupportedFormatError: written by a newer format version.
    """
    try:
        fields = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise CorruptionError(path, 0, f"IDENTITY is not JSON: {e}") from None
    if not isinstance(fields, dict) or fields.get("magic") != _MAGIC:
        raise CorruptionError(path, 0, "IDENTITY lacks the aiokv magic")
    if fields.get("checksum") != _checksum(fields):
        raise CorruptionError(path, 0, "IDENTITY checksum mismatch")
    version = fields.get("format_version")
    if type(version) is not int or version < 1:
        raise CorruptionError(path, 0, f"IDENTITY has a bad format_version {version!r}")
    if version > FORMAT_VERSION:
        raise UnsupportedFormatError(
            f"{path}: the store was written by format version {version}; this build reads "
            f"version {FORMAT_VERSION} and older; upgrade aiokv to open it"
        )
    return fields


def ensure_identity(fs: FileSystem, dirpath: str, engine: str, *, error_if_exists: bool) -> str:
    """Reads the IDENTITY of `dirpath`, creating it in a directory new to aiokv.  Blocking.

    Returns the database id.
    """
    path = join(dirpath, IDENTITY)
    if fs.exists(path):
        if error_if_exists:
            raise InvalidArgumentError(f"{dirpath} already holds a store (error_if_exists=True)")
        fields = decode_identity(path, fs.read_file(path))
        if fields.get("engine") != engine:
            raise InvalidArgumentError(
                f"{dirpath} holds a {fields.get('engine')!r} store; open it with "
                f"engine={fields.get('engine')!r}, not {engine!r}"
            )
        return str(fields["db_id"])
    strangers = [n for n in fs.list_dir(dirpath) if n not in ("LOCK", IDENTITY + ".tmp")]
    if strangers:
        raise InvalidArgumentError(
            f"{dirpath} is not empty and holds no aiokv store (found {strangers[0]!r}); "
            "give a new or empty directory"
        )
    db_id = os.urandom(16).hex()
    tmp = path + ".tmp"
    f = fs.create(tmp)
    try:
        f.append(encode_identity(engine, db_id))
        f.sync()
    finally:
        f.close()
    fs.rename(tmp, path)
    fs.sync_dir(dirpath)
    return db_id
