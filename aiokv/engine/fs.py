"""The FileSystem seam: every file access of the engines goes through this protocol.

Two implementations: `OsFileSystem` (the real disk) and `MemFileSystem` (memfs.py), which knows
which bytes and directory entries were synced and can produce what a power cut would leave.

Concurrency contract: every method is synchronous and may block.  The engine calls cheap ones
(small appends, reads of small files) inline on the event loop and the ones that can take long
(sync, file creation, large writes) from its own bounded thread pool, so implementations must be
safe to call from several threads at once.

Errors: implementations raise `OSError` (with an errno) and nothing else; the engine turns it into
`StorageIOError` or poisons the database.  Paths are `str`, joined with `/`.
"""

from __future__ import annotations

import fcntl
import mmap
import os
from typing import Protocol


class WritableFile(Protocol):
    """An append-only file handle."""

    @property
    def size(self) -> int:
        """Bytes written through this handle plus what the file held when opened."""
        ...

    def append(self, data: bytes) -> None:
        """Appends all of `data` (partial writes are retried until done or an error)."""
        ...

    def write_at(self, offset: int, data: bytes) -> None:
        """Writes all of `data` at `offset` (pwrite), growing the file if it ends past it;
        `size` follows the end of the file.  For page files (the B+Tree); a handle is used
        for appends or for write_at, not both."""
        ...

    def sync(self) -> None:
        """Makes every appended byte durable (fdatasync)."""
        ...

    def truncate(self, size: int) -> None:
        """Cuts the file to `size` bytes; later appends continue from there."""
        ...

    def close(self) -> None:
        """Closes the handle; idempotent.  Does not sync."""
        ...


class ReadBuffer(Protocol):
    """Read-only bytes of a whole file: `len()` and slicing to `bytes` (bytes or mmap)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: slice, /) -> bytes: ...


class MappedFile:
    """A whole file readable in memory: `buf` is an mmap (real disk) or bytes (in memory).

    Slices of `buf` are copies, so nothing read from it outlives `close()`.
    """

    __slots__ = ("_close", "buf")

    def __init__(self, buf: ReadBuffer, close: object = None) -> None:
        self.buf = buf
        self._close = close

    def close(self) -> None:
        """Unmaps the file; idempotent."""
        close, self._close = self._close, None
        if callable(close):
            close()


class FileLock(Protocol):
    """An exclusive lock on a file, held until released."""

    def release(self) -> None:
        """Releases the lock; idempotent."""
        ...


class FileSystem(Protocol):
    """What the engines may do to files and directories."""

    def create(self, path: str) -> WritableFile:
        """Creates (or truncates) a file and opens it for appending."""
        ...

    def open_append(self, path: str) -> WritableFile:
        """Opens an existing file for appending at its end."""
        ...

    def open_write(self, path: str) -> WritableFile:
        """Opens an existing file for `write_at` (not for appends: no O_APPEND)."""
        ...

    def read_file(self, path: str) -> bytes:
        """Returns the whole content of a file."""
        ...

    def file_size(self, path: str) -> int:
        """Returns the size of a file in bytes."""
        ...

    def map_file(self, path: str) -> MappedFile:
        """Maps a whole (immutable) file for reading: reads then cost no system call."""
        ...

    def exists(self, path: str) -> bool:
        """True if a file or directory is at `path`."""
        ...

    def is_dir(self, path: str) -> bool:
        """True if a directory is at `path`."""
        ...

    def list_dir(self, path: str) -> list[str]:
        """Names (not paths) of the entries of a directory, sorted."""
        ...

    def mkdir(self, path: str) -> None:
        """Creates a directory and its missing parents; no error if it exists."""
        ...

    def remove(self, path: str) -> None:
        """Removes a file."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Atomically replaces `dst` with `src` (durable after `sync_dir`)."""
        ...

    def sync_dir(self, path: str) -> None:
        """Makes the entries of a directory (creations, renames, removals) durable."""
        ...

    def lock(self, path: str) -> FileLock:
        """Takes an exclusive lock on `path` (created if missing).

        Raises:
            BlockingIOError: another holder has it, in this process or another.
        """
        ...


def join(*parts: str) -> str:
    """Joins path parts with `/` (both file systems use POSIX paths)."""
    return "/".join(p.rstrip("/") if i == 0 else p.strip("/") for i, p in enumerate(parts) if p)


class _OsFile:
    __slots__ = ("_fd", "_size")

    def __init__(self, fd: int, size: int) -> None:
        self._fd = fd
        self._size = size

    @property
    def size(self) -> int:
        return self._size

    def append(self, data: bytes) -> None:
        n = os.write(self._fd, data)
        self._size += n
        if n < len(data):  # rare for a regular file: finish what a short write left
            view = memoryview(data)[n:]
            while view:
                n = os.write(self._fd, view)
                self._size += n
                view = view[n:]

    def write_at(self, offset: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.pwrite(self._fd, view, offset)
            offset += n
            view = view[n:]
        self._size = max(self._size, offset)

    def sync(self) -> None:
        os.fdatasync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)
        self._size = size

    def close(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)


class _OsLock:
    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class OsFileSystem:
    """The real file system.  Files are opened O_APPEND and written with unbuffered `os.write`."""

    def create(self, path: str) -> WritableFile:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o644
        )
        return _OsFile(fd, 0)

    def open_append(self, path: str) -> WritableFile:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        return _OsFile(fd, os.fstat(fd).st_size)

    def open_write(self, path: str) -> WritableFile:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        return _OsFile(fd, os.fstat(fd).st_size)

    def read_file(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def file_size(self, path: str) -> int:
        return os.stat(path).st_size

    def map_file(self, path: str) -> MappedFile:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if os.fstat(fd).st_size == 0:
                return MappedFile(b"")  # mmap refuses empty files
            m = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)  # the mapping keeps its own reference to the file
        return MappedFile(m, m.close)

    def exists(self, path: str) -> bool:
        return os.path.lexists(path)

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def list_dir(self, path: str) -> list[str]:
        return sorted(os.listdir(path))

    def mkdir(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)

    def remove(self, path: str) -> None:
        os.remove(path)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def sync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def lock(self, path: str) -> FileLock:
        # flock, not lockf: flock locks belong to the open file description, so a second open of
        # the same directory in this very process conflicts too (POSIX record locks would not).
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        return _OsLock(fd)
