"""The claims ledger: each claim in the claims files -> a verdict from this run's measurements.

    supported       every check passes (its 95% interval lies inside what the claim says)
    contradicted    every check fails (its interval lies wholly outside)
    inconclusive    checks disagree, or an interval straddles the claimed edge
    untestable here nothing in this run measures it (the reason says what is missing), or the
                    claim's `expect` has a key this ledger does not know, or no measurement is
                    registered for it

A check is one measured condition (size, batch, dtype, context) judged by the predicate of one
expect key (judge.py); its measurement comes from shipped.py / custom.py for the shipped claims, or
from the claim's own `measure:` (measures.py) for a user's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.report import anchors
from harness.report.facts import Facts
from harness.report.ledger import judge
from harness.report.ledger.claims import Claim, ClaimSet, load
from harness.report.ledger.custom import CUSTOM
from harness.report.ledger.measures import measure
from harness.report.ledger.select import MeasureError, Obs
from harness.report.ledger.shipped import NOTES, SPECS

SUPPORTED, CONTRADICTED, INCONCLUSIVE, UNTESTABLE = (
    "supported",
    "contradicted",
    "inconclusive",
    "untestable here",
)
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, UNTESTABLE)


@dataclass(frozen=True)
class Check:
    key: str  # the expect key judged
    obs: Obs
    outcome: str  # pass | fail | unknown
    want: str  # what the claim needs, in words


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    reason: str
    checks: list[Check] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def anchor(self) -> str:
        """Where the numbers come from: the first check's figure (or table)."""
        return self.checks[0].obs.anchor if self.checks else anchors.POINTS

    @property
    def id(self) -> str:
        return anchors.claim(self.claim.id)


def _specs_for(claim: Claim, key: str) -> list[dict]:
    spec = claim.measure if claim.measure is not None else SPECS.get(claim.id, {})
    if isinstance(spec, dict) and "kind" in spec:  # one measurement for every key
        return [spec]
    if not isinstance(spec, dict):
        raise MeasureError(f"measure must be a mapping, got {type(spec).__name__}")
    found = spec.get(key, [])
    return found if isinstance(found, list) else [found]


def _aggregate(checks: list[Check]) -> tuple[str, str]:
    outcomes = [c.outcome for c in checks]
    n, p, f = len(outcomes), outcomes.count(judge.PASS), outcomes.count(judge.FAIL)
    if p == n:
        return SUPPORTED, f"holds in all {n} measured condition(s)"
    if f == n:
        return CONTRADICTED, f"fails in all {n} measured condition(s)"
    u = n - p - f
    parts = [f"{p} hold", f"{f} fail"] + (
        [f"{u} undecided (interval straddles the claimed edge)"] if u else []
    )
    return INCONCLUSIVE, f"of {n} measured condition(s): " + ", ".join(parts)


def evaluate_claim(facts: Facts, claim: Claim) -> Verdict:
    if claim.error:
        return Verdict(claim, UNTESTABLE, claim.error)
    if not isinstance(claim.expect, dict) or not claim.expect:
        return Verdict(claim, UNTESTABLE, "no machine-readable `expect` to test against")
    custom = CUSTOM.get(claim.id) if claim.measure is None else None
    handles = custom[1] if custom else set()
    unknown = sorted(k for k in claim.expect if k not in judge.PREDICATES and k not in handles)
    if unknown:
        return Verdict(
            claim,
            UNTESTABLE,
            f"expect key(s) {', '.join(unknown)} not known to the ledger "
            f"(known: {', '.join(sorted(judge.PREDICATES))})",
        )
    if custom is None and claim.measure is None and claim.id not in SPECS:
        return Verdict(
            claim,
            UNTESTABLE,
            "no measurement registered for this claim: give it a `measure:` "
            "(kind ratio | value | slope | crossover; see harness/report/ledger/measures.py)",
        )
    checks, missing = [], []
    try:
        if custom:
            checks, missing = custom[0](facts, claim.expect)
        else:
            for key, expected in claim.expect.items():
                for spec in _specs_for(claim, key):
                    res = measure(facts, spec)
                    missing.extend(res.missing)
                    for obs in res.obs:
                        outcome, want = judge.PREDICATES[key](expected, obs.estimate)
                        checks.append(Check(key, obs, outcome, want))
    except MeasureError as exc:
        return Verdict(claim, UNTESTABLE, f"cannot read the claim's measure: {exc}")
    except Exception as exc:  # a claim must never take the report down; the reason says why
        return Verdict(
            claim, UNTESTABLE, f"the ledger failed on this claim ({exc.__class__.__name__}: {exc})"
        )
    missing = list(dict.fromkeys(missing))  # two measurements can miss the same point
    note = NOTES.get(claim.id, "") if claim.measure is None else ""
    if not checks:
        why = "; ".join(missing[:4]) or "no matching points"
        more = f" (+{len(missing) - 4} more)" if len(missing) > 4 else ""
        return Verdict(
            claim, UNTESTABLE, f"this run does not measure it: {why}{more}", [], missing, note
        )
    verdict, reason = _aggregate(checks)
    return Verdict(claim, verdict, reason, checks, missing, note)


def evaluate(facts: Facts, claims: ClaimSet) -> list[Verdict]:
    return [evaluate_claim(facts, c) for c in claims.claims]


__all__ = [
    "Check",
    "Claim",
    "ClaimSet",
    "Verdict",
    "VERDICTS",
    "evaluate",
    "evaluate_claim",
    "load",
]
