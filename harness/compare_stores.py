"""Compare two runs of one sweep, e.g. on one GPU and on two: the same points with the same
statuses, skip reasons, backends and metric names, whichever GPU ran them (measured numbers are
measurements: their ratio is printed, not compared). Prints both wall times.

    python -m harness.compare_stores results/<run-a> results/<run-b>

Run the sweep once per GPU set, in the order given, then compare (issue 9's 2-GPU acceptance;
the larger set first, so that the Triton cache the first run fills cannot flatter it):

    python -m harness.compare_stores --sweep --gpus 0,1 --gpus 0 -- suite=scaling size=370m \
        'models=[transformer,mamba2]' 'sweep.context=[4k,16k]' 'suite.measure=[prefill,decode]'

Exit status 0 when the contents agree, 1 when they differ.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from harness.store import latest_by_hash, read_run

# Where and when a point ran, and what it measured, may differ; what was run and how it ended not.
CONTENT = ("point", "status", "backends_ran")


def content(rec: dict[str, Any]) -> dict[str, Any]:
    out = {k: rec.get(k) for k in CONTENT}
    out["metric_names"] = sorted((rec.get("metrics") or {}).keys())
    if rec.get("status") == "skipped":
        out["reason"] = rec.get("reason")
    return out


def differences(a: dict[str, dict], b: dict[str, dict]) -> list[str]:
    """Human-readable differences between two {hash: latest record} maps."""
    out = [f"only in A: {a[h]['point']}" for h in sorted(a.keys() - b.keys())]
    out += [f"only in B: {b[h]['point']}" for h in sorted(b.keys() - a.keys())]
    for h in sorted(a.keys() & b.keys()):
        ca, cb = content(a[h]), content(b[h])
        for key in ca:
            if ca[key] != cb[key]:
                out.append(f"{h} {key}: {ca[key]!r} != {cb[key]!r}")
    return out


def time_ratios(a: dict[str, dict], b: dict[str, dict]) -> list[float]:
    """B / A median time of every point both measured: near 1 when the GPUs are alike."""
    out = []
    for h in a.keys() & b.keys():
        ta = (a[h].get("metrics") or {}).get("time_ms")
        tb = (b[h].get("metrics") or {}).get("time_ms")
        if isinstance(ta, int | float) and isinstance(tb, int | float) and ta > 0:
            out.append(tb / ta)
    return out


def gpus_used(records: dict[str, dict]) -> str:
    seen = Counter(
        f"{r['gpu']['index']}:{r['gpu']['name']}" for r in records.values() if r.get("gpu")
    )
    return ", ".join(f"GPU {k} x{n}" for k, n in sorted(seen.items())) or "no GPU"


def session_wall(run_dir: Path) -> float | None:
    """Seconds the last session's sweep took (report rendering excluded)."""
    try:
        sessions = json.loads((run_dir / "manifest.json").read_text())["sessions"]
        return float(sessions[-1]["wall_s"])
    except (OSError, KeyError, IndexError, TypeError, ValueError):
        return None


def compare(a_dir: Path, b_dir: Path, walls: dict[Path, float] | None = None) -> int:
    a, b = latest_by_hash(read_run(a_dir)), latest_by_hash(read_run(b_dir))
    for name, d, recs in (("A", a_dir, a), ("B", b_dir, b)):
        outside = f", {walls[d]:.1f} s with start-up and report" if walls and d in walls else ""
        wall = session_wall(d)
        wall_text = f"{wall:.1f} s sweep" if wall is not None else "wall unknown"
        print(f"{name}: {d}  {len(recs)} points, {wall_text}{outside}; {gpus_used(recs)}")
    wa, wb = session_wall(a_dir), session_wall(b_dir)
    if wa and wb:
        print(f"wall time B / A: {wb / wa:.2f}")
    ratios = time_ratios(a, b)
    if ratios:
        print(
            f"measured time B / A over {len(ratios)} points: median "
            f"{statistics.median(ratios):.3f}, range {min(ratios):.3f}..{max(ratios):.3f}"
        )
    diff = differences(a, b)
    for line in diff[:50]:
        print("DIFF", line)
    statuses = Counter(r["status"] for r in a.values())
    verdict = "DIFFER" if diff else "agree"
    print(f"contents {verdict}: {len(diff)} difference(s); statuses {dict(statuses)}")
    return 1 if diff else 0


def sweep(
    gpu_sets: list[str], args: list[str], results_dir: str, tag: str, fresh_cache: bool = False
) -> int:
    dirs, walls = [], {}
    for gpus in gpu_sets:
        n = len(gpus.split(","))
        run_id = f"{tag}-{n}gpu"
        run_dir = Path(results_dir) / run_id
        if run_dir.exists():
            sys.exit(f"{run_dir} exists: a resumed run has no wall time; pass another --tag")
        cmd = [sys.executable, "-m", "harness", *args]
        cmd += [f"hardware.gpus=[{gpus}]", f"run.id={run_id}", f"run.results_dir={results_dir}"]
        print("$", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        env = None
        if fresh_cache:  # each sweep compiles its own Triton kernels: neither inherits a warm cache
            env = {**os.environ, "TRITON_CACHE_DIR": str(Path(results_dir) / f".triton-{run_id}")}
        done = subprocess.run(cmd, env=env)
        walls[run_dir] = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"the sweep on GPUs [{gpus}] failed with status {done.returncode}")
        dirs.append(run_dir)
    status = compare(dirs[0], dirs[1], walls)
    few, many = sorted(zip(gpu_sets, dirs, strict=True), key=lambda x: len(x[0].split(",")))
    ws = {d: session_wall(d) for d in dirs}
    for gpus, d in (few, many):
        print(f"GPUs [{gpus}]: sweep {ws[d]:.1f} s, command {walls[d]:.1f} s  ({d.name})")
    if ws[few[1]] and ws[many[1]]:
        print(f"wall GPUs [{many[0]}] / GPUs [{few[0]}]: {ws[many[1]] / ws[few[1]]:.2f}")
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.compare_stores")
    parser.add_argument("runs", nargs="*", help="two results/<run-id> folders (without --sweep)")
    parser.add_argument("--sweep", action="store_true", help="run the sweep (args after --)")
    parser.add_argument("--gpus", action="append", default=[], help="a GPU set, e.g. 0 or 0,1")
    parser.add_argument("--results-dir", default="results")
    parser.add_argument(
        "--fresh-triton-cache",
        action="store_true",
        help="give each sweep an empty Triton cache, so both pay the same compile time",
    )
    parser.add_argument("--tag", default=f"cmp-{time.strftime('%Y%m%d-%H%M%S')}")
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    ns = parser.parse_args(argv[:cut])
    passed = argv[cut + 1 :]  # ctxbench's own overrides, untouched
    if ns.sweep:
        if len(ns.gpus) != 2 or ns.runs:
            parser.error("--sweep needs two --gpus sets and no run folders")
        return sweep(ns.gpus, passed, ns.results_dir, ns.tag, ns.fresh_triton_cache)
    if len(ns.runs) != 2 or passed:
        parser.error("give two run folders, or --sweep --gpus A --gpus B -- <ctxbench args>")
    return compare(Path(ns.runs[0]), Path(ns.runs[1]))


if __name__ == "__main__":
    sys.exit(main())
