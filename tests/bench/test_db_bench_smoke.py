"""bench/db_bench.py runs end to end at a tiny size and writes every workload (no timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "db_bench.py"
WORKLOADS = (
    "fillseq",
    "fillrandom",
    "overwrite",
    "readrandom",
    "readmissing",
    "get_many",
    "readseq",
    "seekrandom",
    "fillsync",
    "syncput_1000w",
)
TINY = [
    "--num", "200", "--batches", "4", "--batch", "50", "--seeks", "10", "--seek-len", "20",
    "--sync-num", "5", "--writers", "8", "--puts-per-writer", "3", "--fsync-samples", "5",
]  # fmt: skip


def run_bench(tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(BENCH), *TINY, "--dir", str(tmp_path), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(out.read_text())


def test_tiny_run_reports_every_workload_with_latency_figures(tmp_path):
    doc = run_bench(tmp_path)
    aiokv = {r["workload"]: r for r in doc["results"] if r["engine"] == "aiokv"}
    assert set(aiokv) == set(WORKLOADS)
    assert doc["workloads"] == list(WORKLOADS)
    for r in doc["results"]:
        assert r["ops"] > 0
        assert 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]
    baselines = {(r["workload"], r["engine"]) for r in doc["results"]}
    assert ("baseline_dict_await", "python") in baselines
    assert ("disk_write_fdatasync", "os") in baselines
    assert aiokv["get_many"]["items"] == 4 * 50
    assert aiokv["syncput_1000w"]["ops"] == 8 * 3
    assert "dict_await" in aiokv["readrandom"]["ratios"]
    assert doc["targets"], "targets are checked"
    for peer in doc["peers"]:  # whichever peers are importable ran all but syncput_1000w
        ran = {r["workload"] for r in doc["results"] if r["engine"] == peer}
        assert ran == set(WORKLOADS) - {"syncput_1000w"}
    assert not list(tmp_path.glob("aiokv-bench-*")), "the data directory is removed"


def test_runs_without_peers_and_without_uvloop(tmp_path):
    doc = run_bench(tmp_path, "--no-peers", "--no-uvloop", "--workloads", "readrandom,fillsync")
    assert doc["peers"] == {}
    assert doc["machine"]["loop"].startswith("asyncio")
    assert {r["workload"] for r in doc["results"] if r["engine"] == "aiokv"} == {
        "readrandom",
        "fillsync",
    }
