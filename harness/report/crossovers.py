"""Where one architecture overtakes another as the context grows.

For two series measured at the same lengths, d(L) = log(metric_a / metric_b) is interpolated
linearly in log L between neighbouring lengths (a straight line on log-log axes); a crossover is a
zero of d between two measured lengths. Its 95% interval comes from bootstrapping the raw samples
of the four points that bracket it: each replicate gives a crossing, clipped to the bracket (a
replicate that does not cross inside it crosses at or beyond an edge, and the interval says so by
reaching that edge). Metrics without samples (memory) get the crossing without an interval.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from harness.report import anchors, arch, stats
from harness.report.facts import Facts, fmt_len, fmt_ratio

# suite -> (metric, what it is in prose, lower is better)
METRICS = {
    "prefill": ("time_ms", "time to first token", True),
    "decode": ("time_ms", "decode latency per token (p50)", True),
    "memory": ("peak_bytes", "peak memory", True),
    "kernels": ("time_ms", "kernel time", True),
}
KERNEL_OPS = ("attention", "ssd", "selective_scan")


@dataclass(frozen=True)
class Crossover:
    suite: str
    what: str
    size: str
    batch: int
    dtype: str
    a: str  # series labels: model, or "op [backend]" for kernels
    b: str
    at: float | None  # tokens; None: no crossover in range
    lo: float | None
    hi: float | None
    below: str  # which of a/b is better below `at` (or everywhere when there is none)
    above: str
    range: tuple[int, int]  # lengths both were measured at
    ratio_range: tuple[float, float]  # better/worse ratio over the range (no-crossover case)
    anchor: str
    model_a: str = ""
    model_b: str = ""
    bracket: tuple[int, int] | None = None  # the measured lengths the crossing lies between

    @property
    def has_ci(self) -> bool:
        return self.lo is not None and self.hi is not None and self.lo != self.hi

    def text(self) -> str:
        if self.at is None:
            lo, hi = self.ratio_range
            span = fmt_ratio(lo) if abs(hi - lo) < 0.05 * lo else f"{fmt_ratio(lo)}-{fmt_ratio(hi)}"
            return (
                f"no crossover in range: {self.below} is better at every length from "
                f"{fmt_len(self.range[0])} to {fmt_len(self.range[1])} (by {span})"
            )
        ci = f"95% CI {fmt_len(self.lo)}-{fmt_len(self.hi)}" if self.has_ci else "no CI: no samples"
        # The interval covers the samples' noise, not the straight-line interpolation between
        # two measured lengths: say which two, so a reader can judge how far apart they are.
        if self.bracket:
            ci += f"; interpolated between measured {fmt_len(self.bracket[0])} and "
            ci += f"{fmt_len(self.bracket[1])}"
        return f"{self.above} overtakes {self.below} at {fmt_len(self.at)} tokens ({ci})"


def _label(model: str, backend: str, kernel: bool) -> str:
    return f"{model} [{backend}]" if kernel else arch.name(model)


def pair(facts: Facts, suite: str, pa: dict, pb: dict, la: str, lb: str, group, anchor: str):
    """Crossovers (or the no-crossover statement) of two series given as {context: row}; [] if
    they share fewer than 2 lengths."""
    metric, what, lower_better = METRICS[suite]
    common = sorted(set(pa) & set(pb))
    if len(common) < 2:
        return []
    d = np.log(
        np.array([pa[x][metric] for x in common], float)
        / np.array([pb[x][metric] for x in common], float)
    )
    if not lower_better:
        d = -d  # d > 0: a is worse
    size, batch, dtype = group
    base = dict(
        suite=suite,
        what=what,
        size=size,
        batch=batch,
        dtype=dtype,
        a=la,
        b=lb,
        range=(common[0], common[-1]),
        anchor=anchor,
    )
    out = []
    for i in range(len(common) - 1):
        if not (d[i] > 0 > d[i + 1] or d[i] < 0 < d[i + 1]):
            continue
        x0, x1 = common[i], common[i + 1]
        at = float(stats.crossing(x0, x1, d[i], d[i + 1]))
        reps = [facts.reps(p[x], metric) for x in (x0, x1) for p in (pa, pb)]
        lo = hi = None
        if all(r is not None for r in reps):
            sign = 1 if lower_better else -1
            d0 = sign * np.log(reps[0] / reps[1])
            d1 = sign * np.log(reps[2] / reps[3])
            lo, hi = np.percentile(stats.crossing(x0, x1, d0, d1), [2.5, 97.5])
            lo, hi = float(min(lo, at)), float(max(hi, at))
        worse_below = la if d[i] > 0 else lb
        better_below = lb if d[i] > 0 else la
        out.append(
            Crossover(
                **base,
                at=at,
                lo=lo,
                hi=hi,
                below=better_below,
                above=worse_below,
                ratio_range=(0.0, 0.0),
                bracket=(x0, x1),
            )
        )
    if not out and not np.any(d == 0):
        better = lb if d[0] > 0 else la
        ratios = np.exp(np.abs(d))
        out.append(
            Crossover(
                **base,
                at=None,
                lo=None,
                hi=None,
                below=better,
                above=better,
                ratio_range=(float(ratios.min()), float(ratios.max())),
            )
        )
    return out


def _fastest_backend(facts: Facts, op: str, group) -> str | None:
    """The backend of `op` with the lowest geometric-mean time over the lengths all ran at
    (memoised: figures, crossovers and the ledger all ask)."""
    key = ("fastest", op, tuple(group))
    if key in facts._rows:
        return facts._rows[key]
    size, batch, dtype = group
    rows = facts.rows("kernels", model=op, size=size, batch=batch, dtype=dtype)
    rows = rows[rows["time_ms"].notna()]
    by: dict[str, dict[int, float]] = {}
    for b, L, t in zip(rows["backend"], rows["context"], rows["time_ms"], strict=True):
        by.setdefault(b, {})[int(L)] = float(t)
    best = None
    if by:
        shared = set.intersection(*(set(s) for s in by.values()))
        if not shared:
            best = max(sorted(by), key=lambda b: len(by[b]))
        else:
            score = {b: sum(math.log(s[x]) for x in shared) for b, s in by.items()}
            best = min(sorted(score), key=score.get)
    facts._rows[key] = best
    return best


def all_crossovers(facts: Facts) -> list[Crossover]:
    out: list[Crossover] = []
    for suite in ("prefill", "decode", "memory"):
        metric = METRICS[suite][0]
        for group in facts.groups(suite):
            size, batch, dtype = group
            where = dict(size=size, batch=batch, dtype=dtype)
            models = facts.models(suite, **where)
            for a, b in itertools.combinations(models, 2):
                sa = facts.points(suite, a, metric, **where)
                sb = facts.points(suite, b, metric, **where)
                anchor = anchors.figure(suite, size, batch, dtype)
                for x in pair(facts, suite, sa, sb, arch.name(a), arch.name(b), group, anchor):
                    out.append(_with_models(x, a, b))
    for group in facts.groups("kernels"):
        size, batch, dtype = group
        chosen = [(op, _fastest_backend(facts, op, group)) for op in KERNEL_OPS]
        chosen = [(op, be) for op, be in chosen if be]
        for (a, ba), (b, bb) in itertools.combinations(chosen, 2):
            where = dict(size=size, batch=batch, dtype=dtype)
            sa = facts.points("kernels", a, backend=ba, **where)
            sb = facts.points("kernels", b, backend=bb, **where)
            la, lb = _label(a, ba, True), _label(b, bb, True)
            anchor = anchors.figure("kernels", size, batch, dtype, "all")
            out.extend(
                _with_models(x, a, b) for x in pair(facts, "kernels", sa, sb, la, lb, group, anchor)
            )
    return out


def _with_models(x: Crossover, a: str, b: str) -> Crossover:
    from dataclasses import replace

    return replace(x, model_a=a, model_b=b)
