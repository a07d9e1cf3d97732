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
    "mergerandom",
    "session",
    "fifo",
)
AIOKV_ONLY = {"syncput_1000w", "mergerandom", "session", "fifo"}
# Issue 4's workloads at a tiny size: 2000 merges over 100 counters; 300 sessions and 3000 ops
# whose fake clock (1 s an op, ttl 600 s) lets cold sessions expire; a 128 KiB FIFO family
# (16 KiB memtables, the minimum) taking 1.28 MB.  A 20 s time limit makes a hang fail the run
# (after 10 limits) before the test's own timeout.
TINY = [
    "--num", "200", "--batches", "4", "--batch", "50", "--seeks", "10", "--seek-len", "20",
    "--sync-num", "5", "--writers", "8", "--puts-per-writer", "3", "--fsync-samples", "5",
    "--merges", "2000", "--counters", "100", "--merge-reads", "300", "--sessions", "300",
    "--session-ops", "3000", "--session-ttl-s", "600", "--session-tick-us", "1000000",
    "--fifo-bytes", "131072", "--time-limit", "20",
]  # fmt: skip
ISSUE4 = ["--no-peers", "--workloads", "mergerandom,session,fifo"]


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
    assert set(aiokv) == set(WORKLOADS) | {
        "mergerandom_get_operands",
        "mergerandom_get_compacted",
        "mergerandom_put_baseline",
        "session_read",
        "session_update",
    }
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
    for peer in doc["peers"]:  # whichever peers are importable ran all but the aiokv-only ones
        ran = {r["workload"] for r in doc["results"] if r["engine"] == peer}
        assert ran == set(WORKLOADS) - AIOKV_ONLY
    assert not list(tmp_path.glob("aiokv-bench-*")), "the data directory is removed"


def test_runs_without_peers_and_without_uvloop(tmp_path):
    doc = run_bench(tmp_path, "--no-peers", "--no-uvloop", "--workloads", "readrandom,fillsync")
    assert doc["peers"] == {}
    assert doc["machine"]["loop"].startswith("asyncio")
    assert {r["workload"] for r in doc["results"] if r["engine"] == "aiokv"} == {
        "readrandom",
        "fillsync",
    }


def test_issue4_workloads_check_their_data_and_report_their_figures(tmp_path):
    doc = run_bench(tmp_path, *ISSUE4)
    r = {x["workload"]: x for x in doc["results"] if x["engine"] == "aiokv"}
    assert r["mergerandom"]["ops"] == 2000 and not r["mergerandom"]["truncated"]
    assert r["mergerandom_get_operands"]["operands_per_counter"] == 2000 / 100
    assert r["mergerandom_put_baseline"]["ops"] == 2000 and r["mergerandom"]["vs_put"] > 0
    assert r["mergerandom_get_operands"]["ops"] == r["mergerandom_get_compacted"]["ops"] == 300
    assert r["mergerandom_get_compacted"]["l0_tables"] == 0, "compact_range left no L0 table"
    assert r["session_read"]["ops"] + r["session_update"]["ops"] == r["session"]["ops"] == 3000
    assert r["session"]["reads"] == r["session_read"]["ops"]
    assert 0 < r["session"]["read_misses"] < r["session"]["reads"], "some sessions expired"
    assert 0 < r["session"]["hit_ratio"] < 1
    assert r["session"]["stall_micros"] >= 0 and r["fifo"]["stall_micros"] >= 0
    fifo = r["fifo"]
    assert fifo["ops"] == -(-10 * 131072 // 116)
    assert fifo["fifo_drops_size_phase"] > 0 and fifo["fifo_drops_ttl_phase"] > 0
    assert fifo["max_table_bytes_over_R"] >= fifo["final_table_bytes_over_R"] > 0
    assert fifo["flat"] == (fifo["max_table_bytes_over_R"] <= fifo["bound_over_R"])
    assert fifo["write_amp"] >= 1, "every byte is written to a table once"
    assert fifo["compactions"] >= 0 and fifo["samples"] > 10
    rows = {t["workload"]: t for t in doc["targets"]}
    assert rows["mergerandom"]["absolute_target"] == 250_000
    assert rows["fifo"]["ratio_met"] == fifo["flat"]
    assert {r["workload"] for r in doc["results"] if r["engine"] == "python"} == {
        "baseline_timer",
        "baseline_dict_await",
    }, "the dict-await ceiling is measured even without readrandom"


def test_a_wrong_counter_total_fails_the_run(tmp_path):
    """The check is real: a store that loses merges makes the bench exit non-zero."""
    out = tmp_path / "results.json"
    code = (
        "import sys, runpy, aiokv.db as d\n"
        "real = d.DB.merge\n"
        "async def lossy(self, key, operand, **kw):\n"
        "    if key.endswith(b'7'):\n"
        "        return\n"
        "    await real(self, key, operand, **kw)\n"
        "d.DB.merge = lossy\n"
        f"sys.argv = [{str(BENCH)!r}, *sys.argv[1:]]\n"
        f"runpy.run_path({str(BENCH)!r}, run_name='__main__')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, *TINY, "--dir", str(tmp_path), "--out", str(out),
         "--no-peers", "--workloads", "mergerandom"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED: mergerandom after the merges: counters by scan" in proc.stderr
    assert not out.exists(), "a failed run writes no figures"
