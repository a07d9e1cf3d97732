"""Figures for db_bench.py: latency summaries, machine facts, ratios, targets and tables.

Nothing here times anything; it turns lists of nanoseconds into the numbers the bench prints
and writes.  Percentiles are nearest-rank over every sample (no sampling, no interpolation).
"""

from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

Result = dict[str, Any]

# The targets, measured on its reference machine, and that machine's baselines.  A
# figure is compared with the absolute target and, because this machine differs, also as a
# ratio to the baseline measured in the same run (REF_DICT_AWAIT for every target).
REF_DICT_AWAIT = 860_000.0  # ops/s of `await` of a coroutine doing a dict lookup, there
REF_LMDB_GET = 575_000.0
REF_PLYVEL_PUT = 388_000.0
TARGET_GET = 600_000.0
TARGET_GET_P99_US = 10.0
TARGET_GET_MANY = 2_000_000.0
TARGET_PUT = 300_000.0
TARGET_SYNC_PUT = 200_000.0
TARGET_SYNC_P99_X_DISK = 2.0  # synced-put p99 no worse than 2x the disk's write+fdatasync p99


def percentile(ordered: list[int], q: float) -> int:
    """Nearest-rank percentile of an ascending list (q in (0, 1])."""
    n = len(ordered)
    return ordered[min(n - 1, max(0, math.ceil(q * n) - 1))]


def summarize(
    workload: str,
    engine: str,
    lat_ns: Sequence[int],
    elapsed_ns: int,
    *,
    items: int | None = None,
    untimed_ns: int | None = None,
    **extra: Any,
) -> Result:
    """One result: ops/s over the timed loop's wall time, and per-op latency percentiles.

    `items` counts keys (get_many) or entries (seekrandom) when an op covers several;
    `untimed_ns` is the wall time of a second pass over the same ops with no timer calls.
    """
    ops = len(lat_ns)
    ordered = sorted(lat_ns)
    secs = elapsed_ns / 1e9
    r: Result = {
        "workload": workload,
        "engine": engine,
        "ops": ops,
        "seconds": round(secs, 6),
        "ops_per_s": ops / secs if secs else 0.0,
        "p50_us": percentile(ordered, 0.50) / 1000,
        "p99_us": percentile(ordered, 0.99) / 1000,
        "p999_us": percentile(ordered, 0.999) / 1000,
        "max_us": ordered[-1] / 1000,
        "mean_us": sum(ordered) / ops / 1000,
    }
    if items is not None:
        r["items"] = items
        r["items_per_s"] = items / secs if secs else 0.0
    if untimed_ns is not None:
        r["ops_per_s_untimed"] = ops / (untimed_ns / 1e9)
    r.update(extra)
    return r


def rate(r: Result, *, timed: bool = False) -> float:
    """What a workload is judged by: ops/s of the untimed pass where there is one (the timer
    calls are not part of an op), else of the timed pass; keys/s for get_many."""
    ops = r["ops_per_s"] if timed else r.get("ops_per_s_untimed", r["ops_per_s"])
    if r["workload"] == "get_many":
        return float(ops * r["items"] / r["ops"])
    return float(ops)


def line(r: Result) -> str:
    """One console line for a result: ops/s of the untimed pass, then of the timed pass."""
    ops = r.get("ops_per_s_untimed", r["ops_per_s"])
    extra = f"  {r['items_per_s']:>12,.0f} items/s (timed)" if "items_per_s" in r else ""
    return (
        f"{r['workload']:<20} {r['engine']:<14} {ops:>12,.0f} ops/s ({r['ops_per_s']:>10,.0f} "
        f"timed)  p50 {r['p50_us']:>8.2f}  p99 {r['p99_us']:>8.2f}  p999 {r['p999_us']:>9.2f} µs"
        + extra
    )


# -- machine --------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for row in f:
                if row.startswith("model name"):
                    return row.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _fstype(path: str) -> str:
    """The file system type of the mount holding `path` (from /proc/mounts), or 'unknown'."""
    path = os.path.realpath(path)
    best, kind = "", "unknown"
    try:
        with open("/proc/mounts") as f:
            for row in f:
                parts = row.split()
                mnt = parts[1]
                inside = path == mnt or path.startswith(mnt.rstrip("/") + "/")
                if inside and len(mnt) > len(best):
                    best, kind = mnt, f"{parts[2]} ({parts[0]} on {mnt})"
    except OSError:
        pass
    return kind


def _git(repo: str) -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", repo, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", repo, "status", "--porcelain", "--", "aiokv"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + (" with uncommitted changes in aiokv/" if dirty else "")


def machine(data_dir: str, loop: str, repo: str) -> dict[str, Any]:
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count() or 0
    return {
        "nproc": affinity,
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "loop": loop,
        "data_dir": data_dir,
        "data_fs": _fstype(data_dir),
        "aiokv_revision": _git(repo),
    }


# -- ratios and targets ---------------------------------------------------------------------------


def find(results: list[Result], workload: str, engine: str) -> Result | None:
    for r in results:
        if r["workload"] == workload and r["engine"] == engine:
            return r
    return None


def add_ratios(results: list[Result], peers: list[str]) -> None:
    """Adds to each aiokv result its ratio to the dict-await ceiling and to each peer."""
    ceiling = find(results, "baseline_dict_await", "python")
    for r in results:
        if r["engine"] != "aiokv":
            continue
        ratios: dict[str, float] = {}
        if ceiling is not None:
            ratios["dict_await"] = rate(r) / rate(ceiling)
        for peer in peers:
            p = find(results, r["workload"], peer)
            if p is not None:
                ratios[peer] = rate(r) / rate(p)
        if r["workload"] == "syncput_1000w":
            disk = find(results, "disk_write_fdatasync", "os")
            if disk is not None:
                ratios["p99_vs_disk_p99"] = r["p99_us"] / disk["p99_us"]
                ratios["acks_per_disk_sync"] = r["ops_per_s"] / disk["ops_per_s"]
        r["ratios"] = ratios


def targets(results: list[Result]) -> list[dict[str, Any]]:
    """Checks the issue's targets, absolute and as ratios to the same run's baselines."""
    out: list[dict[str, Any]] = []
    ceiling = find(results, "baseline_dict_await", "python")
    dict_rate = rate(ceiling) if ceiling else None

    def check(what: str, r: Result | None, target: float, reference: float) -> None:
        if r is None:
            return
        got = rate(r)
        row: dict[str, Any] = {
            "target": what,
            "workload": r["workload"],
            "measured": got,
            "absolute_target": target,
            "absolute_met": got >= target,
            "ratio_target": target / reference,
        }
        if dict_rate:
            row["measured_ratio"] = got / dict_rate
            row["ratio_met"] = got / dict_rate >= target / reference
        out.append(row)

    get = find(results, "readrandom", "aiokv")
    check("await db.get (present key) >= 600K ops/s", get, TARGET_GET, REF_DICT_AWAIT)
    if get is not None:
        out.append({
            "target": "await db.get p99 < 10 µs",
            "workload": "readrandom",
            "measured": get["p99_us"],
            "absolute_target": TARGET_GET_P99_US,
            "absolute_met": get["p99_us"] < TARGET_GET_P99_US,
        })  # fmt: skip
    lm = find(results, "readrandom", "lmdb")
    if get is not None and lm is not None:
        out.append({
            "target": "db.get vs lmdb get (reference 600K vs 575K)",
            "workload": "readrandom",
            "measured": rate(get) / rate(lm),
            "ratio_target": TARGET_GET / REF_LMDB_GET,
            "ratio_met": rate(get) / rate(lm) >= TARGET_GET / REF_LMDB_GET,
        })  # fmt: skip
    check(
        "get_many >= 2M keys/s", find(results, "get_many", "aiokv"), TARGET_GET_MANY, REF_DICT_AWAIT
    )
    for w in ("fillseq", "fillrandom", "overwrite"):
        put = find(results, w, "aiokv")
        check("await db.put default >= 300K ops/s", put, TARGET_PUT, REF_DICT_AWAIT)
        pl = find(results, w, "plyvel")
        if put is not None and pl is not None:
            out.append({
                "target": "db.put vs plyvel put (reference 300K vs 388K)",
                "workload": w,
                "measured": rate(put) / rate(pl),
                "ratio_target": TARGET_PUT / REF_PLYVEL_PUT,
                "ratio_met": rate(put) / rate(pl) >= TARGET_PUT / REF_PLYVEL_PUT,
            })  # fmt: skip
    sp = find(results, "syncput_1000w", "aiokv")
    check("synced puts, 1000 writers >= 200K/s", sp, TARGET_SYNC_PUT, REF_DICT_AWAIT)
    disk = find(results, "disk_write_fdatasync", "os")
    if sp is not None and disk is not None:
        out.append({
            "target": "synced put p99 <= 2x disk write+fdatasync p99",
            "workload": "syncput_1000w",
            "measured": sp["p99_us"] / disk["p99_us"],
            "ratio_target": TARGET_SYNC_P99_X_DISK,
            "ratio_met": sp["p99_us"] <= TARGET_SYNC_P99_X_DISK * disk["p99_us"],
        })  # fmt: skip
    return out


# -- tables ---------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def markdown_table(results: list[Result], peers: list[str]) -> str:
    """Every result as one markdown row; aiokv rows carry their ratios."""
    cols = ["dict_await", *peers]
    head = (
        "| workload | engine | ops/s | ops/s, timed pass | p50 µs | p99 µs | p999 µs | "
        + " | ".join(f"÷ {c.replace('_', '-')}" for c in cols)
        + " |"
    )
    rows = [head, "|" + "---|" * (7 + len(cols))]
    for r in results:
        ops = f"{r.get('ops_per_s_untimed', r['ops_per_s']):,.0f}"
        if "items_per_s" in r:
            per = r.get("ops_per_s_untimed", r["ops_per_s"]) * r["items"] / r["ops"]
            ops += f" ({per:,.0f} {'keys' if r['workload'] == 'get_many' else 'items'}/s)"
        ratios = r.get("ratios", {})
        cells = [f"{ratios[c]:.2f}" if c in ratios else "" for c in cols]
        rows.append(
            f"| {r['workload']} | {r['engine']} | {ops} | {r['ops_per_s']:,.0f} | "
            f"{_fmt(r['p50_us'])} | {_fmt(r['p99_us'])} | {_fmt(r['p999_us'])} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(rows)


def markdown_targets(rows: list[dict[str, Any]]) -> str:
    out = [
        "| target | workload | measured | absolute target | met | ratio target | "
        "measured ratio | met |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def yn(v: Any) -> str:
        return "" if v is None else ("yes" if v else "**no**")

    for t in rows:
        absolute = t.get("absolute_target")
        ratio_t = t.get("ratio_target")
        ratio_m = t.get("measured_ratio")
        if absolute is None and ratio_t is not None:  # a pure ratio row
            ratio_m, measured = t["measured"], ""
        else:
            measured = _fmt(t["measured"])
        out.append(
            f"| {t['target']} | {t['workload']} | {measured} | "
            f"{'' if absolute is None else _fmt(absolute)} | {yn(t.get('absolute_met'))} | "
            f"{'' if ratio_t is None else f'{ratio_t:.3f}'} | "
            f"{'' if ratio_m is None else f'{ratio_m:.3f}'} | {yn(t.get('ratio_met'))} |"
        )
    return "\n".join(out)
