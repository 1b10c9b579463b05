"""Questions the summary, crossovers and ledger ask of a run, answered in one place.

A *series* is the ok points of one model (or kernel op + backend) in one group (suite, size,
batch, dtype), one row per context length. An *estimate* of a metric at a point carries a 95%
interval from the bootstrap of the point's raw samples where the metric is a function of the
median time, and no interval where it is not (memory, energy, accuracy).
"""

from __future__ import annotations

import math
from functools import cached_property

import numpy as np
import pandas as pd

from harness.report import arch, stats
from harness.report.data import FAILED, Run

# metric -> exponent of the median time it is proportional to, for the same point (tokens/s,
# FLOP/s and bytes/s are work / time; the work does not depend on the samples).
FROM_TIME = {"time_ms": 1, "tokens_per_s": -1, "tflops": -1, "gbps": -1, "mfu": -1, "mbu": -1}

FAMILY_ORDER = ["transformer", "mamba2", "mamba1", "hybrid"]
# what a point lookup carries (pandas' to_dict over every column costs more than the lookups)
ROW_KEYS = (
    "suite",
    "model",
    "size",
    "backend",
    "context",
    "batch",
    "dtype",
    "status",
    "hash",
    "time_ms",
    "p90_ms",
    "p99_ms",
    "samples",
    "batch_capped",  # throughput: a bound, not a value (ledger ratios)
)


def family_rank(model: str) -> tuple:
    fam = arch.family(model)
    return (FAMILY_ORDER.index(fam) if fam in FAMILY_ORDER else len(FAMILY_ORDER), model)


class Facts:
    def __init__(self, run: Run):
        self.run = run
        self.df = run.df
        self._reps: dict[tuple[str, str], np.ndarray | None] = {}
        self._rows: dict[tuple, pd.DataFrame] = {}
        self.notes: list[str] = []  # what the figures left out, for the report to say

    @cached_property
    def ok(self) -> pd.DataFrame:
        return self.df[self.df["status"] == "ok"]

    @cached_property
    def device_name(self) -> str:
        return str(self.run.env.get("device_name") or "this device")

    def suites(self) -> list[str]:
        return sorted(self.df["suite"].unique())

    def rows(self, suite: str, ok: bool = True, **where) -> pd.DataFrame:
        """Rows of one suite (ok only by default) matching `where` (None matches anything).
        Memoised: the figures, crossovers and ledger ask the same questions many times."""
        conds = tuple(sorted((k, v) for k, v in where.items() if v is not None))
        key = (suite, ok, conds)
        if key not in self._rows:
            if (suite, ok) not in self._rows:
                df = self.ok if ok else self.df
                self._rows[(suite, ok)] = df[df["suite"].to_numpy() == suite]
            df = self._rows[(suite, ok)]
            mask = np.ones(len(df), dtype=bool)
            for k, v in conds:
                mask &= df[k].to_numpy() == v
            self._rows[key] = df[mask] if conds else df
        return self._rows[key]

    def suite_reach(self, model: str, phase: str, size, batch, dtype) -> float:
        """The longest context the phase's own suite (prefill or decode) ran for this model: a
        frontier search cut by its time limit can stop below a length that suite measured."""
        rows = self.rows(phase, model=model, size=size, batch=batch, dtype=dtype)
        return float(rows["context"].max()) if len(rows) else float("nan")

    def groups(self, suite: str) -> list[tuple[str, int, str]]:
        """(size, batch, dtype) of every group with an ok point in `suite`, ordered."""
        if ("groups", suite) not in self._rows:
            rows = self.rows(suite)
            keys = set(zip(rows["size"], rows["batch"], rows["dtype"], strict=True))
            self._rows[("groups", suite)] = sorted((str(s), int(b), str(d)) for s, b, d in keys)
        return list(self._rows[("groups", suite)])

    def models(self, suite: str, ok: bool = True, **where) -> list[str]:
        return sorted(self.rows(suite, ok=ok, **where)["model"].unique(), key=family_rank)

    def pick(self, fam: str, suite: str, **where) -> str | None:
        """The preset standing for a family in claims: the canonical one if it has points (failed
        ones count: a Transformer that ran out of memory is still the one compared)."""
        present = [m for m in self.models(suite, ok=False, **where) if arch.family(m) == fam]
        if not present:
            return None
        canon = arch.CANONICAL.get(fam)
        return canon if canon in present else present[0]

    def series(self, suite: str, model: str, metric: str = "time_ms", **where) -> pd.DataFrame:
        """ok rows with `metric`, one per context (the fastest backend when several ran)."""
        key = ("series", suite, model, metric, tuple(sorted(where.items())))
        if key not in self._rows:
            rows = self.rows(suite, model=model, **where)
            vals = rows[metric].to_numpy(dtype=float, na_value=np.nan)
            ctx, t, be = (
                rows["context"].tolist(),
                rows["time_ms"].tolist(),
                rows["backend"].tolist(),
            )
            inf = float("inf")
            order = sorted(
                (i for i in range(len(rows)) if vals[i] == vals[i]),
                key=lambda i: (ctx[i], t[i] if t[i] == t[i] else inf, be[i]),
            )
            keep, seen = [], set()
            for i in order:  # pandas sort + drop_duplicates, at a tenth of the cost on small frames
                if ctx[i] not in seen:
                    seen.add(ctx[i])
                    keep.append(i)
            self._rows[key] = rows.iloc[keep]
        return self._rows[key]

    def points(self, suite: str, model: str, metric: str = "time_ms", **where) -> dict[int, dict]:
        """`series` as {context: row dict}: what lookups by length want (a pandas row per lookup
        costs more than the arithmetic done with it)."""
        key = ("points", suite, model, metric, tuple(sorted(where.items())))
        if key not in self._rows:
            s = self.series(suite, model, metric, **where)
            cols = [c for c in dict.fromkeys((*ROW_KEYS, metric)) if c in s.columns]
            rows = (
                dict(zip(cols, vals, strict=True))
                for vals in zip(*(s[c].tolist() for c in cols), strict=True)
            )
            self._rows[key] = {int(r["context"]): r for r in rows}
        return self._rows[key]

    def failures(self, suite: str, model: str, **where) -> pd.DataFrame:
        key = ("failures", suite, model, tuple(sorted(where.items())))
        if key not in self._rows:
            rows = self.rows(suite, ok=False, model=model, **where)
            self._rows[key] = rows[rows["status"].isin(FAILED)].sort_values("context")
        return self._rows[key]

    def reps(self, row, metric: str) -> np.ndarray | None:
        """Bootstrap replicates of `metric` at one point, from its raw time samples."""
        sign = FROM_TIME.get(metric)
        value = row[metric]
        if sign is None or value is None or not np.isfinite(value):
            return None
        key = (row["hash"], metric)
        if key not in self._reps:
            boot = stats.boot_medians(self.run.samples(row["hash"]), row["hash"])
            if boot is None or boot[1] <= 0:
                self._reps[key] = None
            else:
                med, center = boot
                self._reps[key] = value * (med / center) ** sign
        return self._reps[key]

    def estimate(self, row, metric: str) -> stats.Estimate:
        return stats.Estimate.from_reps(float(row[metric]), self.reps(row, metric))

    def ratio(self, num_row, den_row, metric: str) -> stats.Estimate:
        """num/den with a CI from independent bootstraps of the two points."""
        a, b = float(num_row[metric]), float(den_row[metric])
        ra, rb = self.reps(num_row, metric), self.reps(den_row, metric)
        if ra is None or rb is None:
            return stats.Estimate.exact(a / b)
        return stats.Estimate.from_reps(a / b, ra / rb)

    def at(self, points: dict[int, dict], context: int, metric: str) -> tuple[dict, str] | None:
        """The row at `context`, or a synthetic row interpolated log-log between the two measured
        lengths around it (replicates interpolated alike); None outside the measured range."""
        if context in points:
            return points[context], ""
        below = [L for L in points if L < context]
        above = [L for L in points if L > context]
        if not below or not above:
            return None
        r0, r1 = points[max(below)], points[min(above)]
        x0, x1 = r0["context"], r1["context"]
        row = dict(r0)
        row[metric] = float(stats.loglog_interp(x0, x1, r0[metric], r1[metric], context))
        # a bound on either side makes the interpolated value a bound too
        row["batch_capped"] = flag(r0.get("batch_capped")) or flag(r1.get("batch_capped"))
        row["context"] = context
        row["hash"] = f"{r0['hash']}~{r1['hash']}@{context}"
        rep0, rep1 = self.reps(r0, metric), self.reps(r1, metric)
        self._reps[(row["hash"], metric)] = (
            None
            if rep0 is None or rep1 is None
            else stats.loglog_interp(x0, x1, rep0, rep1, context)
        )
        return row, f"interpolated between {fmt_len(x0)} and {fmt_len(x1)}"


def fmt_len(n) -> str:
    """Context lengths in prose: 24576 -> '24K', 1000 -> '1000', 23100.4 -> '22.6K'."""
    from harness.units import format_length

    n = float(n)
    if n != n:
        return "–"
    if n == int(n) and format_length(int(n)) != str(int(n)):
        return format_length(int(n))
    for suffix, scale in (("M", 1024**2), ("K", 1024)):
        if n >= scale:
            v = n / scale
            return f"{v:.3g}{suffix}" if v < 100 else f"{v:.0f}{suffix}"
    return f"{n:.0f}"


def fmt_ms(ms: float) -> str:
    if ms >= 1000:
        return f"{ms / 1000:.3g} s"
    if ms >= 1:
        return f"{ms:.3g} ms"
    return f"{ms * 1000:.3g} µs"


def fmt_ratio(r: float) -> str:
    return f"{r:.2g}×" if r < 10 else f"{r:.0f}×"


def geo(values) -> float:
    v = [x for x in values if x and x > 0]
    return math.exp(sum(math.log(x) for x in v) / len(v)) if v else float("nan")


def flag(v) -> bool:
    """A yes/no column's value: None and NaN (a record without it) read as no."""
    return v is not None and v == v and bool(v)


def ran_beyond_search(mx: float, reach: float, time_limited: bool) -> bool:
    """A time-limited search's largest length is not the frontier when the suite ran longer."""
    return time_limited and reach == reach and (mx != mx or reach > mx)


def frontier_end(first_failure: float, time_limited: bool) -> str:
    """How a frontier search ended above its largest length that ran: a failure it saw, or a
    probe it did not run because the cost model put it past the probe's time limit."""
    if time_limited:
        return f"not tried at {fmt_len(first_failure)}: time limit"
    return f"fails at {fmt_len(first_failure)}"
