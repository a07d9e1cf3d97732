"""bench/btree_bench.py runs both engines end to end at a tiny size, checks its data, and
reports every workload with figures, ratios and targets (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "btree_bench.py"
# 3,000 keys in 16 KiB memtables: the fill freezes ~20 memtables, so the LSM flushes and
# compacts and the B+Tree checkpoints many times, and the overwrites do it again.
TINY = [
    "--keys", "3000", "--reads", "2000", "--scans", "20", "--scan-len", "50",
    "--overwrites", "600", "--write-buffer-size", "16384", "--time-limit", "60",
]  # fmt: skip
WORKLOADS = ("fillrandom", "readrandom", "readmissing", "scan1000", "overwrite")
LATENCY_FIELDS = ("ops", "seconds", "ops_per_s", "p50_us", "p99_us", "p999_us", "max_us")


def run_bench(tmp_path: Path, *extra: str, code: str | None = None) -> subprocess.CompletedProcess:
    out = tmp_path / "results.json"
    head = [sys.executable, "-c", code] if code else [sys.executable, str(BENCH)]
    return subprocess.run(
        [*head, *TINY, "--dir", str(tmp_path), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
    )


def results(tmp_path: Path, *extra: str) -> tuple[dict, str]:
    proc = run_bench(tmp_path, *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads((tmp_path / "results.json").read_text()), proc.stdout


def test_tiny_run_measures_every_workload_on_both_engines_and_passes_its_checks(tmp_path):
    doc, stdout = results(tmp_path)
    assert doc["bench"] == "btree" and doc["config"]["keys"] == 3000
    ran = {(r["workload"], r["engine"]) for r in doc["results"]}
    assert {(w, e) for w in WORKLOADS for e in ("lsm", "btree")} <= ran
    for r in doc["results"]:
        assert all(f in r for f in LATENCY_FIELDS), r
        assert 0 < r["p50_us"] <= r["p99_us"] <= r["p999_us"] <= r["max_us"]
    by = {(r["workload"], r["engine"]): r for r in doc["results"]}
    for e in ("lsm", "btree"):
        assert by["fillrandom", e]["ops"] == 3000
        assert by["fillrandom", e]["flushes"] > 0, "the fill is several memtables"
        assert by["fillrandom", e]["total_ops_per_s"] < by["fillrandom", e]["ops_per_s"]
        assert by["readrandom", e]["ops"] == by["readmissing", e]["ops"] == 2000
        assert by["scan1000", e]["ops"] == 20
        assert 0 < by["scan1000", e]["items"] <= 20 * 50
        assert by["overwrite", e]["ops"] == 600
    checks = doc["checks"]
    assert all(c["ok"] for c in checks), [c for c in checks if not c["ok"]]
    assert sum("db.check()" in c["check"] for c in checks) == 2 * 2 * 2  # idle + verdict, x2
    assert "checks: 26 of 26 passed" in stdout
    assert not list(tmp_path.glob("aiokv-btree-bench-*")), "the data directory is removed"


def test_ratios_space_and_targets_compare_btree_with_lsm(tmp_path):
    doc, stdout = results(tmp_path, "--no-uvloop")
    assert doc["machine"]["loop"].startswith("asyncio")
    comp = {c["workload"]: c for c in doc["comparison"]}
    assert set(WORKLOADS) | {"space after fill", "space after overwrite"} == set(comp)
    for w in WORKLOADS:
        c = comp[w]
        assert c["ops_ratio"] == c["btree_ops_per_s"] / c["lsm_ops_per_s"] > 0
    assert "total_ratio" in comp["fillrandom"] and "total_ratio" in comp["overwrite"]
    space = {(s["engine"], s["when"]): s for s in doc["space"]}
    assert set(space) == {(e, w) for e in ("lsm", "btree") for w in ("fill", "overwrite")}
    assert space["btree", "fill"]["pages"] > 0 and space["btree", "fill"]["sst"] == 0
    assert space["lsm", "fill"]["sst"] > 0 and space["lsm", "fill"]["pages"] == 0
    for s in doc["space"]:
        assert s["logical_bytes"] == 3000 * (16 + 100)
        assert s["ratio"] == s["store_bytes"] / s["logical_bytes"]
    assert 0 < space["btree", "fill"]["live_ratio"] <= space["btree", "fill"]["ratio"]
    targets = {t["target"]: t for t in doc["targets"]}
    read = targets["btree readrandom faster than lsm (ops/s ratio > 1)"]
    assert read["measured"] == comp["readrandom"]["ops_ratio"]
    assert read["ratio_met"] == (read["measured"] > 1)
    scan = targets["btree scan1000 p99 < 500 µs"]
    assert scan["absolute_met"] == (scan["measured"] < 500)
    assert sum("slower allowed" in t for t in targets) == 4
    assert "| target |" in stdout and "| btree/lsm ops/s |" in stdout.replace("**", "")


def test_cprofile_run_profiles_the_chosen_btree_workload(tmp_path):
    doc, stdout = results(tmp_path, "--cprofile-run", "scan1000")
    prof = doc["cprofile"]
    assert prof["engine"] == "btree" and prof["workload"] == "scan1000" and prof["ops"] == 20
    top = prof["top_by_own_time"]
    assert top and all(0 <= r["own_share"] <= 1 for r in top)
    assert any("aiokv" in r["function"] for r in top)
    assert "=== cProfile: btree scan1000" in stdout


def test_a_store_that_loses_writes_fails_the_run(tmp_path):
    """The checks are real: puts that drop keys ending in 7 make the bench exit 1."""
    code = (
        "import sys, runpy, aiokv.db as d\n"
        "real = d.DB.put\n"
        "async def lossy(self, key, value, **kw):\n"
        "    if not key.endswith(b'7'):\n"
        "        await real(self, key, value, **kw)\n"
        "d.DB.put = lossy\n"
        f"sys.argv = [{str(BENCH)!r}, *sys.argv[1:]]\n"
        f"runpy.run_path({str(BENCH)!r}, run_name='__main__')\n"
    )
    proc = run_bench(tmp_path, code=code)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "CHECK FAILED: lsm: full scan after the fill" in proc.stderr
    assert "CHECK FAILED: btree: get of every key after the fill" in proc.stderr
