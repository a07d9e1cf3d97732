"""Column family options: what each family persists in the manifest, and how open reconciles it.

A family's options live in its ADD_FAMILY manifest record as a UTF-8 JSON object (see
docs/format/families.md); the merge operator is stored by name.  At open, the persisted
options are the base and the options the caller gives override them, except two that are
fixed when the family is created: the compaction style (tables laid out for one style are not
valid input for another) and the merge operator's name (operands written for one operator
mean nothing to another).  Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Final

import orjson

from aiokv.errors import ColumnFamilyError, CorruptionError, InvalidArgumentError, InvalidTypeError
from aiokv.merge import MergeOperator, builtin

# The options each family has on its own; the open options give the default family's.
FAMILY_FIELDS: Final = (
    "compaction",
    "ttl",
    "merge_operator",
    "write_buffer_size",
    "block_size",
    "filter",
    "bloom_bits_per_key",
    "target_file_size",
    "max_bytes_for_level_base",
    "level_multiplier",
    "l0_compaction_trigger",
    "l0_slowdown_trigger",
    "l0_stop_trigger",
    "max_table_files_size",
    "size_ratio",
    "max_size_amplification_percent",
)
# Options a new family takes from the open options when create_column_family does not give
# them: sizes and filters, tuned per machine.  The others (compaction style, ttl, merge
# operator) describe the family's data and start from their defaults.
INHERITED: Final = frozenset(FAMILY_FIELDS) - {"compaction", "ttl", "merge_operator"}
FIXED: Final = ("compaction", "merge_operator")
MAX_NAME_BYTES: Final = 255
DEFAULT_FAMILY: Final = "default"
FORMAT_VERSION: Final = 1  # the "v" member of the JSON object


@dataclasses.dataclass(frozen=True)
class FamilyOptions:
    """One family's options (see aiokv.Options for what each means)."""

    compaction: str = "leveled"
    ttl: float | None = None
    merge_operator: MergeOperator | None = None
    write_buffer_size: int = 64 << 20
    block_size: int = 4 << 10
    filter: str = "bloom"
    bloom_bits_per_key: int = 10
    target_file_size: int = 64 << 20
    max_bytes_for_level_base: int = 256 << 20
    level_multiplier: int = 10
    l0_compaction_trigger: int = 4
    l0_slowdown_trigger: int = 20
    l0_stop_trigger: int = 36
    max_table_files_size: int = 1 << 30
    size_ratio: int = 1
    max_size_amplification_percent: int = 200

    @property
    def ttl_ms(self) -> int:
        return 0 if self.ttl is None else int(self.ttl * 1000)

    def as_dict(self) -> dict[str, Any]:
        return {f: getattr(self, f) for f in FAMILY_FIELDS}


def check_family_name(name: Any) -> str:
    """A family name is a str of 1 to 255 UTF-8 bytes."""
    if not isinstance(name, str):
        raise InvalidTypeError(f"a column family name is a str, not {type(name).__name__}")
    try:
        n = len(name.encode())
    except UnicodeEncodeError:
        raise InvalidArgumentError("a column family name must be valid UTF-8") from None
    if not 0 < n <= MAX_NAME_BYTES:
        raise InvalidArgumentError(f"a column family name has 1 to {MAX_NAME_BYTES} bytes")
    return name


def from_options(options: Any) -> FamilyOptions:
    """The family fields of an aiokv.Options (the default family's options)."""
    return FamilyOptions(**{f: getattr(options, f) for f in FAMILY_FIELDS})


def for_new_family(options: Any, given: Mapping[str, Any]) -> FamilyOptions:
    """A new family's options: `given` (checked) over the inherited open options."""
    _check_given(given)
    from aiokv.options import build_options

    base = {f: getattr(options, f) for f in INHERITED}
    merged = {**base, **given}
    checked = build_options(merged)
    return FamilyOptions(**{f: getattr(checked, f) for f in FAMILY_FIELDS})


def _check_given(given: Mapping[str, Any]) -> None:
    unknown = sorted(set(given) - set(FAMILY_FIELDS))
    if unknown:
        raise InvalidArgumentError(
            f"unknown family option(s) {', '.join(unknown)}; "
            f"family options: {', '.join(FAMILY_FIELDS)}"
        )


def encode(fo: FamilyOptions) -> bytes:
    """The persisted form: a JSON object, the merge operator by name.

    >>> encode(FamilyOptions(ttl=60.0))[:40]
    b'{"v":1,"compaction":"leveled","ttl":60.0'
    """
    d: dict[str, Any] = {"v": FORMAT_VERSION}
    for f in FAMILY_FIELDS:
        d[f] = getattr(fo, f)
    op = fo.merge_operator
    d["merge_operator"] = None if op is None else op.name
    return orjson.dumps(d)


def decode(blob: bytes, path: str = "MANIFEST") -> dict[str, Any]:
    """The persisted options as a dict (merge_operator: its name).  Empty blob: defaults
    (a store from before families had options)."""
    if not blob:
        return {}
    try:
        d = orjson.loads(blob)
    except orjson.JSONDecodeError as e:
        raise CorruptionError(path, 0, f"family options are not JSON: {e}") from None
    if not isinstance(d, dict) or d.get("v") != FORMAT_VERSION:
        raise CorruptionError(path, 0, f"family options of unknown shape: {blob[:80]!r}")
    del d["v"]
    return {k: v for k, v in d.items() if k in FAMILY_FIELDS}


def reconcile(
    name: str, persisted: Mapping[str, Any], given: Mapping[str, Any], given_names: frozenset[str]
) -> FamilyOptions:
    """The options an existing family opens with.

    Args:
        persisted: decode()d options from the manifest.
        given: option values from the caller (the open options for the default family, or
            its column_families entry); only those named in `given_names` count.
    Raises:
        ColumnFamilyError: a different compaction style or merge operator name than the
            family was created with, or a persisted operator that is not a built-in and was
            not given.
    """
    fields = {k: v for k, v in persisted.items() if k != "merge_operator"}
    for k in given_names:
        if k in FAMILY_FIELDS and k != "merge_operator":
            fields[k] = given[k]
    if "compaction" in persisted and fields.get("compaction") != persisted["compaction"]:
        raise ColumnFamilyError(
            f"column family {name!r} was created with compaction={persisted['compaction']!r};"
            f" it cannot be opened with compaction={fields['compaction']!r}"
        )
    stored = persisted.get("merge_operator")
    op = given.get("merge_operator") if "merge_operator" in given_names else None
    if op is not None and stored is not None and op.name != stored:
        raise ColumnFamilyError(
            f"column family {name!r} was created with merge operator {stored!r}; "
            f"it cannot be opened with {op.name!r}"
        )
    if op is None and stored is not None:
        op = builtin(stored)
        if op is None:
            raise ColumnFamilyError(
                f"column family {name!r} uses merge operator {stored!r}: pass it when opening "
                f"(merge_operator=... or column_families={{{name!r}: {{'merge_operator': ...}}}})"
            )
    fields["merge_operator"] = op
    from aiokv.options import build_options

    checked = build_options(fields)
    return FamilyOptions(**{f: getattr(checked, f) for f in FAMILY_FIELDS})
