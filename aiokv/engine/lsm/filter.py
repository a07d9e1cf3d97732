"""Per-table filters: the ids on disk, the builder factory and the decoder.  See docs/format/sst.md.

    filter := kind: u8, version: u8, the rest as the kind says     (an absent filter is b"")

    kind 1: blocked Bloom (bloom.py), the default: one 64-byte block a key, 260-370 ns a
            query, 0.4 us a key to build; 10 bits a key give 1.08% false positives.
    kind 2: homogeneous Ribbon (ribbon.py): 7 bits a key give 0.95%, Bloom's rate in 30% less
            space, but 470-890 ns a query and 3-4 us a key to build.

A table's filter is only asked about keys inside the table's key range (the reader checks the
range first), but nothing here relies on it.  The filter block's checksum is the SST's job:
decode_filter checks the filter's own structure only, and raises FilterFormatError, which the
SST reader turns into a CorruptionError naming the file.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Final, Protocol

from aiokv.engine.steps import run_to_end
from aiokv.errors import InvalidArgumentError

# The filter id is stored in the filter's first byte and in the table's properties.
# On disk: never renumber or reuse.
FILTER_NONE: Final = 0
FILTER_BLOOM: Final = 1
FILTER_RIBBON: Final = 2

FILTER_KINDS: Final = ("bloom", "ribbon", "none")  # values of the `filter` option
MAX_BITS_PER_KEY: Final = 32  # the option's bound; 32 bits a key is already about 5e-6 (Bloom)


class FilterFormatError(ValueError):
    """A filter's bytes are not a filter this build can read (bad or unknown header, bad size)."""


class FilterBuilder(Protocol):
    """Collects a table's keys and builds its filter in bounded steps."""

    kind: int

    def add_keys(self, keys: list[bytes]) -> None: ...

    def finish(self) -> Generator[None, None, bytes]: ...


class FilterReader(Protocol):
    """A decoded filter: may_contain(key) is False when the key is certainly absent."""

    def may_contain(self, key: bytes) -> bool: ...


def new_filter_builder(kind: str, bits_per_key: int) -> FilterBuilder | None:
    """A builder for filter `kind` ("bloom", "ribbon" or "none": None).

    Raises:
        InvalidArgumentError: an unknown kind, or bits_per_key outside 1 to 32.

    >>> new_filter_builder("bloom", 10).kind, new_filter_builder("none", 10)
    (1, None)
    """
    if kind not in FILTER_KINDS:
        raise InvalidArgumentError(f"filter must be one of {FILTER_KINDS}, not {kind!r}")
    if type(bits_per_key) is not int or not 1 <= bits_per_key <= MAX_BITS_PER_KEY:
        raise InvalidArgumentError(f"bits_per_key must be an int from 1 to 32: {bits_per_key!r}")
    # Imported here: bloom.py and ribbon.py import this module's ids and error.
    if kind == "bloom":
        from aiokv.engine.lsm.bloom import BloomBuilder

        return BloomBuilder(bits_per_key)
    if kind == "ribbon":
        from aiokv.engine.lsm.ribbon import RibbonBuilder

        return RibbonBuilder(bits_per_key)
    return None


def decode_filter(data: bytes) -> FilterReader | None:
    """Decodes a filter's bytes (as a builder's finish() returned them); b"" gives None.

    Raises:
        FilterFormatError: the bytes are not a filter this build can read.

    >>> decode_filter(b"") is None
    True
    >>> f = decode_filter(finish_sync(new_filter_builder("ribbon", 7)))
    >>> f.may_contain(b"anything")
    False
    """
    if not data:
        return None
    kind = data[0]
    if kind == FILTER_BLOOM:
        from aiokv.engine.lsm.bloom import decode_bloom

        return decode_bloom(data)
    if kind == FILTER_RIBBON:
        from aiokv.engine.lsm.ribbon import decode_ribbon

        return decode_ribbon(data)
    raise FilterFormatError(f"unknown filter kind {kind}")


def finish_sync(builder: FilterBuilder) -> bytes:
    """Drives builder.finish() to its end and returns the filter's bytes (tests, small tables)."""
    return run_to_end(builder.finish())
