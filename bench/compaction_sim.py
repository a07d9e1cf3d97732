#!/usr/bin/env python3
"""Compaction simulator: the engine's flush + compaction loop, modelled, with the real pickers
(leveled: aiokv/engine/lsm/picker.py; tiered: picker_tiered.py; FIFO: picker_fifo.py),
reporting write, read and space amplification.

    .venv/bin/python bench/compaction_sim.py --keys 2000000 --value-size 100
    .venv/bin/python bench/compaction_sim.py --keys 2000000 --scale 64 --overwrite 0.5 --json
    .venv/bin/python bench/compaction_sim.py --keys 1000000 --scale 64 --style all

`--style leveled|tiered|fifo` runs one picker; `--style all` runs the three on the same writes
and prints one comparison table.

Model (no bytes are written; every table is a sorted list of int keys plus its FileMeta):
- Workload: `keys` writes of key_size + value_size bytes.  A write overwrites an earlier key
  with probability `overwrite`, otherwise it writes a new key: `random` (uniform 62-bit keys),
  `sequential` (increasing) or `zipf` (random new keys; overwrites skewed toward the earliest
  keys: index = n * u ** skew, u uniform, so a few keys take most overwrites); random and
  sequential overwrite an earlier key drawn uniformly.
- Memtable: like RocksDB's, it counts every write (each version takes space), so it is flushed
  every write_buffer_size // entry writes; the flush keeps the newest version of each key and
  makes one L0 table.
- Compaction runs to completion after every flush (the picker is called until it returns
  None, one task at a time, busy empty): the model of a compactor that keeps up.  A task's
  tables are merged exactly (their sorted key lists, each key kept once: the newest-wins
  dedup of overwrites) and cut into outputs of target_file_size // entry keys; a move
  rewrites nothing; a drop (FIFO) deletes its tables.
- Tiered: run_trigger = l0_compaction_trigger and target_file_size as leveled's (L6 outputs);
  size ratio, merge widths and the space bound from the --size-ratio ... flags.  An L0 -> L0
  merge makes one table.
- FIFO: tables stay as flushed; the oldest are dropped while more than `fifo_size` bytes remain
  (default: a tenth of the user bytes, so the run writes ten times what it keeps).  No TTL.
- Table bytes = entries * (key_size + value_size): no block, index or filter overhead and no
  compression, so the ratios compare like with like.  No deletes, no snapshots.

Figures:
- write amplification = (flushed + compaction output bytes) / user bytes written.
- read amplification: worst case = L0 tables + non-empty levels (a get with no filter help),
  at the end and its mean over the run (sampled after each flush's compactions); and the mean
  number of tables whose key range holds a live key, probed newest first until it is found
  (`get_tables_avg`: what a get of an existing key reads without Bloom filters; with them,
  about 1 + 1% of the rest).
- space amplification = table bytes / live bytes (distinct keys * entry), at the end and max
  (sampled after each flush's compactions).  FIFO's live bytes are the distinct keys its tables
  still hold (`kept`: their share of every key written; 1.0 for the other styles), and its
  gets sample those keys.  `bytes_tables_max` is the most table bytes at any moment: after a
  flush, and while a task runs (its outputs written, its inputs not yet deleted).
`--scale N` divides write_buffer_size, max_bytes_for_level_base, target_file_size,
max_compaction_bytes (and an explicit --fifo-size) by N: the tree then has the shape of a
store N times larger.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from bisect import bisect_left
from dataclasses import asdict, dataclass, field, replace
from itertools import chain
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from aiokv.engine.lsm.picker import (
    CompactionTask,
    LeveledOptions,
    apply,
    base_level,
    level_targets,
    pick,
    scores,
)
from aiokv.engine.lsm.picker_fifo import FifoOptions, pick_fifo
from aiokv.engine.lsm.picker_tiered import TieredOptions, pick_tiered, sorted_runs
from aiokv.engine.lsm.version import NUM_LEVELS, FileMeta, Version

MiB = 1024 * 1024
WORKLOADS = ("random", "sequential", "zipf")
STYLES = ("leveled", "tiered", "fifo")
_SIZE_UNIT = {"": 1, "k": 1024, "m": MiB, "g": 1024 * MiB}


@dataclass(frozen=True)
class SimConfig:
    keys: int = 2_000_000
    key_size: int = 16
    value_size: int = 100
    workload: str = "random"
    overwrite: float = 0.0
    zipf_skew: float = 4.0  # overwrite index = n * u ** 4: half of them hit the first 6% of keys
    write_buffer_size: int = 64 * MiB
    scale: int = 1
    seed: int = 1
    get_samples: int = 10_000
    leveled: LeveledOptions = field(default_factory=LeveledOptions)
    style: str = "leveled"
    # Tiered's ratios and widths; run_trigger and target_file_size come from `leveled`.
    tiered: TieredOptions = field(default_factory=TieredOptions)
    fifo_size: int = 0  # FIFO's max_table_files_size; 0: a tenth of the user bytes

    def scaled(self) -> SimConfig:
        """The config with sizes divided by `scale` (and scale 1)."""
        if self.scale == 1:
            return self
        lv, s = self.leveled, self.scale
        leveled = replace(
            lv,
            max_bytes_for_level_base=max(1, lv.max_bytes_for_level_base // s),
            target_file_size=max(1, lv.target_file_size // s),
            max_compaction_bytes=max(1, lv.max_compaction_bytes // s),
        )
        return replace(
            self,
            write_buffer_size=max(1, self.write_buffer_size // s),
            scale=1,
            leveled=leveled,
            fifo_size=self.fifo_size and max(1, self.fifo_size // s),
        )

    def tiered_options(self) -> TieredOptions:
        """Tiered options as the engine builds them: the trigger and file size of `leveled`."""
        lv = self.leveled
        return replace(
            self.tiered, run_trigger=lv.l0_compaction_trigger, target_file_size=lv.target_file_size
        )

    def fifo_options(self) -> FifoOptions:
        size = self.fifo_size or self.keys * (self.key_size + self.value_size) // 10
        return FifoOptions(max(1, size))


class _Workload:
    """Generates the keys of each memtable's worth of writes."""

    def __init__(self, cfg: SimConfig) -> None:
        self.rng = random.Random(cfg.seed)
        self.kind = cfg.workload
        self.overwrite = cfg.overwrite
        self.skew = cfg.zipf_skew
        self.written: list[int] = []  # distinct keys, in order of first write
        self._seen: set[int] = set()
        self._next = 0

    def _new(self) -> int:
        if self.kind == "sequential":
            self._next += 1
            return self._next
        while True:
            k = self.rng.getrandbits(62)
            if k not in self._seen:
                return k

    def _old(self) -> int:
        n = len(self.written)
        if self.kind == "zipf":
            return self.written[int(n * self.rng.random() ** self.skew)]
        return self.written[int(n * self.rng.random())]

    def chunk(self, count: int) -> list[int]:
        rand, p, out = self.rng.random, self.overwrite, []
        for _ in range(count):
            if self.written and rand() < p:
                out.append(self._old())
            else:
                k = self._new()
                self._seen.add(k)
                self.written.append(k)
                out.append(k)
        return out


def _pack(k: int) -> bytes:
    return k.to_bytes(8, "big")


class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg.scaled()
        self.opts = self.cfg.leveled
        self.style = self.cfg.style
        self.tiered = self.cfg.tiered_options()
        self.fifo = self.cfg.fifo_options()
        self.entry = self.cfg.key_size + self.cfg.value_size
        self.version = Version()
        self.keys_of: dict[int, list[int]] = {}
        self.pointers: dict[int, bytes] = {}
        self.next_number = 1
        self.seq = 0
        self.bytes_user = 0
        self.bytes_flushed = 0
        self.bytes_compacted = 0  # outputs of compactions (moves write nothing)
        self.bytes_read = 0  # inputs of compactions
        self.bytes_dropped = 0  # tables FIFO deleted whole
        self.bytes_tables_max = 0  # the most table bytes at any moment (see the docstring)
        self.written_to_level = [0] * NUM_LEVELS
        self.tasks: dict[str, int] = {}
        self.worst_reads: list[int] = []
        self.space_amps: list[float] = []
        self.workload = _Workload(self.cfg)

    def _table(self, keys: list[int], lo_seq: int, hi_seq: int) -> FileMeta:
        number, self.next_number = self.next_number, self.next_number + 1
        self.keys_of[number] = keys
        size = len(keys) * self.entry
        return FileMeta(number, size, _pack(keys[0]), _pack(keys[-1]), lo_seq, hi_seq, len(keys), 0)

    def flush(self, writes: list[int]) -> None:
        keys = sorted(set(writes))
        meta = self._table(keys, self.seq + 1, self.seq + len(writes))
        self.seq += len(writes)
        self.bytes_user += len(writes) * self.entry
        self.bytes_flushed += meta.size
        self.version = self.version.apply([(0, meta)], [])
        self.bytes_tables_max = max(self.bytes_tables_max, self.version.total_size())

    def run_task(self, task: CompactionTask) -> None:
        name = f"{task.reason}-move" if task.is_move else task.reason
        self.tasks[name] = self.tasks.get(name, 0) + 1
        outputs: list[FileMeta] = []
        if task.is_drop:
            self.bytes_dropped += sum(f.size for f in task.inputs)
        elif not task.is_move:
            files = [f for _, f in task.all_files()]
            self.bytes_read += sum(f.size for f in files)
            # Timsort merges the sorted runs; dict.fromkeys drops the repeats (overwrites).
            runs = chain.from_iterable(self.keys_of[f.number] for f in files)
            merged = list(dict.fromkeys(sorted(runs)))
            lo_seq = min(f.smallest_seq for f in files)
            hi_seq = max(f.largest_seq for f in files)
            per = max(1, task.target_file_size // self.entry)
            outputs = [
                self._table(merged[i : i + per], lo_seq, hi_seq) for i in range(0, len(merged), per)
            ]
            written = sum(f.size for f in outputs)
            self.bytes_compacted += written
            self.written_to_level[task.output_level] += written
            peak = self.version.total_size() + written  # inputs are deleted after the edit
            self.bytes_tables_max = max(self.bytes_tables_max, peak)
        edit = apply(self.version, task, outputs)
        self.version = self.version.apply(
            [(lv, f) for _, lv, f in edit.new_files], [(lv, n) for _, lv, n in edit.deleted_files]
        )
        kept = {f.number for _, _, f in edit.new_files}
        for _, _, number in edit.deleted_files:
            if number not in kept:
                del self.keys_of[number]
        for _, lv, key in edit.compact_pointers:
            self.pointers[lv] = key

    def _pick(self) -> CompactionTask | None:
        if self.style == "tiered":
            return pick_tiered(self.version, self.tiered)
        if self.style == "fifo":
            return pick_fifo(self.version, self.fifo, 0)
        return pick(self.version, self.opts, pointers=self.pointers)

    def compact(self) -> None:
        while (task := self._pick()) is not None:
            self.run_task(task)

    def _held(self) -> set[int]:
        return set().union(*(self.keys_of[f.number] for _, f in self.version.files()))

    def live_keys(self) -> list[int]:
        """The distinct keys a get can find: every key written, or what FIFO still holds."""
        return sorted(self._held()) if self.style == "fifo" else self.workload.written

    def live_count(self) -> int:
        return len(self._held()) if self.style == "fifo" else len(self.workload.written)

    def _sample(self) -> None:
        lv = self.version.levels
        self.worst_reads.append(len(lv[0]) + sum(1 for files in lv[1:] if files))
        live = self.live_count() * self.entry
        self.space_amps.append(self.version.total_size() / live)

    def run(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        per_flush = max(1, self.cfg.write_buffer_size // self.entry)
        left = self.cfg.keys
        while left > 0:
            n = min(per_flush, left)
            left -= n
            self.flush(self.workload.chunk(n))
            self.compact()
            self._sample()
        return self.report(time.perf_counter() - t0)

    def get_tables(self) -> tuple[float, int]:
        """Mean and max tables probed (range holds the key) to find sampled live keys."""
        written = self.live_keys()
        if not written:
            return 0.0, 0
        rng = random.Random(self.cfg.seed + 1)
        levels, keys_of = self.version.levels, self.keys_of
        total = worst = 0
        for _ in range(self.cfg.get_samples):
            k = written[rng.randrange(len(written))]
            key, probes = _pack(k), 0
            tables = [f for f in levels[0] if f.smallest <= key <= f.largest]
            tables += [f for lv in range(1, NUM_LEVELS) if (f := self.version.file_for(lv, key))]
            for f in tables:
                probes += 1
                ks = keys_of[f.number]
                i = bisect_left(ks, k)
                if i < len(ks) and ks[i] == k:
                    break
            total += probes
            worst = max(worst, probes)
        return total / self.cfg.get_samples, worst

    def report(self, elapsed: float) -> dict[str, Any]:
        v, opts = self.version, self.opts
        leveled = self.style == "leveled"
        targets = level_targets(v, opts) if leveled else [0] * NUM_LEVELS
        sc = scores(v, opts) if leveled else [0.0] * NUM_LEVELS
        levels = [
            {
                "level": lv,
                "files": len(v.levels[lv]),
                "bytes": v.level_size(lv),
                "target": targets[lv],
                "score": round(sc[lv], 4),
                # L0: flushes, plus tiered's L0 -> L0 merges
                "bytes_written": self.written_to_level[lv] + (self.bytes_flushed if lv == 0 else 0),
            }
            for lv in range(NUM_LEVELS)
        ]
        live = self.live_count() * self.entry
        avg, worst = self.get_tables()
        cfg = asdict(self.cfg)
        cfg["tiered"] = asdict(self.tiered)
        cfg["fifo_size"] = self.fifo.max_table_files_size
        runs = len(sorted_runs(v))
        if self.style == "tiered":
            within = runs <= max(self.tiered.run_trigger, self.tiered.min_merge_width - 1)
        elif self.style == "fifo":
            within = v.total_size() <= self.fifo.max_table_files_size or len(v.levels[0]) == 1
        else:
            within = all(s < 1.0 for s in sc)
        return {
            "config": cfg,
            "style": self.style,
            "model": "exact key sets (sorted int lists merged with dedup)",
            "entry_bytes": self.entry,
            "levels": levels,
            "base_level": base_level(v, opts) if leveled else NUM_LEVELS - 1,
            "runs": runs,
            "within_bounds": within,
            "bytes_user": self.bytes_user,
            "bytes_flushed": self.bytes_flushed,
            "bytes_compacted": self.bytes_compacted,
            "bytes_compaction_read": self.bytes_read,
            "bytes_tables": v.total_size(),
            "bytes_tables_max": self.bytes_tables_max,
            "bytes_dropped": self.bytes_dropped,
            "bytes_live": live,
            "kept": self.live_count() / len(self.workload.written),
            "tasks": dict(sorted(self.tasks.items())),
            "write_amp": (self.bytes_flushed + self.bytes_compacted) / self.bytes_user,
            "read_amp": {
                "worst": self.worst_reads[-1],
                "worst_mean": sum(self.worst_reads) / len(self.worst_reads),
                "worst_max": max(self.worst_reads),
                "get_tables_avg": avg,
                "get_tables_max": worst,
            },
            "space_amp": {"end": v.total_size() / live, "max": max(self.space_amps)},
            "elapsed_s": elapsed,
        }


def simulate(cfg: SimConfig) -> dict[str, Any]:
    """Runs the simulation and returns its report (see the module docstring)."""
    if cfg.keys < 1 or cfg.workload not in WORKLOADS or not 0.0 <= cfg.overwrite < 1.0:
        raise ValueError("keys >= 1, workload in WORKLOADS, 0 <= overwrite < 1")
    if cfg.style not in STYLES:
        raise ValueError(f"style in {STYLES}")
    return Simulator(cfg).run()


def compare(cfg: SimConfig) -> dict[str, dict[str, Any]]:
    """One report per style, each on the same writes (the workload is seeded)."""
    return {style: simulate(replace(cfg, style=style)) for style in STYLES}


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def _workload_line(rep: dict[str, Any]) -> str:
    c = rep["config"]
    return (
        f"{c['keys']:,} {c['workload']} writes of {rep['entry_bytes']} B, overwrite "
        f"{c['overwrite']:.0%}, memtable {_human(c['write_buffer_size'])}"
    )


def _style_line(rep: dict[str, Any]) -> str:
    c, t = rep["config"], rep["config"]["tiered"]
    if rep["style"] == "fifo":
        return f"fifo: keep {_human(c['fifo_size'])}"
    if rep["style"] == "tiered":
        widest = "any" if t["max_merge_width"] >= 1 << 30 else t["max_merge_width"]
        return (
            f"tiered: trigger {t['run_trigger']} runs, ratio {t['size_ratio']}%, width "
            f"{t['min_merge_width']}..{widest}, space "
            f"{t['max_size_amplification_percent']}%, file {_human(t['target_file_size'])}"
        )
    lv = c["leveled"]
    return (
        f"leveled: trigger {lv['l0_compaction_trigger']}, base "
        f"{_human(lv['max_bytes_for_level_base'])}, file {_human(lv['target_file_size'])}, "
        f"x{lv['level_multiplier']}"
    )


def _format_other(rep: dict[str, Any]) -> str:
    """A tiered or FIFO report: the levels (no targets or scores), then the figures."""
    lines = [
        f"{_workload_line(rep)}, {_style_line(rep)}",
        f"{'level':>5} {'files':>6} {'bytes':>11} {'written':>11}",
    ]
    for lv in rep["levels"]:
        lines.append(
            f"{'L' + str(lv['level']):>5} {lv['files']:>6} {_human(lv['bytes']):>11} "
            f"{_human(lv['bytes_written']):>11}"
        )
    ra, sa = rep["read_amp"], rep["space_amp"]
    lines += [
        f"write amp {rep['write_amp']:.2f}  (user {_human(rep['bytes_user'])}, flushed "
        f"{_human(rep['bytes_flushed'])}, compacted {_human(rep['bytes_compacted'])}, "
        f"dropped {_human(rep['bytes_dropped'])})",
        f"read amp  worst {ra['worst']} (mean {ra['worst_mean']:.2f}, max {ra['worst_max']}), "
        f"tables per get of a live key {ra['get_tables_avg']:.2f} (max {ra['get_tables_max']})",
        f"space amp {sa['end']:.3f} at end (max {sa['max']:.3f}) of live "
        f"{_human(rep['bytes_live'])} ({rep['kept']:.1%} of the keys written); tables "
        f"{_human(rep['bytes_tables'])} at end, {_human(rep['bytes_tables_max'])} max",
        f"runs {rep['runs']}   tasks {rep['tasks']}",
        f"within bounds: {rep['within_bounds']}   {rep['elapsed_s']:.1f} s",
    ]
    return "\n".join(lines)


def format_comparison(reps: dict[str, dict[str, Any]]) -> str:
    """One row per style: write, space and read amplification on the same writes."""
    first = next(iter(reps.values()))
    lines = [_workload_line(first)]
    lines += [f"  {_style_line(rep)}" for rep in reps.values()]
    lines += [
        f"{'style':<8} {'write':>6} {'space':>6} {'space':>6} {'tables':>10} {'kept':>6} "
        f"{'read worst':>16} {'get':>5} {'tasks':>6} {'secs':>5}",
        f"{'':<8} {'amp':>6} {'end':>6} {'max':>6} {'max':>10} {'':>6} "
        f"{'end/mean/max':>16} {'avg':>5}",
    ]
    for style, rep in reps.items():
        ra, sa = rep["read_amp"], rep["space_amp"]
        worst = f"{ra['worst']}/{ra['worst_mean']:.1f}/{ra['worst_max']}"
        lines.append(
            f"{style:<8} {rep['write_amp']:>6.2f} {sa['end']:>6.3f} {sa['max']:>6.3f} "
            f"{_human(rep['bytes_tables_max']):>10} {rep['kept']:>6.1%} {worst:>16} "
            f"{ra['get_tables_avg']:>5.2f} {sum(rep['tasks'].values()):>6} "
            f"{rep['elapsed_s']:>5.1f}"
        )
    return "\n".join(lines)


def format_table(rep: dict[str, Any]) -> str:
    if rep.get("style", "leveled") != "leveled":
        return _format_other(rep)
    c = rep["config"]
    lines = [
        f"{c['keys']:,} {c['workload']} writes of {rep['entry_bytes']} B, overwrite "
        f"{c['overwrite']:.0%}, memtable {_human(c['write_buffer_size'])}, "
        f"base {_human(c['leveled']['max_bytes_for_level_base'])}, "
        f"file {_human(c['leveled']['target_file_size'])}, x{c['leveled']['level_multiplier']}",
        f"{'level':>5} {'files':>6} {'bytes':>11} {'target':>11} {'score':>6} {'written':>11}",
    ]
    for lv in rep["levels"]:
        mark = "  <- base" if lv["level"] == rep["base_level"] and lv["level"] else ""
        lines.append(
            f"{'L' + str(lv['level']):>5} {lv['files']:>6} {_human(lv['bytes']):>11} "
            f"{_human(lv['target']) if lv['target'] else '-':>11} {lv['score']:>6.3f} "
            f"{_human(lv['bytes_written']):>11}{mark}"
        )
    ra, sa = rep["read_amp"], rep["space_amp"]
    lines += [
        f"write amp {rep['write_amp']:.2f}  (user {_human(rep['bytes_user'])}, flushed "
        f"{_human(rep['bytes_flushed'])}, compacted {_human(rep['bytes_compacted'])})",
        f"read amp  worst {ra['worst']} (mean {ra['worst_mean']:.2f}, max {ra['worst_max']}), "
        f"tables per get of a live key {ra['get_tables_avg']:.2f} (max {ra['get_tables_max']})",
        f"space amp {sa['end']:.3f} at end (max {sa['max']:.3f})   tasks {rep['tasks']}",
        f"within bounds: {rep['within_bounds']}   {rep['elapsed_s']:.1f} s",
    ]
    return "\n".join(lines)


def parse_size(text: str) -> int:
    """'64MiB', '256k', '1.5G', '4096' -> bytes.

    >>> parse_size("64MiB"), parse_size("256k"), parse_size("4096")
    (67108864, 262144, 4096)
    """
    m = re.fullmatch(r"\s*([0-9.]+)\s*([kmg]?)(?:i?b)?\s*", text.lower())
    if not m:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(float(m[1]) * _SIZE_UNIT[m[2]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d, lo = SimConfig(), LeveledOptions()
    ap.add_argument("--keys", type=int, default=d.keys, help="writes to simulate")
    ap.add_argument("--key-size", type=int, default=d.key_size)
    ap.add_argument("--value-size", type=int, default=d.value_size)
    ap.add_argument("--workload", choices=WORKLOADS, default=d.workload)
    ap.add_argument("--overwrite", type=float, default=d.overwrite, help="fraction, 0..1")
    ap.add_argument("--zipf-skew", type=float, default=d.zipf_skew)
    ap.add_argument("--write-buffer-size", type=parse_size, default=d.write_buffer_size)
    ap.add_argument("--scale", type=int, default=1, help="divide every size by this")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--get-samples", type=int, default=d.get_samples)
    ap.add_argument("--l0-compaction-trigger", type=int, default=lo.l0_compaction_trigger)
    ap.add_argument("--l0-slowdown-trigger", type=int, default=lo.l0_slowdown_trigger)
    ap.add_argument("--l0-stop-trigger", type=int, default=lo.l0_stop_trigger)
    ap.add_argument(
        "--max-bytes-for-level-base", type=parse_size, default=lo.max_bytes_for_level_base
    )
    ap.add_argument("--level-multiplier", type=int, default=lo.level_multiplier)
    ap.add_argument("--target-file-size", type=parse_size, default=lo.target_file_size)
    ap.add_argument("--max-compaction-bytes", type=parse_size, default=0, help="0: 25 files")
    ap.add_argument("--style", choices=(*STYLES, "all"), default="leveled")
    to = TieredOptions()
    ap.add_argument("--size-ratio", type=int, default=to.size_ratio, help="tiered, percent")
    ap.add_argument("--min-merge-width", type=int, default=to.min_merge_width)
    ap.add_argument("--max-merge-width", type=int, default=to.max_merge_width)
    ap.add_argument(
        "--max-size-amplification-percent", type=int, default=to.max_size_amplification_percent
    )
    ap.add_argument(
        "--fifo-size", type=parse_size, default=0, help="FIFO bytes kept; 0: user bytes / 10"
    )
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    a = ap.parse_args(argv)
    leveled = LeveledOptions(
        l0_compaction_trigger=a.l0_compaction_trigger,
        l0_slowdown_trigger=a.l0_slowdown_trigger,
        l0_stop_trigger=a.l0_stop_trigger,
        max_bytes_for_level_base=a.max_bytes_for_level_base,
        level_multiplier=a.level_multiplier,
        target_file_size=a.target_file_size,
        max_compaction_bytes=a.max_compaction_bytes,
    )
    cfg = SimConfig(
        keys=a.keys, key_size=a.key_size, value_size=a.value_size, workload=a.workload,
        overwrite=a.overwrite, zipf_skew=a.zipf_skew, write_buffer_size=a.write_buffer_size,
        scale=a.scale, seed=a.seed, get_samples=a.get_samples, leveled=leveled,
        style="leveled" if a.style == "all" else a.style, fifo_size=a.fifo_size,
        tiered=TieredOptions(
            size_ratio=a.size_ratio, min_merge_width=a.min_merge_width,
            max_merge_width=a.max_merge_width,
            max_size_amplification_percent=a.max_size_amplification_percent,
        ),
    )  # fmt: skip
    if a.style == "all":
        reps = compare(cfg)
        for r in reps.values():
            r["config"]["scale"] = a.scale
        print(json.dumps(reps, indent=2) if a.json else format_comparison(reps))
        return 0
    rep = simulate(cfg)
    rep["config"]["scale"] = a.scale  # the sizes shown are the scaled ones
    print(json.dumps(rep, indent=2) if a.json else format_table(rep))
    return 0


if __name__ == "__main__":
    sys.exit(main())
