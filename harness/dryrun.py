"""`run.dry_run=true`: print what a sweep would do (every point with its predicted seconds, the
ones preflight would skip and why, the ones a previous session already recorded, the predicted
time by measurement) and run nothing. For checking a long GPU sweep before spending the GPU on
it. Predictions are the pool's scheduling estimates (harness.pool.expected_seconds: the cost
model at round sustained rates), good to a factor of about two, not measurements."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from harness.pool import ESTIMATED, expected_seconds, slots_for
from harness.store import latest_by_hash, read_run
from suites.frontier import implied_by_plan


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def describe(p, results_dir: str) -> str:
    """p: a session.Prepared. One line per point, then the counts."""
    run_dir = Path(results_dir) / p.run_id
    done = latest_by_hash(read_run(run_dir)) if run_dir.exists() else {}
    lines = [f"dry run {p.run_id}: {len(p.planned)} points on {p.hw.name} ({p.hw.device})"]
    counts: Counter[str] = Counter()
    predicted: dict[str, float] = {}
    unestimated: set[str] = set()
    will_run = [x.point for x in p.planned if not x.skip_reason]
    for item in p.planned:
        previous = done.get(item.point.hash)
        if previous is not None:
            what = f"recorded: {previous['status']}"
            counts["already recorded"] += 1
        elif item.skip_reason:
            what = f"would skip: {item.skip_reason.splitlines()[0]}"
            counts["would skip"] += 1
        else:
            counts["would run"] += 1
            what = "would run"
            suite = item.point.suite
            if suite in ESTIMATED:
                # a frontier search reuses the lengths its sweep runs (suites.frontier)
                implied = implied_by_plan(item.point, will_run) if suite == "frontier" else 0
                seconds = expected_seconds(item.point, implied)
                predicted[suite] = predicted.get(suite, 0.0) + seconds
                what += f" (~{_minutes(seconds)})"
            else:
                unestimated.add(suite)
        lines.append(f"  {item.point.label()}  {what}")
    order = ("would run", "would skip", "already recorded")
    lines.append("; ".join(f"{counts[k]} {k}" for k in order if counts[k]) + "; nothing was run")
    if predicted:
        total, slots = sum(predicted.values()), len(slots_for(p.hw))
        parts = ", ".join(f"{k} {_minutes(v)}" for k, v in sorted(predicted.items()))
        lines.append(
            f"predicted (cost model, round figures): {parts}; {_minutes(total)} of worker time, "
            f"at least {_minutes(total / slots)} on {slots} worker slot(s)"
        )
    if unestimated:
        lines.append(f"no time estimate for {', '.join(sorted(unestimated))} (training suites)")
    return "\n".join(lines)
