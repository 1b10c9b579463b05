"""Generic measurements a claim can name: a ratio of two architectures, one architecture's value,
a log-log slope, or a crossover length. A measurement is a plain dict (the shipped claims' are in
shipped.py; a user's claims file can give the same dict under `measure:`):

    {kind: ratio, suite: decode, metric: tokens_per_s, num: mamba2, den: transformer,
     context: 32k | context_min: 128k | context_max: 2k | context: longest, batch: 1, size: 1.3b}

`num`/`den`/`model` name a family (transformer, mamba2, mamba1, hybrid; `ssm` = Mamba-2, else
Mamba-1) or a preset; for kernels an op, with `backend` / `num_backend` / `den_backend` (a name or
a list, first measured wins) or `per_backend: true`. Suite `vram` is the peak memory over the
memory, prefill and decode suites. Each measurement returns observations: one per measured
condition (size, batch, dtype, length), or a reason why there is none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from harness.report import anchors, arch, stats
from harness.report.crossovers import pair
from harness.report.facts import Facts, flag, fmt_len
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
METRIC_TEXT = {
    "time_ms": "time",
    "tokens_per_s": "tokens/s",
    "peak_bytes": "peak memory",
    "energy_jpt": "energy per token",
    "bytes_per_token": "HBM bytes per token",
    "flops": "FLOPs",
    "accuracy": "accuracy",
    "bpb": "bits per byte",
    "predicted_bytes": "predicted memory",
}
KINDS = ("ratio", "value", "slope", "crossover")


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


def _length(spec: dict, key: str) -> int | None:
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


def _backends(facts, spec, key, model, where) -> list:
    want = spec.get(key) or spec.get("backend")
    if spec["suite"] != "kernels":
        return [None]
    present = sorted(facts.rows("kernels", model=model, **where)["backend"].unique())
    if spec.get("per_backend"):
        return [b for b in present if not want or b in _aslist(want)]
    if want:
        return [next((b for b in _aslist(want) if b in present), None)]
    from harness.report.crossovers import _fastest_backend

    return [_fastest_backend(facts, model, tuple(where.values()))]


def _aslist(x) -> list:
    return list(x) if isinstance(x, list | tuple) else [x]


def _metric(spec: dict) -> str:
    return "peak_bytes" if spec["suite"] == "vram" else spec.get("metric", "time_ms")


def _what(suite: str, text: str) -> str:
    return text if suite in ("vram", "kernels") else f"{suite} {text}"


def _gtext(g) -> str:
    size, batch, dtype = g
    return " ".join(x for x in (size, f"batch {batch}", dtype) if x)


def _anchor(facts: Facts, spec: dict, g, model: str = "", row=None) -> str:
    kind = FIGURE_KIND.get(spec["suite"], spec["suite"])
    variant = model if spec["suite"] == "kernels" else ""
    if spec["suite"] == "throughput" and row is not None:
        return anchors.figure("throughput", g[0], None, g[2], f"L{int(row['context'])}")
    if spec["suite"] == "kernels":
        return anchors.figure(kind, "", g[1], g[2], variant)
    return anchors.figure(kind, *g)


def _contexts(spec: dict, available: list[int]) -> list[int]:
    exact, lo, hi = (
        _length(spec, "context"),
        _length(spec, "context_min"),
        _length(spec, "context_max"),
    )
    if exact:
        return [exact]
    picked = [L for L in available if (lo is None or L >= lo) and (hi is None or L <= hi)]
    if spec.get("context") == "longest":
        return picked[-1:]
    return picked


def _one_model(facts: Facts, spec: dict, res: Result):
    """(group, where, model) for every group where spec's model was measured; the others are
    noted in res.missing."""
    for g in groups(facts, spec):
        where = dict(zip(("size", "batch", "dtype"), g, strict=True))
        m = resolve(facts, spec["suite"], spec["model"], where)
        if m:
            yield g, where, m
        else:
            res.missing.append(f"{_gtext(g)}: no {spec['model']} in {spec['suite']}")


def _num_den(facts: Facts, spec: dict, res: Result):
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
            res.missing.append(f"{_gtext(g)}: no {missing} in {spec['suite']}")


def _capped_bound(est: stats.Estimate, num_capped: bool, den_capped: bool) -> stats.Estimate:
    """A throughput at the search's largest batch is a lower bound (more might fit): the ratio
    of tokens/s is then at least its low end (numerator) or at most its high end (denominator)."""
    if num_capped:
        return stats.Estimate(est.lo, est.lo, est.lo, ">", est.note)
    if den_capped:
        return stats.Estimate(est.hi, est.hi, est.hi, "<", est.note)
    return est


def ratio(facts: Facts, spec: dict) -> Result:
    res, metric = Result(), _metric(spec)
    text = METRIC_TEXT.get(metric, metric)
    for g, where, a, b in _num_den(facts, spec, res):
        for ba in _backends(facts, spec, "num_backend", a, where):
            for bb in _backends(facts, spec, "den_backend", b, where):
                sa, fa = series(facts, spec["suite"], a, metric, where, ba)
                sb, fb = series(facts, spec["suite"], b, metric, where, bb)
                la = arch.name(a) + (f" [{ba}]" if ba else "")
                lb = arch.name(b) + (f" [{bb}]" if bb else "")
                lengths = sorted(set(sa) | set(sb) | set(fa) | set(fb))
                for L in _contexts(spec, lengths):
                    label = (
                        f"{la} / {lb} {_what(spec['suite'], text)} at {fmt_len(L)} · {_gtext(g)}"
                    )
                    anchor = _anchor(facts, spec, g, a)
                    ra, rb = facts.at(sa, L, metric), facts.at(sb, L, metric)
                    # only tokens/s grows with the batch: other metrics are what they are
                    bounded = spec["suite"] == "throughput" and metric == "tokens_per_s"
                    capped = [
                        bounded and bool(r) and flag(r[0].get("batch_capped")) for r in (ra, rb)
                    ]
                    if ra and rb and all(capped):
                        res.missing.append(
                            f"{_gtext(g)} at {fmt_len(L)}: {la} and {lb} both ran the search's "
                            "largest batch (each a lower bound)"
                        )
                    elif ra and rb:
                        est = _capped_bound(facts.ratio(ra[0], rb[0], metric), *capped)
                        notes = list(dict.fromkeys(x for x in (ra[1], rb[1]) if x))
                        notes += [
                            f"{n} ran the search's largest batch: its tokens/s is a lower bound"
                            for n, c in ((la, capped[0]), (lb, capped[1]))
                            if c
                        ]
                        note = "; ".join(notes) + (" (both)" if ra[1] and rb[1] else "")
                        res.obs.append(
                            Obs(
                                label,
                                est,
                                _anchor(facts, spec, g, a, ra[0]),
                                "ratio",
                                note,
                            )
                        )
                    elif ra and L in fb and metric in ("peak_bytes",) and facts.run.device_memory():
                        # the denominator ran out of memory: it needs more than the device has
                        bound = float(ra[0][metric]) / facts.run.device_memory()
                        res.obs.append(
                            Obs(
                                label,
                                stats.Estimate(bound, bound, bound, "<"),
                                anchor,
                                "ratio",
                                f"{lb}: {fb[L]} at {fmt_len(L)}; bound from the device memory",
                            )
                        )
                    elif L in fa or L in fb:
                        who = ", ".join(f"{n}: {f[L]}" for n, f in ((la, fa), (lb, fb)) if L in f)
                        res.missing.append(f"{_gtext(g)} at {fmt_len(L)}: {who}")
                    else:
                        res.missing.append(
                            f"{_gtext(g)}: {la} and {lb} not both measured at {fmt_len(L)}"
                        )
    return res


def value(facts: Facts, spec: dict) -> Result:
    res, metric = Result(), _metric(spec)
    for g, where, m in _one_model(facts, spec, res):
        for be in _backends(facts, spec, "backend", m, where):
            s, failed = series(facts, spec["suite"], m, metric, where, be)
            for L in _contexts(spec, sorted(set(s) | set(failed))):
                what = _what(spec["suite"], METRIC_TEXT.get(metric, metric))
                label = f"{arch.name(m)} {what} at {fmt_len(L)} · {_gtext(g)}"
                r = facts.at(s, L, metric)
                if r:
                    res.obs.append(
                        Obs(
                            label,
                            facts.estimate(r[0], metric),
                            _anchor(facts, spec, g, m, r[0]),
                            METRIC_TEXT.get(metric, metric),
                            r[1],
                        )
                    )
                else:
                    res.missing.append(f"{label}: {failed.get(L, 'not measured')}")
    return res


def slope(facts: Facts, spec: dict) -> Result:
    """Fitted exponent of metric vs context (log-log least squares), CI from the samples."""
    res, metric = Result(), _metric(spec)
    lo, hi = _length(spec, "context_min"), _length(spec, "context_max")
    for g, where, m in _one_model(facts, spec, res):
        for be in _backends(facts, spec, "backend", m, where):
            s, failed = series(facts, spec["suite"], m, metric, where, be)
            rows = [r for L, r in sorted(s.items()) if (lo or 0) <= L <= (hi or 2**62)]
            name = arch.name(m) + (f" [{be}]" if be else "")
            if len(rows) < 3 or rows[-1]["context"] < 8 * rows[0]["context"]:
                res.missing.append(f"{name} · {_gtext(g)}: fewer than 3 lengths spanning 8x")
                continue
            xs = np.array([r["context"] for r in rows], dtype=float)
            ys = np.array([r[metric] for r in rows], dtype=float)
            reps = [facts.reps(r, metric) for r in rows]
            est = stats.Estimate.from_reps(
                stats.loglog_slope(xs, ys),
                None
                if any(r is None for r in reps)
                else stats.loglog_slope(xs, np.stack(reps, axis=1)),
            )
            label = (
                f"{name} exponent of {_what(spec['suite'], METRIC_TEXT.get(metric, metric))} vs "
                "context, "
                f"{fmt_len(xs[0])}-{fmt_len(xs[-1])} · {_gtext(g)}"
            )
            note = (
                "failed beyond: "
                f"{', '.join(f'{fmt_len(L)} {st}' for L, st in sorted(failed.items()))}"
                if failed
                else ""
            )
            res.obs.append(Obs(label, est, _anchor(facts, spec, g, m), "exponent", note))
    return res


def crossover(facts: Facts, spec: dict) -> Result:
    """Length at which `den` overtakes `num`; outside the range measured, a bound."""
    res, metric = Result(), _metric(spec)
    for g, where, a, b in _num_den(facts, spec, res):
        ba = _backends(facts, spec, "num_backend", a, where)[0]
        bb = _backends(facts, spec, "den_backend", b, where)[0]
        sa, sb = (
            series(facts, spec["suite"], m, metric, where, be)[0] for m, be in ((a, ba), (b, bb))
        )
        la, lb = (
            arch.name(a) + (f" [{ba}]" if ba else ""),
            arch.name(b) + (f" [{bb}]" if bb else ""),
        )
        found = pair(facts, spec["suite"], sa, sb, la, lb, g, _anchor(facts, spec, g, a))
        label = (
            f"length where {lb} overtakes {la} ({METRIC_TEXT.get(metric, metric)}) · {_gtext(g)}"
        )
        if not found:
            res.missing.append(f"{label}: fewer than 2 shared lengths")
            continue
        x = found[0]
        if x.at is not None:
            est = stats.Estimate(
                x.at, x.lo if x.lo is not None else x.at, x.hi if x.hi is not None else x.at
            )
            res.obs.append(Obs(label, est, x.anchor, "tokens", x.text()))
        elif x.below == lb:  # b better everywhere: it overtook before the shortest length
            res.obs.append(
                Obs(
                    label,
                    stats.Estimate(x.range[0], x.range[0], x.range[0], "<"),
                    x.anchor,
                    "tokens",
                    x.text(),
                )
            )
        else:
            res.obs.append(
                Obs(
                    label,
                    stats.Estimate(x.range[1], x.range[1], x.range[1], ">"),
                    x.anchor,
                    "tokens",
                    x.text(),
                )
            )
    return res


MEASURES = {"ratio": ratio, "value": value, "slope": slope, "crossover": crossover}
REQUIRED = {
    "ratio": ("suite", "num", "den"),
    "value": ("suite", "model"),
    "slope": ("suite", "model"),
    "crossover": ("suite", "num", "den"),
}


def measure(facts: Facts, spec: dict) -> Result:
    if not isinstance(spec, dict) or spec.get("kind") not in MEASURES:
        raise MeasureError(f"measure.kind must be one of {', '.join(KINDS)}; got {spec!r}")
    missing = [k for k in REQUIRED[spec["kind"]] if k not in spec]
    if missing:
        raise MeasureError(f"measure of kind {spec['kind']} needs {', '.join(missing)}")
    res = MEASURES[spec["kind"]](facts, spec)
    if not res.obs and not res.missing:
        where = "".join(f" {k} {spec[k]}" for k in ("size", "batch") if spec.get(k) is not None)
        suite = "memory, decode or prefill" if spec["suite"] == "vram" else spec["suite"]
        span = _span_text(spec)  # say which lengths were wanted: the suite may have others
        res.missing.append(f"no {suite} points{span}{' at' + where if where else ''} in this run")
    return res


def _span_text(spec: dict) -> str:
    exact, lo, hi = (_length(spec, k) for k in ("context", "context_min", "context_max"))
    if exact:
        return f" at {fmt_len(exact)}"
    if lo and hi:
        return f" at {fmt_len(lo)}-{fmt_len(hi)}"
    if lo:
        return f" at >= {fmt_len(lo)}"
    return f" at <= {fmt_len(hi)}" if hi else ""
