"""The B+Tree's page file on the FileSystem seam: mapped for reads, written page by page.

One file, `PAGES_FILE` in the database directory, of PAGE_SIZE pages (docs/format/btree.md).
Reads slice the mapping (an mmap on the real disk, a copy of the bytes on MemFileSystem), so
they never block on I/O once the page is cached by the OS.  A commit writes its pages with
`write_pages` and `sync` from the engine's thread pool, then the meta page the same way, then
`remap`s so that reads see pages past the old end (and, on MemFileSystem, rewritten ones).

Invariant: a page reachable from the newest published meta page is never written; the engine
only hands out pages that no reader can reach (engine.py, "Free pages").
"""

from __future__ import annotations

from aiokv.engine.btree.page_format import PAGE_SIZE
from aiokv.engine.fs import FileSystem, MappedFile, ReadBuffer, WritableFile

PAGES_FILE = "btree.pages"


class PageFile:
    """An open page file.  Methods that write or sync block: call them from the pool."""

    __slots__ = ("_map", "_out", "buf", "fs", "path")

    def __init__(self, fs: FileSystem, path: str, out: WritableFile) -> None:
        self.fs = fs
        self.path = path
        self._out = out
        self._map: MappedFile | None = None
        self.buf: ReadBuffer = b""
        self.remap()

    @classmethod
    def open(cls, fs: FileSystem, path: str) -> PageFile:
        return cls(fs, path, fs.open_write(path))

    @classmethod
    def create(cls, fs: FileSystem, path: str, pages: dict[int, bytes]) -> PageFile:
        """Creates the file holding `pages` 0..n-1 (synced); the caller syncs the directory."""
        out = fs.create(path)
        try:
            out.append(b"".join(pages[no] for no in range(len(pages))))
            out.sync()
        finally:
            out.close()
        return cls.open(fs, path)

    @property
    def page_count(self) -> int:
        return len(self.buf) // PAGE_SIZE

    @property
    def file_pages(self) -> int:
        """Pages the file holds now (the mapping may be older)."""
        return self._out.size // PAGE_SIZE

    def read(self, no: int) -> bytes:
        """Page `no` as bytes (a copy); b"" past the end of the mapping."""
        start = no * PAGE_SIZE
        return self.buf[start : start + PAGE_SIZE]

    def write_pages(self, pages: dict[int, bytes]) -> None:
        _write(self._out, pages)

    def sync(self) -> None:
        self._out.sync()

    def remap(self) -> None:
        old = self._map
        self._map = self.fs.map_file(self.path)
        self.buf = self._map.buf  # slices of an mmap are bytes: no view pins the mapping
        if old is not None:
            old.close()

    def truncate(self, pages: int) -> None:
        """Sets the file's length to `pages` pages: cuts free pages off its end, or extends
        it with zeros to pages a commit counts but did not write; remap afterwards."""
        self._out.truncate(pages * PAGE_SIZE)

    def close(self) -> None:
        self.buf = b""
        if self._map is not None:
            self._map.close()
            self._map = None
        self._out.close()


def _write(out: WritableFile, pages: dict[int, bytes]) -> None:
    """Writes pages in runs of consecutive numbers: one pwrite per run."""
    run: list[bytes] = []
    start = prev = -2
    for no in sorted(pages):
        if no != prev + 1 and run:
            out.write_at(start * PAGE_SIZE, b"".join(run))
            run = []
        if not run:
            start = no
        run.append(pages[no])
        prev = no
    if run:
        out.write_at(start * PAGE_SIZE, b"".join(run))
