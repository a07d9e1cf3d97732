"""The aiokv error hierarchy.  Every error aiokv raises on purpose is an `AiokvError`.

A missing key is `None`, never an exception.  Errors that describe bad input also derive from
the builtin a caller would expect (`ValueError`, `TypeError`), so generic handlers still work.
"""

from __future__ import annotations


class AiokvError(Exception):
    """Base of every error aiokv raises on purpose."""


class InvalidArgumentError(AiokvError, ValueError):
    """An argument has a wrong value: an empty or oversized key, an unknown option, ..."""


class InvalidTypeError(InvalidArgumentError, TypeError):
    """An argument has a wrong type (a key that is neither bytes nor str, ...)."""


class ClosedError(AiokvError):
    """The database (or snapshot, or batch) was used after it was closed."""


class LockedError(AiokvError):
    """Another open database (in this process or another) holds the directory's LOCK."""


class UnsupportedFormatError(AiokvError):
    """A file or directory was written by a format version or engine this build cannot read."""


class CorruptionError(AiokvError):
    """Stored bytes fail a checksum or a structural check.

    Attributes:
        path: the file that holds the bad bytes.
        offset: the byte offset in that file where the bad data starts.
        detail: what check failed.
    """

    def __init__(self, path: str, offset: int, detail: str) -> None:
        super().__init__(f"{path}: corrupt data at offset {offset}: {detail}")
        self.path = path
        self.offset = offset
        self.detail = detail


class StorageIOError(AiokvError, OSError):
    """The operating system failed a read, write, sync or rename the store needed."""

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        errno = getattr(cause, "errno", None)
        if errno is not None:
            super().__init__(errno, message)
        else:
            super().__init__(message)
        self.cause = cause

    def __str__(self) -> str:
        return self.args[-1] if self.args else "storage I/O error"


class BackgroundError(AiokvError):
    """The database is poisoned: an earlier write, sync or background task failed.

    Once raised, every later call raises it too; nothing after the failure was acknowledged.
    Close the database and reopen it (on a healthy disk) to recover.
    """

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"database is poisoned by an earlier failure: {cause!r}")
        self.cause = cause


class ColumnFamilyError(AiokvError):
    """A column family does not exist, already exists, or was dropped."""


class ConditionFailedError(AiokvError):
    """A conditional write found the store in another state than it required."""
