"""The OOM frontier: the largest context each model runs at batch B on this GPU, for prefill and
for decode. Lengths double from `start` until one fails, then bisect on a log2 scale between the
last that ran and the first that failed; every probe is its own isolated worker (an OOM can leave
the allocator fragmented, and a crash must not end the search). A probe the cost model predicts
to outlast `probe_timeout_s` is not run: the frontier then reads "runs up to L, not tried past
it (time limit)", never an OOM it did not see.

This worker never initialises CUDA itself: it only starts probes.

    make bench ARGS="suite=standard 'suite.measure=[frontier]' 'models=[transformer]'"
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

from harness.point import Point, freeze
from suites import modelbench as mb

USES_MODELS = True
PHASES = ("prefill", "decode")
OWN_KEYS = ("phase", "max_context", "resolution", "probe", "probe_timeout_s", "round_to")


@dataclass
class FrontierConfig:
    phases: list[str] = field(default_factory=lambda: list(PHASES))
    start: Any = "1k"
    max_context: Any = "4m"
    resolution: int = 3  # bisection steps after the first failure: within 2^(1/8) = 9%
    round_to: int = 1024  # probe lengths are multiples of this
    probe: str = "memory"  # the measurement each probe runs once
    probe_timeout_s: float = 600.0


CONFIG = FrontierConfig


def expand(ctx) -> list[Point]:
    from harness.config import check_choice
    from harness.units import parse_length

    cfg: FrontierConfig = ctx.cfg.suite.frontier
    points = []
    for phase in cfg.phases:
        check_choice("suite.frontier.phases", phase, PHASES)
        params = {
            "phase": phase,
            "max_context": parse_length(cfg.max_context, "suite.frontier.max_context"),
            "resolution": cfg.resolution,
            "round_to": cfg.round_to,
            "probe": cfg.probe,
            "probe_timeout_s": cfg.probe_timeout_s,
        }
        start = [parse_length(cfg.start, "suite.frontier.start")]
        points += mb.model_points(ctx, "frontier", params, contexts=start)
    return points


def preflight(point: Point, ctx) -> str | None:
    return None  # finding where memory ends is the point


def max_probes(point: Point) -> int:
    doublings = math.ceil(math.log2(point.param("max_context") / point.context)) + 1
    return doublings + point.param("resolution")


def timeout_s(point: Point, base: float) -> float:
    """The runner's limit for this point: every probe may use its own full limit."""
    return max_probes(point) * point.param("probe_timeout_s") + 60


def probe_point(point: Point, context: int) -> Point:
    params = {k: v for k, v in point.params if k not in OWN_KEYS}
    params.update(phases=[point.param("phase")], decode_steps=2)
    return replace(point, suite=point.param("probe"), context=context, params=freeze(params))


def doublings(point: Point):
    """The search's first probe lengths: the start length doubled up to max_context."""
    L = point.context
    while L <= point.param("max_context"):
        yield L
        L *= 2


NOT_RUN = "not_run"  # a probe predicted to take longer than probe_timeout_s: a time limit


def search(point: Point, probe, predict=None) -> dict[str, Any]:
    """Doubling then log2 bisection. `probe(point) -> result dict with a status`;
    `predict(point) -> seconds` (the cost model): a probe predicted past probe_timeout_s is not
    run and ends the search there as a time limit, not a failure, with no bisection (narrowing
    down a time budget says nothing about the model). A 1.3B Transformer's 2M-token prefill is
    estimated at ~13 minutes: without this the frontier would spend most of a standard run."""
    steps: list[dict[str, Any]] = []
    limit = point.param("probe_timeout_s")

    def attempt(L: int) -> bool:
        pp = probe_point(point, L)
        seconds = predict(pp) if predict is not None else None
        if seconds is not None and seconds > limit:
            reason = f"predicted {seconds:.0f} s > probe_timeout_s={limit:g} s"
            steps.append({"context": L, "status": NOT_RUN, "reason": reason})
            return False
        result = probe(pp)
        steps.append({"context": L, "status": result["status"], "reason": result.get("reason", "")})
        return result["status"] == "ok"

    lo, hi = 0, None
    for L in doublings(point):
        if not attempt(L):
            hi = L
            break
        lo = L
    r = point.param("round_to")
    time_limited = bool(steps) and steps[-1]["status"] == NOT_RUN
    for _ in range(point.param("resolution") if hi and lo and not time_limited else 0):
        mid = round(math.sqrt(lo * hi) / r) * r  # geometric midpoint: one log2 halving
        if mid <= lo or mid >= hi:
            break
        if attempt(mid):
            lo = mid
        else:
            hi = mid
    failure = next((s for s in steps if s["context"] == hi), None)
    return {
        "max_context": lo or None,
        "first_failure": hi,
        "failure_status": failure["status"] if failure else None,
        "below_max": hi is not None,
        "limited_by": None if hi is None else ("time" if time_limited else "failure"),
        "steps": steps,
        "phase": point.param("phase"),
    }


def run(point: Point) -> dict[str, Any]:
    from harness.isolate import run_isolated
    from harness.pool import expected_seconds

    timeout = point.param("probe_timeout_s")
    return {"metrics": search(point, lambda p: run_isolated(p, timeout), predict=expected_seconds)}
