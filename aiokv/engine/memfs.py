"""An in-memory FileSystem that knows what is durable, for crash tests and in-memory stores.

The model, close to what a journaling file system (ext4, data=ordered) promises:

1. A file's content is durable up to its last `sync`.  Appends, writes at an offset and
   truncations since then are pending, in order.
2. A directory's entries (creations, renames, removals of its files) are durable up to its last
   `sync_dir`.  Entry operations since then are pending, in order; a crash keeps a prefix of them
   (the journal commits metadata in order).  Syncing a file does not make its entry durable.
3. Directories themselves are durable once made (the engines make a directory once, up front).

`crash_clone(mode)` returns a new MemFileSystem holding what a power cut could leave:

- `DROP_UNSYNCED`: every pending byte and entry operation is lost.
- `TORN_TAIL`: each file keeps a random prefix of its pending writes, the last one cut at a
  random byte; each directory keeps a random prefix of its pending entry operations.
- `RANDOM_SUBSET`: each file keeps a random subset of its pending writes (pages written back out
  of order; lost ones read as zeros where a later kept write extends the file).

`fault`, when set, is called as `fault(op, path)` before every mutating operation and may raise
an `OSError` to inject an I/O failure (op is one of create, append, sync, truncate, rename,
remove, sync_dir, mkdir).  Every method is thread-safe.
"""

from __future__ import annotations

import enum
import errno
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokv.engine.fs import FileLock, MappedFile, WritableFile


class CrashMode(enum.Enum):
    """What a simulated power cut keeps of the data that was not synced."""

    DROP_UNSYNCED = "drop"
    TORN_TAIL = "torn"
    RANDOM_SUBSET = "subset"


@dataclass(eq=False)
class _Inode:
    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""
    # Pending changes since the last sync, in order: (offset, bytes) for an append, and
    # (size, None) for a truncation (which extends with zeros, as ftruncate does).
    pending: list[tuple[int, bytes | None]] = field(default_factory=list)


@dataclass
class _Dir:
    entries: dict[str, _Inode] = field(default_factory=dict)
    durable: dict[str, _Inode] = field(default_factory=dict)
    # Entry operations since the last sync_dir, in order: (name, inode) sets an entry and
    # (name, None) removes one.  A rename is a set followed by a remove.
    pending: list[tuple[str, _Inode | None]] = field(default_factory=list)


def _split(path: str) -> tuple[str, str]:
    head, _, name = path.rstrip("/").rpartition("/")
    return head or "/", name


def _norm(path: str) -> str:
    return path.rstrip("/") or "/"


def _enoent(path: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, "no such file or directory", path)


class _MemFile:
    __slots__ = ("_closed", "_fs", "_inode", "_path")

    def __init__(self, fs: MemFileSystem, path: str, inode: _Inode) -> None:
        self._fs = fs
        self._path = path
        self._inode = inode
        self._closed = False

    @property
    def size(self) -> int:
        return len(self._inode.data)

    def _check(self, op: str) -> None:
        if self._closed:
            raise OSError(errno.EBADF, "file is closed", self._path)
        self._fs._fault(op, self._path)

    def append(self, data: bytes) -> None:
        with self._fs._mutex:
            self._check("append")
            inode = self._inode
            inode.pending.append((len(inode.data), bytes(data)))
            inode.data += data

    def write_at(self, offset: int, data: bytes) -> None:
        with self._fs._mutex:
            self._check("append")
            inode = self._inode
            inode.pending.append((offset, bytes(data)))
            if len(inode.data) < offset:
                inode.data += bytes(offset - len(inode.data))
            inode.data[offset : offset + len(data)] = data

    def sync(self) -> None:
        with self._fs._mutex:
            self._check("sync")
            self._inode.durable = bytes(self._inode.data)
            self._inode.pending.clear()
            self._fs.sync_count += 1

    def truncate(self, size: int) -> None:
        with self._fs._mutex:
            self._check("truncate")
            inode = self._inode
            _set_length(inode.data, size)
            inode.pending.append((size, None))

    def close(self) -> None:
        self._closed = True


class _MemLock:
    __slots__ = ("_fs", "_path")

    def __init__(self, fs: MemFileSystem, path: str) -> None:
        self._fs = fs
        self._path = path

    def release(self) -> None:
        with self._fs._mutex:
            self._fs._locks.discard(self._path)


class MemFileSystem:
    """A FileSystem in memory that tracks what was synced.  See the module docstring."""

    def __init__(self) -> None:
        self._mutex = threading.RLock()
        self._dirs: dict[str, _Dir] = {"/": _Dir()}
        self._locks: set[str] = set()
        self.fault: Callable[[str, str], None] | None = None
        self.sync_count = 0

    def _fault(self, op: str, path: str) -> None:
        if self.fault is not None:
            self.fault(op, path)

    def _parent(self, path: str) -> tuple[_Dir, str]:
        head, name = _split(_norm(path))
        d = self._dirs.get(head)
        if d is None:
            raise _enoent(head)
        return d, name

    def _inode(self, path: str) -> _Inode:
        d, name = self._parent(path)
        inode = d.entries.get(name)
        if inode is None:
            raise _enoent(path)
        return inode

    # -- FileSystem -------------------------------------------------------------------------

    def create(self, path: str) -> WritableFile:
        with self._mutex:
            self._fault("create", path)
            d, name = self._parent(path)
            if _norm(path) in self._dirs:
                raise IsADirectoryError(errno.EISDIR, "is a directory", path)
            inode = _Inode()
            d.entries[name] = inode
            d.pending.append((name, inode))
            return _MemFile(self, path, inode)

    def open_append(self, path: str) -> WritableFile:
        with self._mutex:
            return _MemFile(self, path, self._inode(path))

    def open_write(self, path: str) -> WritableFile:
        return self.open_append(path)  # a handle here honours write_at offsets either way

    def read_file(self, path: str) -> bytes:
        with self._mutex:
            return bytes(self._inode(path).data)

    def file_size(self, path: str) -> int:
        with self._mutex:
            return len(self._inode(path).data)

    def map_file(self, path: str) -> MappedFile:
        with self._mutex:
            return MappedFile(bytes(self._inode(path).data))

    def exists(self, path: str) -> bool:
        with self._mutex:
            if _norm(path) in self._dirs:
                return True
            head, name = _split(_norm(path))
            d = self._dirs.get(head)
            return d is not None and name in d.entries

    def is_dir(self, path: str) -> bool:
        with self._mutex:
            return _norm(path) in self._dirs

    def list_dir(self, path: str) -> list[str]:
        with self._mutex:
            p = _norm(path)
            d = self._dirs.get(p)
            if d is None:
                raise _enoent(path)
            prefix = p.rstrip("/") + "/"
            subdirs = [q[len(prefix) :] for q in self._dirs if q.startswith(prefix) and q != p]
            return sorted([*d.entries, *(s for s in subdirs if "/" not in s)])

    def mkdir(self, path: str) -> None:
        with self._mutex:
            self._fault("mkdir", path)
            parts = [x for x in _norm(path).split("/") if x]
            cur = ""
            for part in parts:
                cur += "/" + part
                head, name = _split(cur)
                if name in self._dirs[head].entries:
                    raise FileExistsError(errno.EEXIST, "a file is in the way", cur)
                self._dirs.setdefault(cur, _Dir())

    def remove(self, path: str) -> None:
        with self._mutex:
            self._fault("remove", path)
            d, name = self._parent(path)
            if name not in d.entries:
                raise _enoent(path)
            del d.entries[name]
            d.pending.append((name, None))

    def rename(self, src: str, dst: str) -> None:
        with self._mutex:
            self._fault("rename", src)
            sd, sname = self._parent(src)
            dd, dname = self._parent(dst)
            inode = sd.entries.get(sname)
            if inode is None:
                raise _enoent(src)
            if sd is dd and sname == dname:
                return  # like os.replace(p, p): nothing changes
            dd.entries[dname] = inode
            dd.pending.append((dname, inode))
            del sd.entries[sname]
            sd.pending.append((sname, None))

    def sync_dir(self, path: str) -> None:
        with self._mutex:
            self._fault("sync_dir", path)
            d = self._dirs.get(_norm(path))
            if d is None:
                raise _enoent(path)
            d.durable = dict(d.entries)
            d.pending.clear()
            self.sync_count += 1

    def lock(self, path: str) -> FileLock:
        with self._mutex:
            p = _norm(path)
            if p in self._locks:
                raise BlockingIOError(errno.EWOULDBLOCK, "lock is held", path)
            d, name = self._parent(p)
            if name not in d.entries:
                inode = _Inode()
                d.entries[name] = inode
                d.pending.append((name, inode))
            self._locks.add(p)
            return _MemLock(self, p)

    # -- crash images -----------------------------------------------------------------------

    def crash_clone(
        self, mode: CrashMode = CrashMode.DROP_UNSYNCED, rng: random.Random | None = None
    ) -> MemFileSystem:
        """Returns what a power cut at this instant could leave on disk, all of it synced.

        Args:
            mode: what is kept of unsynced data; see the module docstring.
            rng: the source of the random choices (seed it to reproduce an image).
        """
        rng = rng or random.Random()
        with self._mutex:
            clone = MemFileSystem()
            contents: dict[int, bytes] = {}
            for path, d in self._dirs.items():
                entries = dict(d.durable)
                keep = 0 if mode is CrashMode.DROP_UNSYNCED else rng.randint(0, len(d.pending))
                for name, inode in d.pending[:keep]:
                    if inode is None:
                        entries.pop(name, None)
                    else:
                        entries[name] = inode
                cd = _Dir()
                for name, inode in entries.items():
                    if id(inode) not in contents:
                        contents[id(inode)] = _crash_content(inode, mode, rng)
                    content = contents[id(inode)]
                    cd.entries[name] = _Inode(bytearray(content), content)
                cd.durable = dict(cd.entries)
                clone._dirs[path] = cd
            return clone


def _crash_content(inode: _Inode, mode: CrashMode, rng: random.Random) -> bytes:
    data = bytearray(inode.durable)
    pending = inode.pending
    if mode is CrashMode.DROP_UNSYNCED or not pending:
        return bytes(data)
    if mode is CrashMode.TORN_TAIL:
        keep = rng.randint(0, len(pending))
        chosen = list(pending[:keep])
        if chosen and chosen[-1][1] is not None and rng.random() < 0.5:
            offset, chunk = chosen[-1]
            assert chunk is not None
            chosen[-1] = (offset, chunk[: rng.randint(0, len(chunk))])
    else:
        chosen = [p for p in pending if p[1] is None or rng.random() < 0.5]
    for offset, chunk in chosen:
        if chunk is None:
            _set_length(data, offset)
            continue
        if len(data) < offset:
            data += bytes(offset - len(data))
        data[offset : offset + len(chunk)] = chunk
    return bytes(data)


def _set_length(data: bytearray, size: int) -> None:
    """ftruncate: cuts `data` to `size` bytes, or extends it with zeros."""
    if size <= len(data):
        del data[size:]
    else:
        data += bytes(size - len(data))
