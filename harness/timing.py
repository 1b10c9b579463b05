"""Timing per MEASUREMENT.md: cold start apart, warmup, min-count + min-duration repetition,
raw samples kept, percentiles only where the sample count supports them.

On a GPU each call is bracketed by CUDA events on the current stream; on the CPU by
`time.perf_counter_ns` (the call is synchronous there). Host clocks only bound the loop.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

L2_FLUSH_BYTES = 256 * 1024**2  # larger than any current L2 (H100: 50 MB)
# ~0.1 ms at H100 clocks, longer than the host takes to launch an SDPA call: without it, cuDNN
# attention at 1K tokens timed 0.023 ms at best but 0.048 ms median on the H100 (2026-11-22).
SPIN_CYCLES = 200_000


@dataclass
class TimingConfig:
    warmup: int = 3  # untimed calls after the cold one
    min_reps: int = 10  # repeat until both min_reps and min_time_s are reached ...
    min_time_s: float = 1.0
    max_time_s: float = 10.0  # ... unless this cap is hit first (slow points)
    max_reps: int = 2000
    flush_l2: bool = True  # overwrite L2 before each timed call, as triton's do_bench does
    # Hold the stream with a short spin kernel before each start event, so the call's launches
    # are queued before its clock starts: times GPU execution, not host launch gaps (nvbench's
    # blocking kernel). Turn off for end-to-end latencies where host overhead is part of it.
    queue_ahead: bool = True

    def __post_init__(self) -> None:
        for name in ("warmup", "min_reps", "max_reps"):
            if getattr(self, name) < 0:
                raise ValueError(f"timing.{name} must be >= 0, got {getattr(self, name)}")
        if self.min_reps < 1 or self.max_reps < self.min_reps:
            raise ValueError("timing: need 1 <= min_reps <= max_reps")
        if self.max_time_s < self.min_time_s:
            raise ValueError("timing.max_time_s must be >= timing.min_time_s")

    @classmethod
    def from_pairs(cls, pairs) -> TimingConfig:
        """Rebuild from a Point's frozen `timing` pairs."""
        return cls(**dict(pairs))


@dataclass
class Samples:
    cold_ms: float  # the first call: JIT, autotune, cuDNN plan, allocator growth
    samples_ms: list[float] = field(default_factory=list)
    warmup_calls: int = 0
    stopped_by: str = ""  # min_reached | max_time | max_reps

    def summary(self) -> dict[str, Any]:
        return summarize(self.samples_ms)


def _clock(device: str):
    """(start, stop, read) where read() returns the elapsed milliseconds of a start/stop pair."""
    if device == "cuda":

        def start():
            e = torch.cuda.Event(enable_timing=True)
            e.record()
            return e

        def read(a, b) -> float:
            return a.elapsed_time(b)

        return start, start, read

    def stamp():
        return time.perf_counter_ns()

    return stamp, stamp, lambda a, b: (b - a) / 1e6


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def cold_call(fn: Callable[[], Any], device: str) -> tuple[Any, float]:
    """The first call, timed on its own: (its return value, milliseconds). For callers that need
    the first call's output (a canary) or its memory peak; pass the time to time_fn."""
    start, stop, read = _clock(device)
    synchronize(device)
    a = start()
    out = fn()
    b = stop()
    synchronize(device)
    return out, read(a, b)


def time_fn(
    fn: Callable[[], Any], timing: Any, device: str, cold_ms: float | None = None
) -> Samples:
    """Time `fn` per the repetition rules in `timing` (a TimingConfig or anything alike).
    cold_ms: the caller already made the cold call (see cold_call); it is not made again."""
    start, stop, read = _clock(device)
    flush = None
    if device == "cuda" and timing.flush_l2:
        flush = torch.empty(L2_FLUSH_BYTES, dtype=torch.int8, device="cuda")

    spin = device == "cuda" and timing.queue_ahead
    if cold_ms is None:
        cold_ms = cold_call(fn, device)[1]
    result = Samples(cold_ms=cold_ms)

    # Warmup is bounded by time, the cold call included: a call slower than a quarter of the cap
    # (a 1M-token prefill takes minutes) is not warmed up again: its JIT and plans are done and
    # clocks settle within it, while each extra call costs minutes of the sweep.
    t0 = time.perf_counter() - cold_ms / 1e3
    for _ in range(timing.warmup):
        if time.perf_counter() - t0 > timing.max_time_s / 4:
            break
        fn()
        result.warmup_calls += 1
    synchronize(device)

    t0 = time.perf_counter()
    block = 1
    while True:
        pairs = []
        for _ in range(block):
            if flush is not None:
                flush.zero_()
            if spin:
                torch.cuda._sleep(SPIN_CYCLES)
            a = start()
            fn()
            pairs.append((a, stop()))
        synchronize(device)
        result.samples_ms.extend(read(a, b) for a, b in pairs)
        n, total = len(result.samples_ms), sum(result.samples_ms)
        elapsed = time.perf_counter() - t0
        if n >= timing.min_reps and total >= timing.min_time_s * 1e3:
            result.stopped_by = "min_reached"
            break
        if n >= timing.max_reps:
            result.stopped_by = "max_reps"
            break
        per_call = max(total / n, 1e-3) / 1e3
        # The cap holds against min_reps: no call that would end past it is started (a 256K
        # Transformer prefill takes 14 s; five of them were 70 s for one point of a sweep).
        if elapsed + per_call > timing.max_time_s:
            result.stopped_by = "max_time"
            break
        # Grow the block so that short calls are not dominated by host synchronisation, but
        # never past the cap.
        remaining = max(timing.min_time_s - total / 1e3, 0.0)
        block = int(min(max(timing.min_reps - n, remaining / per_call, 1), 64, timing.max_reps - n))
        block = max(min(block, int((timing.max_time_s - elapsed) / per_call)), 1)
    return result


def min_count(q: float) -> int:
    """Fewest samples for which the q-quantile is not just the maximum: 1 / (1 - q)."""
    return math.ceil(1.0 / (1.0 - q) - 1e-9)


def percentile(samples: list[float], q: float) -> float | None:
    """Linear-interpolated q-quantile, or None when len(samples) < min_count(q)."""
    if len(samples) < max(min_count(q), 1):
        return None
    xs = sorted(samples)
    pos = q * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def summarize(samples: list[float]) -> dict[str, Any]:
    """median / p90 / p99 with the count; an unsupported percentile is None with the reason."""
    n = len(samples)
    out: dict[str, Any] = {"count": n}
    if n == 0:
        out.update(median=None, p90=None, p99=None, mean=None, min=None, max=None, stdev=None)
        out["null_reason"] = {"median": "no samples"}
        return out
    out["median"] = statistics.median(samples)
    out["mean"] = statistics.fmean(samples)
    out["min"] = min(samples)
    out["max"] = max(samples)
    out["stdev"] = statistics.stdev(samples) if n > 1 else None
    reasons = {}
    for name, q in (("p90", 0.90), ("p99", 0.99)):
        out[name] = percentile(samples, q)
        if out[name] is None:
            reasons[name] = f"needs at least {min_count(q)} samples, have {n}"
    if reasons:
        out["null_reason"] = reasons
    return out
