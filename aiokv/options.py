"""Database options: one frozen dataclass, checked once at open."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokv.engine.fs import FileSystem
from aiokv.errors import InvalidArgumentError, InvalidTypeError

ENGINES = ("lsm",)  # "btree" arrives with issue 5
KiB = 1024
MiB = 1024 * KiB


@dataclasses.dataclass(frozen=True)
class Options:
    """What `aiokv.open(path, **options)` accepts.

    Attributes:
        max_key_size: largest key in bytes (1 to 1 MiB).
        max_value_size: largest value in bytes (up to 1 GiB; a WAL record holds at most 4 GiB).
        wal_segment_size: a WAL segment is sealed and a new one started past this many bytes.
        group_commit_size: the group committer takes queued batches up to this many bytes into
            one WAL record (a larger single batch still goes alone).
        buffered_flush_ms: how long a `buffered=True` write may wait in memory before its bytes
            are handed to the OS.
        io_threads: size of the database's thread pool for syncs and file creation.
        create_if_missing: create the directory and the store when absent.
        error_if_exists: refuse to open a directory that already holds a store.
        fs: the FileSystem to use (default: the real one; MemFileSystem for tests).
        clock: seconds since the epoch, as `time.time`; TTLs are measured with it.
        write_buffer_size: a memtable past this many bytes is frozen and flushed to an L0 table.
        max_write_buffer_number: memtables (active and frozen) before writers slow down; at
            twice this many they wait for a flush.
        block_size: target bytes of an SST data block.
        block_cache_size: bytes of decoded blocks kept in memory (CLOCK, an LRU approximation).
        max_open_files: tables kept open (mapped) at once; others are reopened on demand.
        filter: per-table filter, "bloom" (default), "ribbon" (about 30% smaller for the same
            false-positive rate, slower to build) or "none".
        bloom_bits_per_key: filter bits per key (10: about 1% false positives).
        target_file_size: compaction cuts its output tables near this size.
        max_bytes_for_level_base: target size of the first level below L0.
        level_multiplier: each level's target is this many times the one above.
        l0_compaction_trigger: L0 tables that start a compaction into the level below.
        l0_slowdown_trigger: L0 tables at which writers are slowed down.
        l0_stop_trigger: L0 tables at which writers wait for compaction.
        compaction: the compaction style ("leveled").
        compaction_process: run compactions in a worker process, on another core (real file
            system only); False runs them in the event loop in cooperative slices.
    """

    max_key_size: int = 16 * KiB
    max_value_size: int = 64 * MiB
    wal_segment_size: int = 64 * MiB
    group_commit_size: int = 4 * MiB
    buffered_flush_ms: float = 100.0
    io_threads: int = 2
    create_if_missing: bool = True
    error_if_exists: bool = False
    fs: FileSystem | None = None
    clock: Callable[[], float] = time.time
    write_buffer_size: int = 64 * MiB
    max_write_buffer_number: int = 3
    block_size: int = 4 * KiB
    block_cache_size: int = 256 * MiB
    max_open_files: int = 1000
    filter: str = "bloom"
    bloom_bits_per_key: int = 10
    target_file_size: int = 64 * MiB
    max_bytes_for_level_base: int = 256 * MiB
    level_multiplier: int = 10
    l0_compaction_trigger: int = 4
    l0_slowdown_trigger: int = 20
    l0_stop_trigger: int = 36
    compaction: str = "leveled"
    compaction_process: bool = True


_INT_BOUNDS: dict[str, tuple[int, int]] = {
    "max_key_size": (1, MiB),
    "max_value_size": (0, 1024 * MiB),
    "wal_segment_size": (64 * KiB, 1 << 31),
    "group_commit_size": (4 * KiB, 1 << 30),
    "io_threads": (1, 64),
    "write_buffer_size": (16 * KiB, 1 << 32),
    "max_write_buffer_number": (2, 64),
    "block_size": (256, 4 * MiB),
    "block_cache_size": (0, 1 << 40),
    "max_open_files": (16, 1 << 20),
    "bloom_bits_per_key": (1, 32),
    "target_file_size": (16 * KiB, 1 << 34),
    "max_bytes_for_level_base": (64 * KiB, 1 << 40),
    "level_multiplier": (2, 100),
    "l0_compaction_trigger": (1, 1000),
    "l0_slowdown_trigger": (1, 1000),
    "l0_stop_trigger": (1, 1000),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "filter": ("bloom", "ribbon", "none"),
    "compaction": ("leveled",),
}
_BOOLS = ("create_if_missing", "error_if_exists", "compaction_process")
_L0_TRIGGERS = ("l0_compaction_trigger", "l0_slowdown_trigger", "l0_stop_trigger")
_FIELDS = tuple(f.name for f in dataclasses.fields(Options))


def build_options(given: Mapping[str, Any]) -> Options:
    """Checks keyword options and returns them as Options.

    Raises:
        InvalidArgumentError: an unknown option or a value out of range.
        InvalidTypeError: a value of the wrong type.
    """
    unknown = sorted(set(given) - set(_FIELDS))
    if unknown:
        raise InvalidArgumentError(
            f"unknown option(s) {', '.join(unknown)}; known options: {', '.join(_FIELDS)}"
        )
    for name, (lo, hi) in _INT_BOUNDS.items():
        if name in given:
            value = given[name]
            if type(value) is not int:
                raise InvalidTypeError(f"option {name} must be an int, not {type(value).__name__}")
            if not lo <= value <= hi:
                raise InvalidArgumentError(f"option {name}={value} is out of range [{lo}, {hi}]")
    for name in _BOOLS:
        if name in given and type(given[name]) is not bool:
            raise InvalidTypeError(f"option {name} must be a bool")
    if "buffered_flush_ms" in given:
        ms = given["buffered_flush_ms"]
        if isinstance(ms, bool) or not isinstance(ms, int | float):
            raise InvalidTypeError("option buffered_flush_ms must be a number")
        if not (math.isfinite(ms) and 0 < ms <= 60_000):
            raise InvalidArgumentError("option buffered_flush_ms must be in (0, 60000]")
    for name, choices in _CHOICES.items():
        if name in given and given[name] not in choices:
            raise InvalidArgumentError(
                f"option {name} must be one of {choices}, not {given[name]!r}"
            )
    trig = [given.get(n, getattr(Options, n)) for n in _L0_TRIGGERS]
    if not trig[0] <= trig[1] <= trig[2]:
        raise InvalidArgumentError(
            "options must satisfy l0_compaction_trigger <= l0_slowdown_trigger <= l0_stop_trigger"
        )
    if "clock" in given and not callable(given["clock"]):
        raise InvalidTypeError("option clock must be callable, like time.time")
    fs = given.get("fs")
    if fs is not None and not all(
        callable(getattr(fs, m, None)) for m in ("create", "read_file", "lock", "sync_dir")
    ):
        raise InvalidTypeError("option fs must implement the aiokv FileSystem protocol")
    return Options(**given)
