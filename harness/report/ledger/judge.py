"""Predicates: does a measured estimate satisfy what a claim expects?

Each takes the claim's expected value and an Estimate (value with a 95% interval, or a bound) and
answers pass / fail / unknown. An interval decides only when it lies wholly on one side: a
measurement whose interval straddles the claimed edge is `unknown`, never rounded to a verdict.

"approx" means within a factor of 1.25 of the claimed value (articles round freely; a factor
of 1.25 separates "about 6x" from 4.8x and 7.5x). Exponents are "approx" within +-0.1.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.report.stats import Estimate

APPROX_FACTOR = 1.25
EXPONENT_TOLERANCE = 0.1
SPIKE_MARGIN = 0.1  # p99/p50 difference that counts as a latency spike
PASS, FAIL, UNKNOWN = "pass", "fail", "unknown"


def _interval(e: Estimate) -> tuple[float, float]:
    """What the true value can be: [lo, hi], open-ended on the side a bound leaves open."""
    if e.bound == "<":
        return float("-inf"), e.value
    if e.bound == ">":
        return e.value, float("inf")
    return e.lo, e.hi


def within(lo_ok: float, hi_ok: float, e: Estimate) -> str:
    lo, hi = _interval(e)
    if lo_ok <= lo and hi <= hi_ok:
        return PASS
    if hi < lo_ok or lo > hi_ok:
        return FAIL
    return UNKNOWN


def at_most(limit, e: Estimate) -> tuple[str, str]:
    return within(float("-inf"), float(limit), e), f"≤ {limit:g}"


def at_least(limit, e: Estimate) -> tuple[str, str]:
    return within(float(limit), float("inf"), e), f"≥ {limit:g}"


def in_range(bounds, e: Estimate) -> tuple[str, str]:
    a, b = sorted(float(x) for x in bounds)
    return within(a, b, e), f"in [{a:g}, {b:g}]"


def approx(target, e: Estimate) -> tuple[str, str]:
    t = float(target)
    lo, hi = sorted((t / APPROX_FACTOR, t * APPROX_FACTOR))
    return within(lo, hi, e), f"≈ {t:g} (within ×{APPROX_FACTOR:g}: {lo:.3g}-{hi:.3g})"


def approx_exponent(target, e: Estimate) -> tuple[str, str]:
    t = float(target)
    return within(
        t - EXPONENT_TOLERANCE, t + EXPONENT_TOLERANCE, e
    ), f"≈ {t:g} (±{EXPONENT_TOLERANCE:g})"


def above(limit: float, why: str = "") -> Callable[[object, Estimate], tuple[str, str]]:
    """For `<flag>: true` claims turned into 'this quantity is above `limit`' (strictly: an
    interval touching the limit is unknown). `<flag>: false` asks for the opposite. `why`: what
    the limit stands for, said beside it (a margin a user would notice, rather than zero, is what
    lets a claim of an effect be contradicted: two equal models differ by ~0 and every interval
    straddles zero)."""
    note = f" ({why})" if why else ""

    def judge(flag, e: Estimate) -> tuple[str, str]:
        lo, hi = _interval(e)
        if flag is False:
            return (PASS if hi < limit else FAIL if lo > limit else UNKNOWN), f"≤ {limit:g}{note}"
        return (PASS if lo > limit else FAIL if hi < limit else UNKNOWN), f"> {limit:g}{note}"

    return judge


def quadratic(flag, e: Estimate) -> tuple[str, str]:
    """Memory exponent: quadratic if >= 1.8, linear-ish (FlashAttention-class) if <= 1.2."""
    lo, hi = _interval(e)
    outcome = PASS if lo >= 1.8 else FAIL if hi <= 1.2 else UNKNOWN
    if flag is False:
        outcome = {PASS: FAIL, FAIL: PASS}.get(outcome, UNKNOWN)
    return outcome, "exponent ≥ 1.8 (quadratic)" if flag is not False else "exponent ≤ 1.2"


# expect key -> predicate. A claim whose expect has a key missing here (and not handled by its
# own evaluator) is "untestable here", naming the key.
PREDICATES: dict[str, Callable[[object, Estimate], tuple[str, str]]] = {
    "ratio_max": at_most,
    "ratio_min": at_least,
    "ratio_range": in_range,
    "ratio_approx": approx,
    "throughput_ratio_approx": approx,
    "latency_ratio_approx": approx,
    "ratio_approx_128k": approx,
    "ratio_approx_1m": approx,
    "ratio_16k_approx": approx,
    "exponent_approx": approx_exponent,
    "ssm_tok_s_range": in_range,
    "crossover_range": in_range,
    "crossover_max": at_most,
    "relative_drop_min": at_least,
    "ssm_latency_slope_max": at_most,
    "transformer_latency_slope_min": at_least,
    "ssm_memory_slope_max": at_most,
    "transformer_memory_slope_min": at_least,
    "transformer_faster": above(1.0),  # ratio SSM time / Transformer time
    "transformer_better": above(0.0),  # difference Transformer - SSM accuracy
    # difference of p99/p50: a spike is a tail at least 10% of the median above the Transformer's
    # (on the H200 the two models' ratios differed by under 0.005 at every length, 1K-1M)
    "ssm_p99_over_p50_greater_than_transformer": above(
        SPIKE_MARGIN, "a difference a user would notice"
    ),
    "quadratic_memory": quadratic,
    "value_max": at_most,
    "value_min": at_least,
    "value_range": in_range,
    "slope_max": at_most,
    "slope_min": at_least,
}
