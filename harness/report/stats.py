"""Small statistics the report needs: bootstrap of a median from raw samples, log-log fits and
interpolation. Deterministic: every bootstrap is seeded from the record's hash, so a report does
not depend on the order in which numbers were asked for.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

BOOT = 1000  # replicates: the 2.5/97.5 percentiles move by < 1% of the CI width beyond this
LEVEL = 95


@dataclass(frozen=True)
class Estimate:
    """A measured quantity with a 95% interval (lo == hi == value when no samples back it).
    `bound` is '<' or '>' when only a bound is known (e.g. the other side ran out of memory)."""

    value: float
    lo: float
    hi: float
    bound: str = ""
    note: str = ""

    @classmethod
    def exact(cls, value: float, note: str = "") -> Estimate:
        return cls(value, value, value, "", note)

    @classmethod
    def from_reps(cls, value: float, reps: np.ndarray | None, note: str = "") -> Estimate:
        if reps is None or len(reps) == 0:
            return cls.exact(value, note)
        lo, hi = np.percentile(reps, [(100 - LEVEL) / 2, 100 - (100 - LEVEL) / 2])
        return cls(value, float(min(lo, value)), float(max(hi, value)), "", note)

    @property
    def has_ci(self) -> bool:
        return self.lo != self.hi

    def text(self, fmt=None) -> str:
        """'0.351', '< 0.31', '5.06 [4.77, 5.17]' (the 95% interval in brackets)."""
        fmt = fmt or g3
        if self.bound:
            return f"{self.bound} {fmt(self.value)}"
        ci = f" [{fmt(self.lo)}, {fmt(self.hi)}]" if self.has_ci else ""
        return fmt(self.value) + ci


def g3(v: float) -> str:
    """3 significant digits; float noise around zero (1e-17 from a fit) prints as 0."""
    return "0" if abs(v) < 1e-12 else f"{v:.3g}"


def seed_of(key: str) -> int:
    return zlib.crc32(key.encode())


def _ranks(n: int, qs) -> list[int]:
    """1-based ranks of the q-quantiles used throughout: the ceil(q n)-th smallest (the lower
    median for q = 0.5)."""
    return [min(n, max(1, math.ceil(q * n - 1e-9))) for q in qs]


def boot_order_stats(samples, key: str, qs=(0.5,), n_boot: int = BOOT):
    """Bootstrap of order-statistic quantiles: (replicates [len(qs), n_boot], the statistics of
    the samples themselves [len(qs)]), or None below 3 samples (a resample of fewer says nothing
    about the spread). Replicates of different qs come from the same resamples (jointly).

    Exact without materialising the resamples: a resample picks indices floor(n U_i) of the
    sorted samples with U_i iid uniform, so its rank-k value is the sample at floor(n U_(k)), and
    U_(k) ~ Beta(k, n - k + 1). A higher rank k' continues from it: the n - k uniforms above
    U_(k) are uniform on (U_(k), 1), so U_(k') = U_(k) + (1 - U_(k)) Beta(k' - k, n - k' + 1).
    O(n_boot) per quantile instead of O(n_boot n)."""
    x = np.asarray(samples, dtype=float)
    x = np.sort(x[np.isfinite(x)])
    n = len(x)
    if n < 3:
        return None
    rng = np.random.default_rng(seed_of(key + "/" + ",".join(f"{q:g}" for q in qs)))
    ranks = _ranks(n, qs)
    out = np.empty((len(qs), n_boot))
    u, k_prev = np.zeros(n_boot), 0
    for i in sorted(range(len(qs)), key=lambda i: ranks[i]):
        k = ranks[i]
        if k > k_prev:
            u = u + (1.0 - u) * rng.beta(k - k_prev, n - k + 1, size=n_boot)
            k_prev = k
        out[i] = x[np.minimum((n * u).astype(np.int64), n - 1)]
    return out, x[np.array(ranks) - 1]


def boot_medians(samples, key: str, n_boot: int = BOOT) -> tuple[np.ndarray, float] | None:
    """(replicates of the (lower) median, the samples' own); None below 3 samples."""
    res = boot_order_stats(samples, key, (0.5,), n_boot)
    return None if res is None else (res[0][0], float(res[1][0]))


def boot_quantile_ratio(samples, key: str, q: float, n_boot: int = BOOT):
    """(replicates of quantile(q) / median, the samples' own), e.g. p99/p50; None below 3."""
    res = boot_order_stats(samples, key, (0.5, q), n_boot)
    if res is None:
        return None
    (med, top), (m0, t0) = res
    return top / med, float(t0 / m0)


def loglog_slope(xs, ys) -> np.ndarray | float:
    """Least-squares slope of log(y) on log(x). `ys` is [n] or [B, n] (one fit per row)."""
    lx = np.log(np.asarray(xs, dtype=float))
    ly = np.log(np.asarray(ys, dtype=float))
    lxc = lx - lx.mean()
    slope = ((ly - ly.mean(axis=-1, keepdims=True)) * lxc).sum(axis=-1) / (lxc**2).sum()
    return float(slope) if np.ndim(slope) == 0 else slope


def loglog_interp(x0: float, x1: float, y0, y1, x: float):
    """y at x on the straight line through (x0, y0), (x1, y1) in log-log space."""
    t = (math.log(x) - math.log(x0)) / (math.log(x1) - math.log(x0))
    return np.exp(np.log(y0) + t * (np.log(y1) - np.log(y0)))


def crossing(x0: float, x1: float, d0, d1):
    """Where d (a log ratio, linear in log x between the two lengths) is zero: the log-log
    interpolated crossover. Vectorised over replicates; outside [x0, x1] is clipped to it."""
    d0 = np.asarray(d0, dtype=float)
    d1 = np.asarray(d1, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(d0 == d1, np.where(d0 > 0, 1.0, 0.0), d0 / (d0 - d1))
    t = np.clip(t, 0.0, 1.0)
    return np.exp(math.log(x0) + t * (math.log(x1) - math.log(x0)))
