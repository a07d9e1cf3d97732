"""One column family's engine state that is not its data: options, job context, picking.

The family's memtables and Version live in the engine's per-family dicts (reads index them by
family id without an extra hop); what is here is asked for per flush or compaction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from aiokv.engine.lsm.jobs import JobContext
from aiokv.engine.lsm.picker import CompactionTask, LeveledOptions, pick, pick_range
from aiokv.engine.lsm.picker_fifo import FifoOptions, pick_fifo
from aiokv.engine.lsm.picker_tiered import TieredOptions, pick_tiered, pick_tiered_full
from aiokv.engine.lsm.picker_ttl import pick_expired
from aiokv.engine.lsm.version import Version
from aiokv.family_options import FamilyOptions
from aiokv.merge import MergeOperator


class Family:
    """See the module docstring."""

    __slots__ = ("ctx", "fifo", "id", "lopts", "name", "opts", "tiered")

    def __init__(self, cf: int, name: str, opts: FamilyOptions, base: JobContext) -> None:
        self.id = cf
        self.name = name
        self.opts = opts
        # Flush and compaction build tables with the family's block size and filter.
        job_options = dataclasses.replace(
            base.options,
            block_size=opts.block_size,
            filter=opts.filter,
            bloom_bits_per_key=opts.bloom_bits_per_key,
        )
        self.ctx = dataclasses.replace(base, options=job_options)
        self.lopts = LeveledOptions(
            l0_compaction_trigger=opts.l0_compaction_trigger,
            l0_slowdown_trigger=opts.l0_slowdown_trigger,
            l0_stop_trigger=opts.l0_stop_trigger,
            max_bytes_for_level_base=opts.max_bytes_for_level_base,
            level_multiplier=opts.level_multiplier,
            target_file_size=opts.target_file_size,
            max_compaction_bytes=25 * opts.target_file_size,
        )
        self.tiered = TieredOptions(
            size_ratio=opts.size_ratio,
            max_size_amplification_percent=opts.max_size_amplification_percent,
            run_trigger=opts.l0_compaction_trigger,
            target_file_size=opts.target_file_size,
        )
        self.fifo = FifoOptions(max_table_files_size=opts.max_table_files_size, ttl_ms=opts.ttl_ms)

    @property
    def op(self) -> MergeOperator | None:
        return self.opts.merge_operator

    @property
    def style(self) -> str:
        return self.opts.compaction

    def stalls_on_l0(self) -> bool:
        """FIFO keeps every table in L0 by design: its table count must not stall writers."""
        return self.opts.compaction != "fifo"

    def pick(
        self, v: Version, pointers: Mapping[tuple[int, int], bytes], now_ms: int
    ) -> CompactionTask | None:
        """The next background task of this family, by its compaction style."""
        style = self.opts.compaction
        if style == "fifo":
            return pick_fifo(v, self.fifo, now_ms, cf=self.id)
        if style == "tiered":
            return pick_tiered(v, self.tiered, cf=self.id)
        mine = {lv: k for (c, lv), k in pointers.items() if c == self.id}
        return pick(v, self.lopts, cf=self.id, pointers=mine)

    def pick_range(self, v: Version, lo: bytes | None, hi: bytes | None) -> CompactionTask | None:
        """compact_range's next task (FIFO: none; it never rewrites)."""
        style = self.opts.compaction
        if style == "fifo":
            return None
        if style == "tiered":
            return pick_tiered_full(v, self.tiered, cf=self.id)
        return pick_range(v, self.lopts, lo, hi, cf=self.id)

    def pick_expired(
        self, v: Version, now_ms: int, skip: AbstractSet[int]
    ) -> CompactionTask | None:
        """TTL GC: a table to rewrite because entries in it expired (FIFO drops instead)."""
        if self.opts.compaction == "fifo":
            return pick_fifo(v, self.fifo, now_ms, cf=self.id)
        return pick_expired(
            v, now_ms, cf=self.id, target_file_size=self.opts.target_file_size, skip=skip
        )

    def worker_options(self) -> dict[str, Any]:
        o = self.opts
        return {
            "block_size": o.block_size,
            "filter": o.filter,
            "bloom_bits_per_key": o.bloom_bits_per_key,
        }
