"""Database options: one frozen dataclass, checked once at open."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from aiokv.convert import check_ttl
from aiokv.engine.fs import FileSystem
from aiokv.errors import InvalidArgumentError, InvalidTypeError

ENGINES = ("lsm", "btree")
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
        compaction: the compaction style: "leveled" (the default), "tiered" (RocksDB's
            universal style: fewer rewrites, more space) or "fifo" (whole tables are dropped,
            oldest first, past `ttl` or `max_table_files_size`; nothing is rewritten).
            Fixed when the family is created.
        compaction_process: run compactions in a worker process, on another core (real file
            system only); False runs them in the event loop in cooperative slices.
        ttl: seconds after which every value written to the default family expires, unless
            the put gives its own ttl (None: values do not expire).
        merge_operator: the default family's MergeOperator (see aiokv.merge), for db.merge.
        max_table_files_size: FIFO only: tables are dropped, oldest first, past this many bytes.
        size_ratio: tiered only: a run joins a merge while its size is at most this many
            percent above the runs before it.
        max_size_amplification_percent: tiered only: every run is merged into one when the
            newer runs take more than this percentage of the oldest one's bytes.
        ttl_gc_interval: seconds between two passes of the background task that rewrites
            tables holding expired entries (and drops FIFO tables past their ttl).
        column_families: per-family options at open, by family name: families that do not
            exist yet are created with them; existing ones get these options (a different
            compaction style or merge operator name than they were created with is an error).
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
    ttl: float | None = None
    merge_operator: Any = None
    max_table_files_size: int = 1024 * MiB
    size_ratio: int = 1
    max_size_amplification_percent: int = 200
    ttl_gc_interval: float = 60.0
    column_families: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    # The names of the options the caller gave (persisted family options yield to these).
    given: frozenset[str] = dataclasses.field(default=frozenset(), repr=False, compare=False)


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
    "max_table_files_size": (16 * KiB, 1 << 50),
    "size_ratio": (0, 100),
    "max_size_amplification_percent": (1, 100_000),
}
_CHOICES: dict[str, tuple[str, ...]] = {
    "filter": ("bloom", "ribbon", "none"),
    "compaction": ("leveled", "tiered", "fifo"),
}
_FLOAT_BOUNDS: dict[str, tuple[float, float]] = {
    "buffered_flush_ms": (0, 60_000),
    "ttl_gc_interval": (0, 86_400),
}
_BOOLS = ("create_if_missing", "error_if_exists", "compaction_process")
_L0_TRIGGERS = ("l0_compaction_trigger", "l0_slowdown_trigger", "l0_stop_trigger")
_FIELDS = tuple(f.name for f in dataclasses.fields(Options) if f.name != "given")


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
    for name, (flo, fhi) in _FLOAT_BOUNDS.items():
        if name in given:
            x = given[name]
            if isinstance(x, bool) or not isinstance(x, int | float):
                raise InvalidTypeError(f"option {name} must be a number")
            if not (math.isfinite(x) and flo < x <= fhi):
                raise InvalidArgumentError(f"option {name} must be in ({flo}, {fhi}]")
    if given.get("ttl") is not None:
        check_ttl(given["ttl"])
    if given.get("merge_operator") is not None:
        from aiokv.merge import check_operator

        check_operator(given["merge_operator"])
    if "column_families" in given:
        _check_families(given["column_families"])
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
    out = dict(given)
    if out.get("ttl") is not None:
        out["ttl"] = float(out["ttl"])
    return Options(**out, given=frozenset(given))


def _check_families(families: Any) -> None:
    from aiokv.family_options import FAMILY_FIELDS, check_family_name

    if not isinstance(families, Mapping):
        raise InvalidTypeError("option column_families maps family names to option dicts")
    for name, opts in families.items():
        check_family_name(name)
        if not isinstance(opts, Mapping):
            raise InvalidTypeError(f"column_families[{name!r}] must be a dict of options")
        unknown = sorted(set(opts) - set(FAMILY_FIELDS))
        if unknown:
            raise InvalidArgumentError(
                f"column_families[{name!r}]: unknown family option(s) {', '.join(unknown)}; "
                f"family options: {', '.join(FAMILY_FIELDS)}"
            )
        build_options(opts)
