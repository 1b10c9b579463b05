"""What a measurement reads: the claim spec's models, groups, lengths and backends resolved
against a run's facts, each model's series of rows, and the labels and figure anchors of its
observations (measures.py computes from them)."""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.report import anchors, arch, stats
from harness.report.facts import Facts, fmt_len
from harness.units import UnitError, parse_length

FIGURE_KIND = {
    "vram": "memory",
    "memory": "memory",
    "prefill": "prefill",
    "decode": "decode",
    "kernels": "kernels",
    "throughput": "throughput",
    "energy": "energy",
}


class MeasureError(ValueError):
    """A measurement spec the ledger cannot read: the claim becomes untestable, with this text."""


@dataclass
class Obs:
    label: str
    estimate: stats.Estimate | None
    anchor: str
    unit: str = "ratio"
    note: str = ""


@dataclass
class Result:
    obs: list[Obs] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # why conditions gave no observation


def length(spec: dict, key: str) -> int | None:
    if key not in spec or spec[key] in (None, "longest"):
        return None
    try:
        return parse_length(spec[key], key)
    except UnitError as exc:
        raise MeasureError(str(exc)) from exc


def resolve(facts: Facts, suite: str, who: str, where: dict) -> str | None:
    for src in ("memory", "decode", "prefill") if suite == "vram" else (suite,):
        if who == "ssm":
            found = facts.pick("mamba2", src, **where) or facts.pick("mamba1", src, **where)
        elif who in arch.CANONICAL:
            found = facts.pick(who, src, **where)
        else:
            found = who if who in facts.models(src, ok=False, **where) else None
        if found:
            return found
    return None


def groups(facts: Facts, spec: dict) -> list[tuple[str, int, str]]:
    suites = ("memory", "prefill", "decode") if spec["suite"] == "vram" else (spec["suite"],)
    out = sorted({g for s in suites for g in facts.groups(s)})
    return [
        g for g in out if spec.get("batch") in (None, g[1]) and spec.get("size") in (None, g[0])
    ]


def series(facts: Facts, suite: str, model: str, metric: str, where: dict, backend=None):
    """({context: ok row}, {context: failure status}) of one model in one group."""
    if suite == "vram":
        # peak memory of the first suite that measured this model here: memory, else decode,
        # else prefill (one suite per comparison: their peaks hold different things)
        for src in ("memory", "decode", "prefill"):
            rows = facts.rows(src, ok=False, model=model, **where)
            if (rows["status"] != "skipped").any():
                break
        suite, metric, extra = src, "peak_bytes", {}
    else:
        extra = {"backend": backend} if backend else {}
    ok = facts.points(suite, model, metric, **where, **extra)
    fails = facts.failures(suite, model, **where, **extra)
    failed = {
        int(L): st
        for L, st in zip(fails["context"], fails["status"], strict=True)
        if int(L) not in ok
    }
    return ok, failed


def backends(facts, spec, key, model, where) -> list:
    want = spec.get(key) or spec.get("backend")
    if spec["suite"] != "kernels":
        return [None]
    present = sorted(facts.rows("kernels", model=model, **where)["backend"].unique())
    if spec.get("per_backend"):
        return [b for b in present if not want or b in aslist(want)]
    if want:
        return [next((b for b in aslist(want) if b in present), None)]
    from harness.report.crossovers import _fastest_backend

    return [_fastest_backend(facts, model, tuple(where.values()))]


def aslist(x) -> list:
    return list(x) if isinstance(x, list | tuple) else [x]


def metric_of(spec: dict) -> str:
    return "peak_bytes" if spec["suite"] == "vram" else spec.get("metric", "time_ms")


def what(suite: str, text: str) -> str:
    return text if suite in ("vram", "kernels") else f"{suite} {text}"


def group_text(g) -> str:
    size, batch, dtype = g
    return " ".join(x for x in (size, f"batch {batch}", dtype) if x)


def anchor(facts: Facts, spec: dict, g, model: str = "", row=None) -> str:
    kind = FIGURE_KIND.get(spec["suite"], spec["suite"])
    variant = model if spec["suite"] == "kernels" else ""
    if spec["suite"] == "throughput" and row is not None:
        return anchors.figure("throughput", g[0], None, g[2], f"L{int(row['context'])}")
    if spec["suite"] == "kernels":
        return anchors.figure(kind, "", g[1], g[2], variant)
    return anchors.figure(kind, *g)


def contexts(spec: dict, available: list[int]) -> list[int]:
    exact, lo, hi = (
        length(spec, "context"),
        length(spec, "context_min"),
        length(spec, "context_max"),
    )
    if exact:
        return [exact]
    picked = [L for L in available if (lo is None or L >= lo) and (hi is None or L <= hi)]
    if spec.get("context") == "longest":
        return picked[-1:]
    return picked


def one_model(facts: Facts, spec: dict, res: Result):
    """(group, where, model) for every group where spec's model was measured; the others are
    noted in res.missing."""
    for g in groups(facts, spec):
        where = dict(zip(("size", "batch", "dtype"), g, strict=True))
        m = resolve(facts, spec["suite"], spec["model"], where)
        if m:
            yield g, where, m
        else:
            res.missing.append(f"{group_text(g)}: no {spec['model']} in {spec['suite']}")


def num_den(facts: Facts, spec: dict, res: Result):
    """(group, where, num model, den model) for every group where both were measured; the
    others are noted in res.missing."""
    for g in groups(facts, spec):
        where = dict(zip(("size", "batch", "dtype"), g, strict=True))
        a = resolve(facts, spec["suite"], spec["num"], where)
        b = resolve(facts, spec["suite"], spec["den"], where)
        if a and b:
            yield g, where, a, b
        else:
            missing = spec["num"] if not a else spec["den"]
            res.missing.append(f"{group_text(g)}: no {missing} in {spec['suite']}")


def span_text(spec: dict) -> str:
    exact, lo, hi = (length(spec, k) for k in ("context", "context_min", "context_max"))
    if exact:
        return f" at {fmt_len(exact)}"
    if lo and hi:
        return f" at {fmt_len(lo)}-{fmt_len(hi)}"
    if lo:
        return f" at >= {fmt_len(lo)}"
    return f" at <= {fmt_len(hi)}" if hi else ""
