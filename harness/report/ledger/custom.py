"""Claims whose test is not one generic measurement: completion at 1M tokens, tail latency,
recall accuracy, an analytic KV-cache size and perplexity by position bucket.

Each evaluator returns (checks, missing) like the generic path; `HANDLES` says which expect keys
each one understands, so an unknown key still makes the claim untestable rather than ignored.
"""

from __future__ import annotations

from harness.report import anchors, arch, stats
from harness.report.data import FAILED
from harness.report.facts import Facts, fmt_len
from harness.report.figures.quality import buckets
from harness.report.ledger import judge
from harness.report.ledger.select import Obs, group_text
from harness.units import format_bytes

M = 1024 * 1024
MUCH_SLOWER = 10.0  # "choke": at least this many times the SSM's time
ACCURACY_TIE = 0.01  # an accuracy without its sample count: differences this small are ties
Z95 = 1.96
SAMPLING_ONLY = (
    "interval: evaluation sampling only (test sequences; one training run per model and rate, "
    "seeds not varied; with a rate sweep the best rate is picked on the same test set)"
)


def _check(key, obs, outcome, want):
    from harness.report.ledger import Check

    return Check(key, obs, outcome, want)


def _groups(facts: Facts, suites, batch=None):
    rows = facts.df[facts.df["suite"].isin(suites) & (facts.df["status"] != "skipped")]
    keys = {
        (str(s), int(b), str(d))
        for s, b, d in rows[["size", "batch", "dtype"]].drop_duplicates().itertuples(index=False)
    }
    return sorted(g for g in keys if batch in (None, g[1]))


def choke_1m(facts: Facts, expect: dict):
    """Per (size, dtype) at batch 1: the Transformer chokes if its prefill or decode at >= 1M
    failed, or it completed but took >= 10x the SSM's prefill time; the SSM must complete both."""
    checks, missing = [], []
    for g in _groups(facts, ("prefill", "decode"), batch=1):
        where = dict(size=g[0], batch=g[1], dtype=g[2])
        t = next(
            (
                m
                for m in ("transformer", "transformer_mha")
                if facts.models("prefill", ok=False, model=m, **where)
                or facts.models("decode", ok=False, model=m, **where)
            ),
            "transformer",
        )
        s = "mamba2" if facts.models("prefill", ok=False, model="mamba2", **where) else "mamba1"
        rows = facts.df[
            facts.df["suite"].isin(("prefill", "decode"))
            & (facts.df["size"] == g[0])
            & (facts.df["batch"] == g[1])
            & (facts.df["dtype"] == g[2])
            & (facts.df["context"] >= M)
            & (facts.df["status"] != "skipped")
        ]
        tr, sr = rows[rows["model"] == t], rows[rows["model"] == s]
        if sr.empty:
            missing.append(f"{arch.name(s)} prefill/decode at ≥1M · {group_text(g)}: not run")
        else:
            bad = sr[sr["status"] != "ok"]
            text = ", ".join(f"{p} {st}" for p, st in zip(sr["suite"], sr["status"], strict=True))
            obs = Obs(
                f"{arch.name(s)} prefill + decode at ≥1M · {group_text(g)}",
                None,
                anchors.figure("prefill", *g),
                "status",
                text,
            )
            checks.append(_check("ssm", obs, judge.FAIL if len(bad) else judge.PASS, "completes"))
        if tr.empty:
            missing.append(f"{arch.name(t)} prefill/decode at ≥1M · {group_text(g)}: not run")
            continue
        label = f"{arch.name(t)} prefill + decode at ≥1M · {group_text(g)}"
        failed = tr[tr["status"].isin(FAILED)]
        if not failed.empty:
            r = failed.iloc[0]
            obs = Obs(
                label,
                None,
                anchors.figure(r["suite"], *g),
                "status",
                f"{r['suite']} {r['status']} at {fmt_len(r['context'])}: {r['reason'][:80]}",
            )
            checks.append(
                _check("transformer", obs, judge.PASS, f"fails or ≥{MUCH_SLOWER:g}× slower")
            )
            continue
        ts, ss = facts.points("prefill", t, **where), facts.points("prefill", s, **where)
        common = sorted(set(ts) & set(ss) & set(tr["context"]))
        if not common:
            missing.append(
                f"{label}: completed; no {arch.name(s)} prefill at the same length to compare"
            )
            continue
        L = common[-1]
        est = facts.ratio(ts[L], ss[L], "time_ms")
        outcome, _ = judge.at_least(MUCH_SLOWER, est)
        obs = Obs(
            f"{label}: prefill time / {arch.name(s)}'s at {fmt_len(L)}",
            est,
            anchors.figure("prefill", *g),
            "ratio",
            "completed both",
        )
        checks.append(_check("transformer", obs, outcome, f"fails or ≥{MUCH_SLOWER:g}× slower"))
    return checks, missing


def p99_spikes(facts: Facts, expect: dict):
    checks, missing = [], []
    for g in facts.groups("decode"):
        where = dict(size=g[0], batch=g[1], dtype=g[2])
        t, s = facts.pick("transformer", "decode", **where), facts.pick("mamba2", "decode", **where)
        if not t or not s:
            missing.append(f"{group_text(g)}: needs a Transformer and Mamba-2 decode")
            continue
        st, ss = facts.points("decode", t, **where), facts.points("decode", s, **where)
        for L in sorted(set(st) & set(ss)):
            rows = [st[L], ss[L]]
            samples = [facts.run.samples(r["hash"]) for r in rows]
            if min(len(x) for x in samples) >= 100:
                boots = [
                    stats.boot_quantile_ratio(x, r["hash"], 0.99)
                    for x, r in zip(samples, rows, strict=True)
                ]
                est = stats.Estimate.from_reps(boots[1][1] - boots[0][1], boots[1][0] - boots[0][0])
            elif all(r["p99_ms"] == r["p99_ms"] and r["p99_ms"] for r in rows):
                est = stats.Estimate.exact(
                    rows[1]["p99_ms"] / rows[1]["time_ms"] - rows[0]["p99_ms"] / rows[0]["time_ms"]
                )
            else:
                missing.append(f"{group_text(g)} at {fmt_len(L)}: p99 needs ≥100 samples")
                continue
            at = f"{fmt_len(L)} · {group_text(g)}"
            label = f"p99/p50 of {arch.name(s)} minus the Transformer's at {at}"
            outcome, want = judge.PREDICATES["ssm_p99_over_p50_greater_than_transformer"](True, est)
            checks.append(
                _check(
                    "ssm_p99_over_p50_greater_than_transformer",
                    Obs(label, est, anchors.figure("decode", *g), "difference"),
                    outcome,
                    want,
                )
            )
    return checks, missing


QUALITY_KEYS = ["size", "dtype", "context", "width", "kv_pairs", "depth", "train_length"]


def _mean_var(acc, scored) -> float:
    """Variance of the mean of independent accuracies, each a binomial proportion over `scored`
    samples (Agresti-Coull: a point at 0% or 100% still has a width); NaN without counts."""
    n = scored.astype(float) + 4
    p = (acc * scored + 2) / n
    return float((p * (1 - p) / n).sum(skipna=False) / len(acc) ** 2)  # NaN: a count missing


def _mean_accuracy(facts: Facts, suite: str):
    """{size: (Transformer mean, Mamba-2 mean, matched conditions, variance of each mean, the
    models' name: their widths, else the size)} over the conditions both ran."""
    rows = facts.rows(suite)
    rows = rows[rows["accuracy"].notna()]
    out = {}
    for size, part in rows.groupby("size", sort=True):
        t, s = facts.pick("transformer", suite, size=size), facts.pick("mamba2", suite, size=size)
        if not t or not s:
            continue
        key = [k for k in QUALITY_KEYS if k != "size"]
        a = part[part["model"] == t].set_index(key)
        b = part[part["model"] == s].set_index(key)
        both = a.index.intersection(b.index)
        if len(both):
            a, b = a.loc[both], b.loc[both]
            var = tuple(_mean_var(x["accuracy"], x["scored"]) for x in (a, b))
            # trained models are named by width: the size preset is the speed suites' scale
            widths = sorted({int(w) for w in both.get_level_values("width") if w == w})
            name = f"width {'/'.join(map(str, widths))}" if widths else str(size)
            out[str(size)] = (
                float(a["accuracy"].mean()),
                float(b["accuracy"].mean()),
                len(both),
                var,
                name,
            )
    return out


def _accuracy_estimate(ta: float, sa: float, var: tuple[float, float], relative: bool):
    """Transformer minus Mamba-2 accuracy, or that difference relative to the Transformer's, with
    a normal 95% interval from the sampling variances (delta method for the ratio); without
    sample counts the ±ACCURACY_TIE band of a tie."""
    vt, vs = var
    if relative:
        value = (ta - sa) / ta if ta else float("nan")
        sd = (vs / ta**2 + sa**2 * vt / ta**4) ** 0.5 if ta else float("nan")
    else:
        value, sd = ta - sa, (vt + vs) ** 0.5
    if sd != sd:  # no counts recorded
        return stats.Estimate(value, value - ACCURACY_TIE, value + ACCURACY_TIE), "tie band ±0.01"
    return stats.Estimate(value, value - Z95 * sd, value + Z95 * sd), SAMPLING_ONLY


def _accuracy_checks(facts: Facts, key: str, expect_value, relative: bool):
    checks, missing = [], []
    for suite in ("mqar", "niah"):
        found = _mean_accuracy(facts, suite)
        if not found:
            missing.append(f"{suite}: no Transformer and Mamba-2 accuracy at matched settings")
        for size, (ta, sa, n, var, name) in found.items():
            where = f"{suite}{' ' + name if name else ''}, mean over {n} matched settings"
            est, note = _accuracy_estimate(ta, sa, var, relative)
            what = (
                "relative accuracy drop of Mamba-2 vs Transformer"
                if relative
                else "Transformer minus Mamba-2 accuracy"
            )
            label = f"{what} ({ta:.1%} vs {sa:.1%}) · {where}"
            outcome, want = judge.PREDICATES[key](expect_value, est)
            obs = Obs(label, est, anchors.figure(suite, size), "difference", note)
            checks.append(_check(key, obs, outcome, want))
    return checks, missing


def precision_drop(facts: Facts, expect: dict):
    return _accuracy_checks(facts, "relative_drop_min", expect["relative_drop_min"], relative=True)


def recall_wins(facts: Facts, expect: dict):
    return _accuracy_checks(
        facts, "transformer_better", expect["transformer_better"], relative=False
    )


LLAMA_70B_PARAMS = 70.6e9  # Llama-2/3 70B


def kv_70b(facts: Facts, expect: dict):
    """KV cache of the Llama-70B shape at 128K in bf16: 2 (K, V) x 80 layers x 8 heads x 128 x L x 2
    bytes, against this run's GPU read two ways, since "available" memory can mean either: the
    whole device, and what the model's own bf16 weights leave of it. The two can disagree (on a
    150 GB H200 the cache is 0.28 of the device but 4x what the weights leave): then the verdict
    is inconclusive and both numbers are shown."""
    kv = 2 * 80 * 8 * 128 * 128 * 1024 * 2
    env = facts.run.env
    memory = env.get("device_memory_bytes")
    if not env.get("gpus") or not memory:
        return [], [
            f"needs a GPU's memory to compare with; the KV cache is {format_bytes(kv)} (analytic)"
        ]
    name = "KV cache of Llama-70B (80 layers, 8 KV heads x 128, bf16) at 128K"
    checks = []
    whole = stats.Estimate.exact(kv / memory)
    label = f"{name} = {format_bytes(kv)} / {facts.device_name} memory {format_bytes(memory)}"
    outcome, _ = judge.above(1.0)(True, whole)
    obs = Obs(label, whole, "environment", "ratio", "analytic, from the shape")
    checks.append(_check("analytic_only", obs, outcome, "> 1 (exceeds the GPU)"))
    weights = 2 * LLAMA_70B_PARAMS
    # the cache exceeds what the weights leave exactly when cache + weights exceed the device
    both = stats.Estimate.exact((kv + weights) / memory)
    label = f"{name} + its bf16 weights ({format_bytes(weights)}) / {facts.device_name} memory"
    outcome, _ = judge.above(1.0)(True, both)
    obs = Obs(label, both, "environment", "ratio", "analytic: > 1 when the cache exceeds what "
              "the weights leave")  # fmt: skip
    checks.append(_check("analytic_only", obs, outcome, "> 1 (exceeds what the weights leave)"))
    return checks, []


REGIMES = [  # (name, start min, end max, expected relative bpb of Mamba-2 vs Transformer)
    ("≤4K: Transformer 2-5% better", 0, 4096, (0.02, 0.05)),
    ("4K-32K: within 1-2%", 4096, 32768, (-0.02, 0.02)),
    ("32K+: Mamba 5-10% better", 32768, float("inf"), (-0.10, -0.05)),
]


def _train_length(facts: Facts, row) -> float:
    """The length the model was trained at; inf when neither the record nor the row says."""
    metrics = facts.run.records[row["hash"]].get("metrics") or {}
    for value in (metrics.get("train_length"), row["train_length"]):
        if isinstance(value, int | float) and value == value and value > 0:
            return float(value)
    return float("inf")


def ppl_by_length(facts: Facts, expect: dict):
    checks, missing = [], []
    rows = facts.rows("perplexity")
    for size, part in rows.groupby("size", sort=True):
        t, s = (
            facts.pick("transformer", "perplexity", size=size),
            facts.pick("mamba2", "perplexity", size=size),
        )
        if not t or not s:
            continue
        rt = part[part["model"] == t].sort_values("context").iloc[-1]
        rs = part[part["model"] == s].sort_values("context").iloc[-1]
        bt = {(a, b): v for a, b, v in buckets(facts.run.records[rt["hash"]])}
        bs = {(a, b): v for a, b, v in buckets(facts.run.records[rs["hash"]])}
        # the claim compares models within their context windows: positions past what either
        # model was trained on measure extrapolation (the plot shows it), not this claim
        trained = min(_train_length(facts, r) for r in (rt, rs))
        for start, end in sorted(set(bt) & set(bs)):
            if end > trained:
                missing.append(
                    f"positions {fmt_len(start)}-{fmt_len(end)}: past the {fmt_len(trained)}-token"
                    " training length (extrapolation, in the plot; the claim compares models "
                    "within their context)"
                )
                continue
            regime = next((r for r in REGIMES if start >= r[1] and end <= r[2]), None)
            if regime is None:
                missing.append(
                    f"bucket {fmt_len(start)}-{fmt_len(end)} spans two of the claim's ranges"
                )
                continue
            est = stats.Estimate.exact(bs[(start, end)] / bt[(start, end)] - 1)
            outcome, want = judge.in_range(regime[3], est)
            label = (
                "Mamba-2 bpb / Transformer bpb - 1, positions "
                f"{fmt_len(start)}-{fmt_len(end)} ({regime[0]})"
            )
            checks.append(
                _check(
                    "analysis",
                    Obs(label, est, anchors.figure("perplexity", str(size)), "difference"),
                    outcome,
                    want,
                )
            )
    if not checks and not missing:
        missing.append(
            "no perplexity points with bits per byte by position for both a Transformer and Mamba-2"
        )
    return checks, missing


# claim id -> (evaluator, expect keys it understands)
CUSTOM = {
    "transformers-choke-1m": (choke_1m, {"transformer", "ssm"}),
    "p99-spikes": (p99_spikes, {"ssm_p99_over_p50_greater_than_transformer"}),
    "precision-drop-12": (precision_drop, {"relative_drop_min"}),
    "recall-transformer-wins": (recall_wins, {"transformer_better"}),
    "kv-70b-128k": (kv_70b, {"analytic_only"}),
    "ppl-by-length": (ppl_by_length, {"analysis"}),
}
