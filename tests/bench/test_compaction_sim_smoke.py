"""bench/compaction_sim.py runs at a tiny size and reports sane figures (no timing)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SIM = Path(__file__).resolve().parents[2] / "bench" / "compaction_sim.py"
TINY = {"keys": 30_000, "write_buffer_size": 16 << 10, "get_samples": 500}


def _load():
    spec = importlib.util.spec_from_file_location("compaction_sim", SIM)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["compaction_sim"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


sim = _load()


def run(**kw):
    lv = sim.LeveledOptions(max_bytes_for_level_base=64 << 10, target_file_size=16 << 10)
    return sim.simulate(sim.SimConfig(**{**TINY, "leveled": lv, **kw}))


def check_sane(rep):
    levels = rep["levels"]
    assert [lv["level"] for lv in levels] == list(range(7))
    assert rep["write_amp"] >= 1.0
    assert rep["space_amp"]["end"] >= 1.0 and rep["space_amp"]["max"] >= rep["space_amp"]["end"]
    assert rep["within_bounds"]
    assert all(lv["score"] < 1.0 for lv in levels)
    assert levels[0]["files"] < rep["config"]["leveled"]["l0_compaction_trigger"]
    for lv in levels[1:]:
        if lv["target"] and lv["level"] != max(x["level"] for x in levels if x["files"]):
            assert lv["bytes"] < lv["target"], f"L{lv['level']} over its target"
    assert sum(lv["bytes"] for lv in levels) == rep["bytes_tables"]
    non_empty = sum(1 for lv in levels[1:] if lv["files"])
    ra = rep["read_amp"]
    assert ra["worst"] == levels[0]["files"] + non_empty
    assert 1.0 <= ra["get_tables_avg"] <= ra["get_tables_max"] <= ra["worst_max"]
    written = rep["bytes_flushed"] + rep["bytes_compacted"]
    assert written == sum(lv["bytes_written"] for lv in levels)
    assert rep["bytes_flushed"] <= rep["bytes_user"]


def test_random_writes_build_several_levels_within_bounds():
    rep = run()
    check_sane(rep)
    assert rep["write_amp"] > 2.0, "compactions rewrote data"
    assert sum(1 for lv in rep["levels"][1:] if lv["files"]) >= 2
    assert rep["space_amp"]["end"] == 1.0, "no overwrites: nothing to reclaim"
    assert rep["bytes_live"] == 30_000 * rep["entry_bytes"]


def test_sequential_writes_only_move_tables():
    rep = run(workload="sequential")
    check_sane(rep)
    assert rep["write_amp"] == 1.0
    assert set(rep["tasks"]) <= {"l0-move", "size-move"}
    assert rep["read_amp"]["get_tables_avg"] == 1.0


@pytest.mark.parametrize("workload", ["random", "zipf"])
def test_overwrites_are_deduplicated(workload):
    rep = run(workload=workload, overwrite=0.6)
    check_sane(rep)
    assert rep["bytes_live"] < rep["bytes_user"]
    assert rep["bytes_tables"] < rep["bytes_user"]


def test_scale_divides_every_size():
    rep = run(scale=4)
    c = rep["config"]
    assert c["write_buffer_size"] == 4 << 10
    assert c["leveled"]["max_bytes_for_level_base"] == 16 << 10
    assert c["leveled"]["target_file_size"] == 4 << 10
    check_sane(rep)


def test_command_line_prints_json_and_a_table():
    args = [sys.executable, str(SIM), "--keys", "5000", "--write-buffer-size", "8KiB",
            "--max-bytes-for-level-base", "32k", "--target-file-size", "8k",
            "--get-samples", "100"]  # fmt: skip
    out = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rep = json.loads(out.stdout)
    check_sane(rep)
    assert rep["config"]["leveled"]["target_file_size"] == 8 << 10
    table = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "write amp" in table.stdout and "L6" in table.stdout


def check_common(rep):
    """What every style's report must satisfy."""
    levels = rep["levels"]
    assert sum(lv["bytes"] for lv in levels) == rep["bytes_tables"]
    assert rep["bytes_tables_max"] >= rep["bytes_tables"]
    written = rep["bytes_flushed"] + rep["bytes_compacted"]
    assert written == sum(lv["bytes_written"] for lv in levels)
    assert rep["bytes_flushed"] <= rep["bytes_user"]
    assert rep["write_amp"] == (rep["bytes_flushed"] + rep["bytes_compacted"]) / rep["bytes_user"]
    assert rep["space_amp"]["end"] >= 1.0 and rep["space_amp"]["max"] >= rep["space_amp"]["end"]
    ra = rep["read_amp"]
    assert ra["worst"] == levels[0]["files"] + sum(1 for lv in levels[1:] if lv["files"])
    assert 1.0 <= ra["get_tables_avg"] <= ra["get_tables_max"] <= ra["worst_max"]
    assert rep["within_bounds"]


@pytest.mark.parametrize("workload", ["random", "zipf"])
def test_tiered_keeps_at_most_trigger_runs_and_the_middle_levels_empty(workload):
    rep = run(style="tiered", workload=workload, overwrite=0.5)
    check_common(rep)
    levels = rep["levels"]
    assert all(lv["files"] == 0 for lv in levels[1:6])
    assert rep["runs"] <= rep["config"]["tiered"]["run_trigger"] == 4
    assert rep["runs"] == levels[0]["files"] + (1 if levels[6]["files"] else 0)
    assert rep["write_amp"] > 1.0 and rep["bytes_dropped"] == 0 and rep["kept"] == 1.0
    assert rep["tasks"] and set(rep["tasks"]) <= {"tiered-space", "tiered-ratio", "tiered-count"}
    assert rep["bytes_live"] < rep["bytes_user"]


def test_fifo_writes_only_flushes_and_keeps_its_size_bound():
    rep = run(style="fifo", fifo_size=100 << 10)
    check_common(rep)
    levels = rep["levels"]
    assert rep["bytes_compacted"] == 0 and rep["write_amp"] == 1.0  # no overwrites to dedup
    assert all(lv["files"] == 0 for lv in levels[1:])
    assert rep["bytes_tables"] <= 100 << 10 < rep["bytes_tables"] + (16 << 10)
    assert rep["bytes_dropped"] + rep["bytes_tables"] == rep["bytes_flushed"]
    assert set(rep["tasks"]) == {"fifo-size"}
    assert 0.0 < rep["kept"] < 0.25
    assert rep["space_amp"]["end"] == 1.0, "no overwrites: every byte kept is live"


def test_fifo_default_size_is_a_tenth_of_the_user_bytes_and_scale_divides_an_explicit_one():
    rep = run(style="fifo")
    assert rep["config"]["fifo_size"] == 30_000 * rep["entry_bytes"] // 10
    assert run(style="fifo", fifo_size=64 << 10, scale=2)["config"]["fifo_size"] == 32 << 10


def test_compare_runs_every_style_on_the_same_writes():
    reps = sim.compare(sim.SimConfig(**{**TINY, "keys": 10_000, "overwrite": 0.3}))
    assert list(reps) == ["leveled", "tiered", "fifo"]
    assert len({r["bytes_user"] for r in reps.values()}) == 1
    assert len({r["bytes_flushed"] for r in reps.values()}) == 1
    assert reps["fifo"]["write_amp"] < reps["leveled"]["write_amp"]
    assert reps["fifo"]["write_amp"] < reps["tiered"]["write_amp"]
    assert reps["leveled"]["kept"] == reps["tiered"]["kept"] == 1.0 > reps["fifo"]["kept"]
    text = sim.format_comparison(reps)
    assert [line.split()[0] for line in text.splitlines()[-3:]] == ["leveled", "tiered", "fifo"]


def test_command_line_style_all_prints_one_table_or_json():
    args = [sys.executable, str(SIM), "--keys", "5000", "--write-buffer-size", "8KiB",
            "--max-bytes-for-level-base", "32k", "--target-file-size", "8k",
            "--get-samples", "100", "--style", "all"]  # fmt: skip
    out = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    reps = json.loads(out.stdout)
    assert sorted(reps) == ["fifo", "leveled", "tiered"]
    check_sane(reps["leveled"])
    for rep in reps.values():
        check_common(rep)
    table = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert table.returncode == 0, table.stderr
    assert "write" in table.stdout and "tiered" in table.stdout and "fifo" in table.stdout
    one = subprocess.run([*args[:-1], "tiered"], capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr
    assert "runs" in one.stdout and "L6" in one.stdout
