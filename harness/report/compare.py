"""Two runs side by side (two GPUs, two commits, two kernel backends): the same points matched,
the ratio B/A of each point's headline metric with a 95% interval, and a flag where the
difference is larger than the run-to-run spread.

Matching: points agree on suite, model, size, length, batch, dtype and suite settings; the backend
is matched too when both runs have it, and dropped from the key when that pairs points one to one
(two runs of different kernel backends).

Spread: no ctxbench run repeats itself, so the spread is estimated from within each run: the
larger of the two points' p90/p50 - 1 (from their raw samples). A difference is flagged when the
ratio's bootstrap interval excludes 1 *and* the ratio is further from 1 than that spread. Metrics
without samples use a fixed tolerance (TOLERANCE) and say so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.report import stats
from harness.report.facts import Facts

# suite -> (metric, what, higher is better)
HEADLINE = {
    "prefill": ("time_ms", "time to first token", False),
    "decode": ("time_ms", "decode latency p50", False),
    "kernels": ("time_ms", "kernel time", False),
    "throughput": ("tokens_per_s", "tokens/s at the largest batch", True),
    "memory": ("peak_bytes", "peak memory", False),
    "frontier": ("max_context", "largest length that ran", True),
    "mqar": ("accuracy", "accuracy", True),
    "niah": ("accuracy", "accuracy", True),
    "perplexity": ("bpb", "bits per byte", False),
}
TOLERANCE = {
    "peak_bytes": 0.02,
    "max_context": 0.0,
    "accuracy": 0.02,
    "bpb": 0.01,
    "tokens_per_s": 0.05,
}
KEY = [
    "suite",
    "model",
    "size",
    "context",
    "batch",
    "dtype",
    "phase",
    "decode_step",  # a fused step against a plain one is a different measurement, not a change
    "width",
    "kv_pairs",
    "depth",
    "train_length",
]


@dataclass
class Row:
    suite: str
    model: str
    size: str
    context: int
    batch: int
    dtype: str
    backend_a: str
    backend_b: str
    status_a: str
    status_b: str
    what: str
    a: float | None
    b: float | None
    ratio: stats.Estimate | None
    spread: float | None  # relative, or the fixed tolerance
    flag: str  # "" | "faster" | "slower" | "better" | "worse" | "status"
    hash_a: str
    hash_b: str
    note: str = ""


@dataclass
class Comparison:
    run_a: str
    run_b: str
    env_a: str
    env_b: str
    env_diff: list[tuple[str, str, str]]
    rows: list[Row] = field(default_factory=list)
    only_a: int = 0
    only_b: int = 0

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows:
            out[r.flag or "same"] = out.get(r.flag or "same", 0) + 1
        return dict(sorted(out.items()))

    def geomean(self) -> list[tuple[str, float, int]]:
        """Per suite: geometric mean of B/A over points both ran (headline metric)."""
        out = []
        for suite in sorted({r.suite for r in self.rows}):
            rs = [
                r.ratio.value
                for r in self.rows
                if r.suite == suite and r.ratio and r.ratio.value > 0
            ]
            if rs:
                out.append((suite, math.exp(sum(math.log(x) for x in rs) / len(rs)), len(rs)))
        return out


def _keyed(df: pd.DataFrame, with_backend: bool) -> pd.DataFrame:
    cols = KEY + (["backend"] if with_backend else [])
    key = ["|".join(map(str, t)) for t in zip(*(df[c] for c in cols), strict=True)]
    return df.assign(_key=key)


def match(a: pd.DataFrame, b: pd.DataFrame) -> list[tuple[dict, dict]]:
    ka, kb = _keyed(a, True), _keyed(b, True)
    pairs = ka.merge(kb, on="_key", suffixes=("_a", "_b"))
    done_a, done_b = set(pairs["hash_a"]), set(pairs["hash_b"])
    ra, rb = a[~a["hash"].isin(done_a)], b[~b["hash"].isin(done_b)]
    la, lb = _keyed(ra, False), _keyed(rb, False)
    ua = la[~la["_key"].duplicated(keep=False)]
    ub = lb[~lb["_key"].duplicated(keep=False)]
    loose = ua.merge(ub, on="_key", suffixes=("_a", "_b"))
    both = pd.concat([pairs, loose], ignore_index=True)
    out = []
    for r in both.to_dict("records"):
        out.append(
            (
                {k[:-2]: v for k, v in r.items() if k.endswith("_a")},
                {k[:-2]: v for k, v in r.items() if k.endswith("_b")},
            )
        )
    return out


def _spread(facts: Facts, row: dict) -> float | None:
    s = facts.run.samples(row["hash"])
    if len(s) >= 10:
        p50, p90 = np.percentile(s, [50, 90])
        return float(p90 / p50 - 1) if p50 > 0 else None
    if row.get("p90_ms") and row.get("time_ms"):
        return float(row["p90_ms"] / row["time_ms"] - 1)
    return None


def compare(fa: Facts, fb: Facts, env_line) -> Comparison:
    keys = ("device_name", "device_memory_bytes", "driver", "cuda", "python")
    ea, eb = fa.run.env, fb.run.env
    diff = [(k, str(ea.get(k)), str(eb.get(k))) for k in keys if ea.get(k) != eb.get(k)]
    for pkg in sorted(set(ea.get("packages") or {}) | set(eb.get("packages") or {})):
        va, vb = (ea.get("packages") or {}).get(pkg), (eb.get("packages") or {}).get(pkg)
        if va != vb:
            diff.append((pkg, str(va), str(vb)))
    ga, gb = ea.get("git") or {}, eb.get("git") or {}
    if (ga.get("sha"), ga.get("dirty")) != (gb.get("sha"), gb.get("dirty")):
        diff.append(
            (
                "git",
                f"{ga.get('sha')}{' dirty' if ga.get('dirty') else ''}",
                f"{gb.get('sha')}{' dirty' if gb.get('dirty') else ''}",
            )
        )
    out = Comparison(fa.run.run_id, fb.run.run_id, env_line(ea), env_line(eb), diff)
    pairs = match(fa.df, fb.df)
    out.only_a = len(fa.df) - len(pairs)
    out.only_b = len(fb.df) - len(pairs)
    for ra, rb in pairs:
        out.rows.append(_row(fa, fb, ra, rb))
    out.rows.sort(
        key=lambda r: (r.suite, r.model, r.size, r.backend_a, r.batch, r.dtype, r.context, r.hash_a)
    )
    return out


def _row(fa: Facts, fb: Facts, ra: dict, rb: dict) -> Row:
    metric, what, higher_better = HEADLINE.get(ra["suite"], ("time_ms", "time", False))
    a, b = ra.get(metric), rb.get(metric)
    a = None if a is None or a != a else float(a)
    b = None if b is None or b != b else float(b)
    base = dict(
        suite=ra["suite"],
        model=ra["model"],
        size=ra["size"],
        context=int(ra["context"]),
        batch=int(ra["batch"]),
        dtype=ra["dtype"],
        backend_a=ra["backend"],
        backend_b=rb["backend"],
        status_a=ra["status"],
        status_b=rb["status"],
        what=what,
        a=a,
        b=b,
        hash_a=ra["hash"],
        hash_b=rb["hash"],
    )
    if ra["status"] != rb["status"]:
        return Row(
            **base, ratio=None, spread=None, flag="status", note=f"{ra['status']} → {rb['status']}"
        )
    if a is None or b is None or a <= 0:
        return Row(**base, ratio=None, spread=None, flag="")
    rep_a, rep_b = fa.reps(pd.Series(ra), metric), fb.reps(pd.Series(rb), metric)
    est = stats.Estimate.from_reps(b / a, None if rep_a is None or rep_b is None else rep_b / rep_a)
    spreads = [s for s in (_spread(fa, ra), _spread(fb, rb)) if s is not None]
    if est.has_ci and spreads:
        spread, note = max(spreads), ""
        differs = (est.lo > 1 or est.hi < 1) and abs(math.log(est.value)) > math.log1p(spread)
    else:
        spread = TOLERANCE.get(metric, 0.05)
        note = f"no samples: fixed tolerance {spread:.0%}"
        differs = abs(est.value - 1) > spread
    flag = ""
    if differs:
        up = est.value > 1
        if metric == "time_ms":
            flag = "slower" if up else "faster"
        else:
            flag = "better" if up == higher_better else "worse"
    return Row(**base, ratio=est, spread=spread, flag=flag, note=note)
