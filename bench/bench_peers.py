"""Peer stores for db_bench.py, each behind the same small synchronous interface.

A peer is skipped when its module is not importable, so the bench runs with none of them.
Every peer does one store call per op from Python, as aiokv does one `await` per op; the
settings are chosen for the same durability as the aiokv write they stand beside:

- default writes (fill*, overwrite) reach the OS but are not synced (survive a process crash);
- fillsync writes are synced before the call returns (survive a power cut).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from functools import partial
from itertools import islice
from typing import Any

PEER_NAMES = ("lmdb", "plyvel", "rocksdict")
LMDB_MAP_SIZE = 16 << 30  # sparse; room for the full profile with B+Tree overhead


def available(wanted: list[str]) -> list[str]:
    return [n for n in wanted if importlib.util.find_spec(n) is not None]


class Peer:
    """One open store.  `put`, `get` and `get_many` are plain callables for tight loops."""

    name = ""
    config = ""
    put: Callable[[bytes, bytes], Any]
    get: Callable[[bytes], bytes | None]
    get_many: Callable[[list[bytes]], list[Any]]

    def __init__(self, path: str, sync: bool) -> None:
        raise NotImplementedError

    def seek(self, key: bytes, n: int) -> int:
        """Positions at the first key >= `key` and reads up to `n` entries; returns how many."""
        raise NotImplementedError

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class LmdbPeer(Peer):
    name = "lmdb"
    config = (
        "py-lmdb, one write txn per put and one read txn per get/get_many batch/seek; "
        "map_size 16 GiB, other options default (readahead, metasync on); sync=False for "
        "default-durability writes (the commit's pages reach the OS, no fsync), lmdb's own "
        "default sync=True (fsync at every commit) for fillsync"
    )

    def __init__(self, path: str, sync: bool) -> None:
        import lmdb

        self.env = env = lmdb.open(path, map_size=LMDB_MAP_SIZE, sync=sync)
        begin = env.begin

        def put(key: bytes, value: bytes) -> None:
            with begin(write=True) as txn:
                txn.put(key, value)

        def get(key: bytes) -> bytes | None:
            with begin() as txn:
                return txn.get(key)

        def get_many(keys: list[bytes]) -> list[Any]:
            with begin() as txn:
                g = txn.get
                return [g(k) for k in keys]

        self.put, self.get, self.get_many = put, get, get_many

    def long_txn_get(self) -> tuple[Callable[[bytes], Any], Callable[[], None]]:
        """`get` inside one read txn held for the whole run (no per-op txn), and its closer."""
        txn = self.env.begin()
        return txn.get, txn.abort

    def seek(self, key: bytes, n: int) -> int:
        with self.env.begin() as txn:
            cur = txn.cursor()
            if not cur.set_range(key):
                return 0
            return sum(1 for _ in islice(cur.iternext(), n))

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        with self.env.begin() as txn:
            yield from txn.cursor().iternext()

    def close(self) -> None:
        self.env.close()


class PlyvelPeer(Peer):
    name = "plyvel"
    config = (
        "plyvel (LevelDB), defaults (4 MiB write buffer, 8 MiB block cache, its compression "
        "default); put(sync=False) for default writes (the log record is written to the OS per "
        "put), put(sync=True) for fillsync; get_many is a list comprehension of get"
    )

    def __init__(self, path: str, sync: bool) -> None:
        import plyvel

        self.db = db = plyvel.DB(path, create_if_missing=True)
        self.put = partial(db.put, sync=True) if sync else db.put
        self.get = db.get
        get = db.get
        self.get_many = lambda keys: [get(k) for k in keys]

    def seek(self, key: bytes, n: int) -> int:
        it = self.db.iterator(start=key)
        try:
            return sum(1 for _ in islice(it, n))
        finally:
            it.close()

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        with self.db.iterator() as it:
            yield from it

    def close(self) -> None:
        self.db.close()


class RocksdictPeer(Peer):
    name = "rocksdict"
    config = (
        "rocksdict (RocksDB), Options(raw_mode=True) otherwise defaults; WAL on, "
        "WriteOptions.sync=False for default writes and sync=True for fillsync; get_many is "
        "RocksDB multi-get (db.get(list))"
    )

    def __init__(self, path: str, sync: bool) -> None:
        from rocksdict import Options, Rdict, WriteOptions

        self.db = db = Rdict(path, Options(raw_mode=True))
        wo = WriteOptions()
        wo.sync = sync
        db.set_write_options(wo)
        self.put = db.put
        self.get = db.get
        self.get_many = db.get

    def seek(self, key: bytes, n: int) -> int:
        it = self.db.iter()
        it.seek(key)
        count = 0
        while count < n and it.valid():
            it.key()
            it.value()
            it.next()
            count += 1
        del it
        return count

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self.db.items())

    def close(self) -> None:
        self.db.close()


_PEERS: dict[str, type[Peer]] = {"lmdb": LmdbPeer, "plyvel": PlyvelPeer, "rocksdict": RocksdictPeer}


def open_peer(name: str, root: str, tag: str, *, sync: bool = False) -> Peer:
    path = os.path.join(root, f"{name}-{tag}")
    os.makedirs(path, exist_ok=True)
    return _PEERS[name](path, sync)


def config(name: str) -> str:
    return _PEERS[name].config
