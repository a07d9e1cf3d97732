"""bench/lsm_bench.py runs end to end at a tiny size and writes well-formed JSON (no timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "lsm_bench.py"
# 3,000 keys in 16 KiB memtables (scale 4096 floors every size option at its minimum), so the
# fill flushes and compacts, and the compaction phase's 600 overwrites make ~6 L0 tables with
# l0_compaction_trigger 2.  A yield after every get (the loop polls, releasing the GIL, that
# often) lets the pool threads of flush and compaction keep pace, so that window is short.
TINY = [
    "--keys", "3000", "--reads", "2000", "--scans", "20", "--scan-len", "50",
    "--overwrites", "600", "--during-gets", "5000", "--yield-every", "1", "--scale", "4096",
    "--busy-write-buffer-size", "16384", "--time-limit", "120",
]  # fmt: skip
LATENCY_FIELDS = ("ops", "seconds", "ops_per_s", "p50_us", "p99_us", "p999_us", "max_us")
PEER_WORKLOADS = {"fillrandom", "readrandom", "readmissing", "scan1000"}


def run_bench(tmp_path: Path, *extra: str) -> tuple[dict, str]:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), *TINY, "--dir", str(tmp_path), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc.stdout


def test_tiny_run_writes_every_figure_and_passes_its_data_checks(tmp_path):
    doc, stdout = run_bench(tmp_path)
    assert doc["bench"] == "lsm"
    assert doc["config"]["keys"] == 3000
    aiokv = {r["workload"]: r for r in doc["results"] if r["engine"] == "aiokv"}
    assert {"fillrandom", "readrandom", "readmissing", "scan1000", "get_idle"} <= set(aiokv)
    assert "overwrite_during_compaction" in aiokv
    for r in doc["results"]:
        assert all(f in r for f in LATENCY_FIELDS), r
        assert r["ops"] > 0
        assert 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]
    assert aiokv["fillrandom"]["ops"] == 3000
    assert aiokv["fillrandom"]["flushes"] > 0, "the fill is several memtables"
    assert 0 < aiokv["scan1000"]["items"] <= 20 * 50
    assert aiokv["readrandom"]["ops"] == aiokv["readmissing"]["ops"] == 2000
    assert "dict_await" in aiokv["readrandom"]["ratios"]
    assert all(c["ok"] for c in doc["checks"]), [c for c in doc["checks"] if not c["ok"]]
    assert "checks: " in stdout and "| target |" in stdout
    assert not list(tmp_path.glob("aiokv-lsm-bench-*")), "the data directory is removed"
    for peer in doc["peers"]:  # whichever peers are importable ran the shared workloads
        ran = {r["workload"] for r in doc["results"] if r["engine"] == peer}
        assert ran == PEER_WORKLOADS
        assert any(r["engine"] == peer for r in doc["space"])
        assert all(peer in aiokv[w]["ratios"] for w in PEER_WORKLOADS)


def test_space_rows_relate_store_bytes_to_logical_bytes(tmp_path):
    doc, _ = run_bench(tmp_path, "--no-peers")
    rows = {(r["engine"], r["when"]): r for r in doc["space"]}
    assert set(rows) == {("aiokv", "compact_range"), ("aiokv", "reopen")}
    for r in rows.values():
        assert r["logical_bytes"] == 3000 * (16 + 100)
        assert r["store_bytes"] == r["sst"] + r["log"] + r["manifest"]
        assert r["ratio"] == r["store_bytes"] / r["logical_bytes"]
        assert r["sst_files"] > 0
    space = [t for t in doc["targets"] if t["workload"] == "space"]
    assert len(space) == 1 and space[0]["measured"] == rows["aiokv", "compact_range"]["ratio"]
    bg = doc["background"]
    assert bg["settled"] and bg["compact_range_seconds"] >= 0
    assert bg["after_compact_range"]["l0_tables"] == 0, "compact_range leaves nothing in L0"


def test_compaction_phase_reports_compactions_and_both_windows(tmp_path):
    doc, _ = run_bench(tmp_path, "--no-peers", "--no-uvloop", "--switch-interval", "0.001")
    assert doc["machine"]["loop"].startswith("asyncio")
    assert doc["switch_interval"] == 0.001
    c = doc["compaction"]
    assert c["options"]["write_buffer_size"] == 16384
    assert c["options"]["l0_compaction_trigger"] == 2
    assert c["gets_idle"] == 2000
    assert c["yield_every"] == 1
    assert c["idle_window_stats"]["compactions"] == 0
    assert c["busy_window_stats"]["compactions"] + c["after_window_stats"]["compactions"] > 0
    assert c["window_ended_by"] in ("stop", "count", "time")
    assert c["gets_during_compaction"] > 0, "some gets ran while a compaction did"
    assert c["during_p99_us"] > 0 and c["p99_ratio"] > 0
    assert c["max_loop_stall_ms"] > 0
    assert c["stalls_during_compaction"]["yields"] > 0
