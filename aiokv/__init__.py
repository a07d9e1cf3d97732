"""aiokv: an asyncio-native embedded key-value store.

>>> import asyncio, aiokv
>>> async def demo():
...     async with aiokv.open(None) as db:                # None: in memory
...         await db.put(b"user:1", "Ada")
...         async with db.batch() as b:
...             b.put(b"user:2", b"Grace")
...             b.delete(b"user:1")
...         return [kv async for kv in db.scan(prefix=b"user:")]
>>> asyncio.run(demo())
[(b'user:2', b'Grace')]
"""

from aiokv import merge
from aiokv.batch import WriteBatch
from aiokv.db import DB, ColumnFamily, open
from aiokv.errors import (
    AiokvError,
    BackgroundError,
    ClosedError,
    ColumnFamilyError,
    ConditionFailedError,
    CorruptionError,
    InvalidArgumentError,
    InvalidTypeError,
    LockedError,
    StorageIOError,
    UnsupportedFormatError,
)
from aiokv.options import Options
from aiokv.snapshot import ScanIterator, Snapshot

__version__ = "0.1.0"

__all__ = [
    "DB",
    "AiokvError",
    "BackgroundError",
    "ClosedError",
    "ColumnFamily",
    "ColumnFamilyError",
    "ConditionFailedError",
    "CorruptionError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "LockedError",
    "Options",
    "ScanIterator",
    "Snapshot",
    "StorageIOError",
    "UnsupportedFormatError",
    "WriteBatch",
    "__version__",
    "merge",
    "open",
]
