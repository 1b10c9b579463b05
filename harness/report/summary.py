"""The answer first: a few sentences generated from the data, each linked to where it comes from.

Only statements the numbers carry: which architecture is fastest at which lengths (per measured
length, the lowest median), where the Transformer and Mamba-2 cross (with the interval), where a
model stops running, memory at the longest shared length, the largest batch that fits, recall and
perplexity, the ledger's tally, and what the run is missing.
"""

from __future__ import annotations

from harness.report import anchors, arch
from harness.report.data import FAILED
from harness.report.facts import Facts, flag, fmt_len, fmt_ms, frontier_end, ran_beyond_search
from harness.report.quality_summary import quality
from harness.report.sentence import Sentence
from harness.units import format_bytes


def present(v) -> bool:
    return v is not None and v == v and v != 0


WHAT = {"prefill": "time to first token", "decode": "decode latency per token"}


def _the(model: str) -> str:
    return ("the " if arch.family(model) == "transformer" else "") + arch.name(model)


def _gtext(size: str, batch: int, dtype: str) -> str:
    return " ".join(x for x in (size, f"batch {batch}", dtype) if x)


def winners(facts: Facts, suite: str, where: dict) -> list[tuple[str, int, int]]:
    """[(model, first length, last length)]: the fastest model at each length where at least two
    ran, run-length encoded."""
    rows = facts.rows(suite, **where)
    rows = rows[rows["time_ms"].notna()]
    counts = rows.groupby("context")["model"].nunique()
    rows = rows[rows["context"].isin(counts[counts >= 2].index)]
    if rows.empty:
        return []
    best = rows.sort_values(["context", "time_ms", "model"]).drop_duplicates("context")
    bands: list[list] = []
    for model, L in zip(best["model"], best["context"], strict=True):
        if bands and bands[-1][0] == model:
            bands[-1][2] = int(L)
        else:
            bands.append([model, int(L), int(L)])
    return [tuple(b) for b in bands]


def _bands_text(bands) -> str:
    parts = []
    for i, (model, lo, hi) in enumerate(bands):
        if len(bands) == 1:
            span = f"at every length from {fmt_len(lo)} to {fmt_len(hi)}"
        elif i == 0:
            span = f"up to {fmt_len(hi)}"
        elif i == len(bands) - 1:
            span = f"from {fmt_len(lo)}" + (f" to {fmt_len(hi)}" if hi != lo else "")
        else:
            span = f"from {fmt_len(lo)} to {fmt_len(hi)}" if hi != lo else f"at {fmt_len(lo)}"
        parts.append(f"{_the(model)} {span}")
    return ", ".join(parts)


def speed(facts: Facts, crossovers) -> list[Sentence]:
    out = []
    device = facts.device_name
    for suite in ("prefill", "decode"):
        for size, batch, dtype in facts.groups(suite):
            where = dict(size=size, batch=batch, dtype=dtype)
            bands = winners(facts, suite, where)
            if not bands:
                continue
            anchor = anchors.figure(suite, size, batch, dtype)
            out.append(
                Sentence(
                    f"On {device} ({_gtext(size, batch, dtype)}), the fastest {WHAT[suite]} is "
                    f"{_bands_text(bands)}.",
                    anchor,
                )
            )
            t, m = facts.pick("transformer", suite, **where), facts.pick("mamba2", suite, **where)
            for x in crossovers:
                if (x.suite, x.size, x.batch, x.dtype) == (suite, size, batch, dtype) and {
                    x.model_a,
                    x.model_b,
                } == {t, m}:
                    out.append(Sentence(f"{WHAT[suite].capitalize()}: {x.text()}.", anchor))
    return out


def failures(facts: Facts) -> list[Sentence]:
    """Where each model stops: its shortest failed length per group (over the prefill, decode and
    memory suites), and the frontier search's limits, one sentence per phase."""
    out = []
    df = facts.df[
        facts.df["status"].isin(FAILED) & facts.df["suite"].isin(("prefill", "decode", "memory"))
    ]
    for (model, size, batch, dtype), part in df.groupby(
        ["model", "size", "batch", "dtype"], sort=True
    ):
        part = part.sort_values(["context", "suite"])
        first = part.iloc[0]
        at_first = part[part["context"] == first["context"]]
        what = {"oom": "runs out of memory", "timeout": "times out"}.get(
            first["status"], f"fails ({first['status']})"
        )
        ok = facts.ok[
            (facts.ok["model"] == model)
            & (facts.ok["size"] == size)
            & (facts.ok["batch"] == batch)
            & (facts.ok["dtype"] == dtype)
            & facts.ok["suite"].isin(at_first["suite"].unique())
        ]
        ran = f"; longest that ran: {fmt_len(ok['context'].max())}" if not ok.empty else ""
        out.append(
            Sentence(
                f"{_the(model)[0].upper()}{_the(model)[1:]} {what} from "
                f"{fmt_len(first['context'])} tokens "
                f"in {' and '.join(sorted(at_first['suite'].unique()))} "
                f"({_gtext(size, batch, dtype)}{ran}).",
                anchors.point(first["hash"]),
            )
        )
    fr = facts.rows("frontier")
    for (size, batch, dtype, phase), part in fr.groupby(
        ["size", "batch", "dtype", "phase"], sort=True
    ):
        part = part[part["max_context"].notna()].sort_values(["max_context", "model"])
        limits = part["frontier_limit"]
        items = []
        for m, mx, ff, lim in zip(
            part["model"], part["max_context"], part["first_failure"], limits, strict=True
        ):
            reach = facts.suite_reach(m, phase, size, batch, dtype)
            if ran_beyond_search(mx, reach, lim == "time"):
                items.append(
                    f"{_the(m)} up to {fmt_len(reach)} (the {phase} suite's point; the search, "
                    f"cut by its time limit, stopped at {fmt_len(mx)})"
                )
                continue
            # no failure and no time limit: the search stopped at its own largest length
            end = (
                f" ({frontier_end(ff, lim == 'time')})"
                if present(ff)
                else " (the search's maximum)"
            )
            items.append(f"{_the(m)} up to {fmt_len(mx)}{end}")
        if items:
            out.append(
                Sentence(
                    f"Longest context that runs ({phase}, {_gtext(size, batch, dtype)}): "
                    f"{'; '.join(items)}.",
                    anchors.figure("frontier", size, int(batch), dtype),
                )
            )
    return out


def memory(facts: Facts) -> list[Sentence]:
    out = []
    for suite in ("memory", "decode"):
        for size, batch, dtype in facts.groups(suite):
            rows = facts.rows(suite, size=size, batch=batch, dtype=dtype)
            rows = rows[rows["peak_bytes"].notna()]
            n = rows["model"].nunique()
            shared = rows.groupby("context")["model"].nunique()
            shared = shared[shared == n]
            if n < 2 or shared.empty:
                continue
            L = int(shared.index.max())
            at = rows[rows["context"] == L].sort_values("peak_bytes")
            items = ", ".join(
                f"{arch.name(m)} {format_bytes(b)}"
                for m, b in zip(at["model"], at["peak_bytes"], strict=True)
            )
            out.append(
                Sentence(
                    f"Peak memory at {fmt_len(L)} tokens ({_gtext(size, batch, dtype)}, {suite} "
                    "suite): "
                    f"{items}.",
                    anchors.figure("memory", size, batch, dtype),
                )
            )
        if out:
            break  # the memory suite when it ran; the decode suite's peaks otherwise
    return out


def _batch_text(model: str, batch: float, tokens_per_s: float, capped: bool) -> str:
    """One model's throughput search result; at the search's own largest batch, a lower bound."""
    if capped:
        return (
            f"{arch.name(model)} batch ≥{int(batch)} ({tokens_per_s:,.0f} tokens/s, the search's "
            "largest batch)"
        )
    return f"{arch.name(model)} batch {int(batch)} ({tokens_per_s:,.0f} tokens/s)"


def throughput(facts: Facts) -> list[Sentence]:
    out = []
    rows = facts.rows("throughput")
    for (size, dtype, L), part in rows.groupby(["size", "dtype", "context"], sort=True):
        part = part.sort_values("tokens_per_s", ascending=False)
        items = ", ".join(
            _batch_text(m, b, t, flag(c))
            for m, b, t, c in zip(
                part["model"],
                part["best_batch"],
                part["tokens_per_s"],
                part["batch_capped"],
                strict=True,
            )
        )
        out.append(
            Sentence(
                f"Largest decode batch that fits at {fmt_len(L)} ({size}): {items}.",
                anchors.figure("throughput", size, None, dtype, f"L{int(L)}"),
            )
        )
    return out


def kernels(facts: Facts, crossovers) -> list[Sentence]:
    out = []
    for size, batch, dtype in facts.groups("kernels"):
        for op in facts.models("kernels", size=size, batch=batch, dtype=dtype):
            rows = facts.rows("kernels", model=op, size=size, batch=batch, dtype=dtype)
            if (
                rows["backend"].nunique() < 2
                or rows.groupby("context")["backend"].nunique().max() < 2
            ):
                continue
            L = int(
                rows.groupby("context")["backend"].nunique().pipe(lambda c: c[c >= 2]).index.max()
            )
            at = rows[rows["context"] == L].sort_values("time_ms")
            best, second = at.iloc[0], at.iloc[1]
            out.append(
                Sentence(
                    f"Fastest {arch.name(op)} backend at {fmt_len(L)}: {best['backend']} "
                    f"({fmt_ms(best['time_ms'])}, {second['time_ms'] / best['time_ms']:.2g}× "
                    "faster than "
                    f"{second['backend']}).",
                    anchors.figure("kernels", "", batch, dtype, op),
                )
            )
    for x in crossovers:
        if x.suite == "kernels" and {x.model_a, x.model_b} == {"attention", "ssd"}:
            out.append(Sentence(f"Kernels: {x.text()}.", x.anchor))
    return out


def ledger(verdicts) -> list[Sentence]:
    if not verdicts:
        return []
    from harness.report.ledger import VERDICTS

    counts = {v: sum(1 for x in verdicts if x.verdict == v) for v in VERDICTS}
    text = ", ".join(f"{n} {v}" for v, n in counts.items() if n)
    return [Sentence(f"Claims ledger ({len(verdicts)} claims): {text}.", anchors.LEDGER)]


def completeness(facts: Facts, planned: int | None, missing_suites: list[str]) -> list[Sentence]:
    out = []
    n = len(facts.df)
    if planned and planned > n:
        out.append(
            Sentence(
                f"This run is partial: {planned - n} of {planned} planned points have no record "
                "yet "
                "(start the same command again to resume it).",
                anchors.POINTS,
            )
        )
    if missing_suites:
        out.append(Sentence(f"No record yet for: {', '.join(missing_suites)}.", anchors.POINTS))
    return out


def comparison(cmp) -> list[Sentence]:
    """Run B against this run (A), in one sentence."""
    if cmp is None:
        return []
    counts = cmp.counts()
    moved = ", ".join(f"{n} {flag}" for flag, n in counts.items() if flag not in ("same", "status"))
    text = (
        f"Against run {cmp.run_b}: of {len(cmp.rows)} shared points, "
        f"{moved or 'none'} beyond the run-to-run spread"
    )
    if counts.get("status"):
        text += f", {counts['status']} changed status"
    moved_suites = [(suite, g) for suite, g, _ in cmp.geomean() if abs(g - 1) >= 0.005]
    gm = "; ".join(f"{suite} B/A {g:.3f}× (geometric mean)" for suite, g in moved_suites)
    return [Sentence(text + (f"; {gm}." if gm else "."), anchors.COMPARE)]


def sentences(
    facts: Facts, crossovers, verdicts, planned, missing_suites, cmp=None
) -> list[Sentence]:
    if facts.df.empty:
        return completeness(facts, planned, missing_suites) or [
            Sentence("This run has no records yet.")
        ]
    return [
        *completeness(facts, planned, missing_suites),
        *speed(facts, crossovers),
        *failures(facts),
        *memory(facts),
        *throughput(facts),
        *kernels(facts, crossovers),
        *quality(facts),
        *ledger(verdicts),
        *comparison(cmp),
    ]


__all__ = ["Sentence", "sentences"]
