"""`run.dry_run=true`: print what a sweep would do (every point, the ones preflight would skip
and why, the ones a previous session already recorded) and run nothing. For checking a long GPU
sweep before spending the GPU on it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.store import latest_by_hash, read_run


def describe(p, results_dir: str) -> str:
    """p: a session.Prepared. One line per point, then the counts."""
    run_dir = Path(results_dir) / p.run_id
    done = latest_by_hash(read_run(run_dir)) if run_dir.exists() else {}
    lines = [f"dry run {p.run_id}: {len(p.planned)} points on {p.hw.name} ({p.hw.device})"]
    counts: Counter[str] = Counter()
    for item in p.planned:
        previous = done.get(item.point.hash)
        if previous is not None:
            what = f"recorded: {previous['status']}"
            counts["already recorded"] += 1
        elif item.skip_reason:
            what = f"would skip: {item.skip_reason.splitlines()[0]}"
            counts["would skip"] += 1
        else:
            what = "would run"
            counts["would run"] += 1
        lines.append(f"  {item.point.label()}  {what}")
    order = ("would run", "would skip", "already recorded")
    lines.append("; ".join(f"{counts[k]} {k}" for k in order if counts[k]) + "; nothing was run")
    return "\n".join(lines)
