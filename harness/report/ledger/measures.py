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

import numpy as np

from harness.report import arch, stats
from harness.report.crossovers import pair
from harness.report.facts import Facts, flag, fmt_len
from harness.report.ledger import select as sel
from harness.report.ledger.select import MeasureError, Obs, Result

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


def _ratio_of_rows(facts: Facts, spec: dict, metric: str, ra, rb, la: str, lb: str):
    """(estimate, note) of two measured rows' ratio, (None, why) where there is none. A throughput
    at the search's largest batch is a lower bound (more might fit): the ratio of tokens/s is then
    at least its low end (numerator) or at most its high end (denominator), and nothing when both
    are bounds."""
    # only tokens/s grows with the batch: other metrics are what they are
    bounded = spec["suite"] == "throughput" and metric == "tokens_per_s"
    num_capped, den_capped = (bounded and flag(r[0].get("batch_capped")) for r in (ra, rb))
    if num_capped and den_capped:
        return None, f"{la} and {lb} both ran the search's largest batch (each a lower bound)"
    est = facts.ratio(ra[0], rb[0], metric)
    if num_capped:
        est = stats.Estimate(est.lo, est.lo, est.lo, ">", est.note)
    elif den_capped:
        est = stats.Estimate(est.hi, est.hi, est.hi, "<", est.note)
    notes = list(dict.fromkeys(x for x in (ra[1], rb[1]) if x))
    notes += [
        f"{n} ran the search's largest batch: its tokens/s is a lower bound"
        for n, c in ((la, num_capped), (lb, den_capped))
        if c
    ]
    return est, "; ".join(notes) + (" (both)" if ra[1] and rb[1] else "")


def ratio(facts: Facts, spec: dict) -> Result:
    res, metric = Result(), sel.metric_of(spec)
    text = METRIC_TEXT.get(metric, metric)
    for g, where, a, b in sel.num_den(facts, spec, res):
        for ba in sel.backends(facts, spec, "num_backend", a, where):
            for bb in sel.backends(facts, spec, "den_backend", b, where):
                sa, fa = sel.series(facts, spec["suite"], a, metric, where, ba)
                sb, fb = sel.series(facts, spec["suite"], b, metric, where, bb)
                la = arch.name(a) + (f" [{ba}]" if ba else "")
                lb = arch.name(b) + (f" [{bb}]" if bb else "")
                lengths = sorted(set(sa) | set(sb) | set(fa) | set(fb))
                for L in sel.contexts(spec, lengths):
                    where_text = f"{fmt_len(L)} · {sel.group_text(g)}"
                    label = f"{la} / {lb} {sel.what(spec['suite'], text)} at {where_text}"
                    anchor = sel.anchor(facts, spec, g, a)
                    ra, rb = facts.at(sa, L, metric), facts.at(sb, L, metric)
                    if ra and rb:
                        est, note = _ratio_of_rows(facts, spec, metric, ra, rb, la, lb)
                        if est is None:
                            res.missing.append(f"{sel.group_text(g)} at {fmt_len(L)}: {note}")
                        else:
                            anchor = sel.anchor(facts, spec, g, a, ra[0])
                            res.obs.append(Obs(label, est, anchor, "ratio", note))
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
                        res.missing.append(f"{sel.group_text(g)} at {fmt_len(L)}: {who}")
                    else:
                        res.missing.append(
                            f"{sel.group_text(g)}: {la} and {lb} not both measured at {fmt_len(L)}"
                        )
    return res


def value(facts: Facts, spec: dict) -> Result:
    res, metric = Result(), sel.metric_of(spec)
    for g, where, m in sel.one_model(facts, spec, res):
        for be in sel.backends(facts, spec, "backend", m, where):
            s, failed = sel.series(facts, spec["suite"], m, metric, where, be)
            for L in sel.contexts(spec, sorted(set(s) | set(failed))):
                what = sel.what(spec["suite"], METRIC_TEXT.get(metric, metric))
                label = f"{arch.name(m)} {what} at {fmt_len(L)} · {sel.group_text(g)}"
                r = facts.at(s, L, metric)
                if r:
                    res.obs.append(
                        Obs(
                            label,
                            facts.estimate(r[0], metric),
                            sel.anchor(facts, spec, g, m, r[0]),
                            METRIC_TEXT.get(metric, metric),
                            r[1],
                        )
                    )
                else:
                    res.missing.append(f"{label}: {failed.get(L, 'not measured')}")
    return res


def slope(facts: Facts, spec: dict) -> Result:
    """Fitted exponent of metric vs context (log-log least squares), CI from the samples."""
    res, metric = Result(), sel.metric_of(spec)
    lo, hi = sel.length(spec, "context_min"), sel.length(spec, "context_max")
    for g, where, m in sel.one_model(facts, spec, res):
        for be in sel.backends(facts, spec, "backend", m, where):
            s, failed = sel.series(facts, spec["suite"], m, metric, where, be)
            rows = [r for L, r in sorted(s.items()) if (lo or 0) <= L <= (hi or 2**62)]
            name = arch.name(m) + (f" [{be}]" if be else "")
            if len(rows) < 3 or rows[-1]["context"] < 8 * rows[0]["context"]:
                res.missing.append(
                    f"{name} · {sel.group_text(g)}: fewer than 3 lengths spanning 8x"
                )
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
                f"{name} exponent of {sel.what(spec['suite'], METRIC_TEXT.get(metric, metric))} vs "
                "context, "
                f"{fmt_len(xs[0])}-{fmt_len(xs[-1])} · {sel.group_text(g)}"
            )
            note = (
                "failed beyond: "
                f"{', '.join(f'{fmt_len(L)} {st}' for L, st in sorted(failed.items()))}"
                if failed
                else ""
            )
            res.obs.append(Obs(label, est, sel.anchor(facts, spec, g, m), "exponent", note))
    return res


def crossover(facts: Facts, spec: dict) -> Result:
    """Length at which `den` overtakes `num`; outside the range measured, a bound."""
    res, metric = Result(), sel.metric_of(spec)
    for g, where, a, b in sel.num_den(facts, spec, res):
        ba = sel.backends(facts, spec, "num_backend", a, where)[0]
        bb = sel.backends(facts, spec, "den_backend", b, where)[0]
        sa, sb = (
            sel.series(facts, spec["suite"], m, metric, where, be)[0]
            for m, be in ((a, ba), (b, bb))
        )
        la, lb = (
            arch.name(a) + (f" [{ba}]" if ba else ""),
            arch.name(b) + (f" [{bb}]" if bb else ""),
        )
        found = pair(facts, spec["suite"], sa, sb, la, lb, g, sel.anchor(facts, spec, g, a))
        what = METRIC_TEXT.get(metric, metric)
        label = f"length where {lb} overtakes {la} ({what}) · {sel.group_text(g)}"
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
        span = sel.span_text(spec)  # say which lengths were wanted: the suite may have others
        res.missing.append(f"no {suite} points{span}{' at' + where if where else ''} in this run")
    return res
