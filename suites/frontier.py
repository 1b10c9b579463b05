"""The OOM frontier: the largest context each model runs at batch B on this GPU, for prefill and
for decode. Lengths double from `start` until one fails, then bisect on a log2 scale between the
last that ran and the first that failed; every probe is its own isolated worker (an OOM can leave
the allocator fragmented, and a crash must not end the search). A probe the cost model predicts
to outlast `probe_timeout_s` is not run: the frontier then reads "runs up to L, not tried past
it (time limit)", never an OOM it did not see.

The search starts from what the run already measured: a length at or below the longest one the
same model's prefill (or decode) sweep ran in this run is not probed again (the pool runs the
frontier after that sweep; `hints` hands the worker those lengths). A memory frontier assumes a
model that runs at L runs at every shorter length; the sweep's failures are not reused (a sweep
point does more than a probe: canary, timing), only its successes. In the standard suite this
saves the Transformer's 1M prefill a second time (about 3 minutes on an H100-class GPU).

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


def _same_model(a: Point, b: Point) -> bool:
    keys = ("model", "size", "batch", "dtype", "device", "backends", "seed")
    same = all(getattr(a, k) == getattr(b, k) for k in keys)
    return same and a.param("overrides") == b.param("overrides")


def waits_for(point: Point, other: Point) -> bool:
    """The pool holds this frontier point until `other`'s chain is done: the same model's sweep
    of this phase, whose successes the search reuses."""
    return other.suite == point.param("phase") and _same_model(point, other)


def hints(point: Point, records) -> dict[str, Any]:
    """What the worker may take as known (records: this run's latest record of each point): the
    lengths the same model's sweep of this phase ran, with the record that shows it."""
    ran = {}
    for rec in records:
        if rec.get("status") != "ok":
            continue
        try:
            other = Point.from_dict(rec["point"])
        except (KeyError, TypeError):  # a record of another layout
            continue
        if waits_for(point, other):
            ran[other.context] = rec.get("hash", "")
    return {"ran": sorted(ran.items())} if ran else {}


def implied_by_plan(point: Point, planned: list[Point]) -> int:
    """The longest length the plan's sweep of this phase will try for the same model: what the
    search will likely find already measured (for the time estimate; it may yet fail)."""
    return max((p.context for p in planned if waits_for(point, p)), default=0)


def search(point: Point, probe, predict=None, ran=()) -> dict[str, Any]:
    """Doubling then log2 bisection. `probe(point) -> result dict with a status`;
    `predict(point) -> seconds` (the cost model): a probe predicted past probe_timeout_s is not
    run and ends the search there as a time limit, not a failure, with no bisection (narrowing
    down a time budget says nothing about the model). A 1.3B Transformer's 2M-token prefill is
    estimated at ~13 minutes: without this the frontier would spend most of a standard run.
    `ran`: (length, record hash) pairs this run's sweep measured as ok: no probe at or below the
    longest of them (its step says which record implies it)."""
    steps: list[dict[str, Any]] = []
    limit = point.param("probe_timeout_s")
    known = max(ran, default=None)  # (longest length the sweep ran, its record's hash)

    def attempt(L: int) -> bool:
        if known is not None and L <= known[0]:
            steps.append({"context": L, "status": "ok", "reason": "", "implied_by": known[1]})
            return True
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
        "probes_run": sum(1 for s in steps if s["status"] != NOT_RUN and "implied_by" not in s),
        "phase": point.param("phase"),
    }


def run(point: Point, hints: dict[str, Any] | None = None) -> dict[str, Any]:
    from harness.isolate import run_isolated
    from harness.pool import expected_seconds

    timeout = point.param("probe_timeout_s")
    ran = [tuple(x) for x in (hints or {}).get("ran", ())]
    metrics = search(point, lambda p: run_isolated(p, timeout), expected_seconds, ran)
    return {"metrics": metrics}
