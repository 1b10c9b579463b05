"""Model-level speed figures: time to first token, decode latency (p50 with the p99 band),
tokens/s vs batch, MFU / MBU and energy per token, each vs context on log-log axes, one figure
per (size, batch, dtype) group."""

from __future__ import annotations

from harness.report import anchors, arch
from harness.report.facts import Facts, flag
from harness.report.figures import base


def _where(group) -> dict:
    size, batch, dtype = group
    return dict(size=size, batch=batch, dtype=dtype)


def _group_text(group) -> str:
    size, batch, dtype = group
    return " ".join(x for x in (size, f"batch {batch}", dtype) if x)


def lines(
    ax,
    facts: Facts,
    suite: str,
    where: dict,
    metric: str,
    scale: float = 1.0,
    band: str | None = None,
    label_suffix: str = "",
    style: str = "-",
) -> tuple[set, set]:
    """One line per model (legend: model [backend]); failed points marked. Returns the failure
    statuses seen and the lengths plotted."""
    statuses, lengths = set(), set()
    for i, model in enumerate(facts.models(suite, ok=False, **where)):
        colour = base.color(model, i)
        s = facts.series(suite, model, metric, **where)
        if not s.empty:
            backend = s["backend"].iloc[-1]
            label = arch.series_label(model, "", backend) + label_suffix
            ax.plot(
                s["context"], s[metric] * scale, style, marker="o", ms=3, color=colour, label=label
            )
            lengths |= set(s["context"])
            if band:
                b = s[s[band].notna()]
                if not b.empty:
                    ax.fill_between(
                        b["context"],
                        b[metric] * scale,
                        b[band] * scale,
                        color=colour,
                        alpha=0.18,
                        linewidth=0,
                    )
        fails = facts.failures(suite, model, **where)
        statuses |= base.mark_failures(ax, fails, "context", colour)
        lengths |= set(fails["context"])
    return statuses, lengths


def _context_figure(facts, suite, group, panels, kind, title, caption="") -> base.Figure | None:
    """panels: [(metric, y label, y scale, log y, band)] sharing the group's lines."""
    where = _where(group)
    fig, axes = base.new(len(panels))
    any_data = False
    for ax, (metric, ylabel, scale, logy, band) in zip(axes, panels, strict=True):
        statuses, lengths = lines(ax, facts, suite, where, metric, scale, band)
        has = ax.get_legend_handles_labels()[0]
        any_data |= bool(has)
        if not has and not statuses:
            base.no_data(ax, f"no {metric} measured")
            continue
        if logy and has:
            base.log_y(ax)
        base.length_axis(ax, lengths)
        ax.set_ylabel(ylabel)
        base.legend(ax, statuses)
    if (
        not any_data
        and not facts.rows(suite, ok=False, **where)["status"]
        .isin(("oom", "timeout", "crashed", "cuda_error", "invalid_output"))
        .any()
    ):
        import matplotlib.pyplot as plt

        plt.close(fig)
        return None
    fid = anchors.figure(kind, *group)
    return base.finish(fig, axes, fid, f"{title} · {_group_text(group)}", caption)


def ttft(facts: Facts) -> list[base.Figure]:
    return [
        f
        for g in base.capped(facts, "time to first token", plot_groups(facts, "prefill"))
        if (
            f := _context_figure(
                facts,
                "prefill",
                g,
                [("time_ms", "time to first token (ms, median)", 1, True, None)],
                "prefill",
                "Time to first token (prefill) vs context",
                "Median of the timed prefill calls; lower is better.",
            )
        )
    ]


def decode(facts: Facts) -> list[base.Figure]:
    out = []
    for g in base.capped(facts, "decode latency", plot_groups(facts, "decode")):
        rows = facts.rows("decode", **_where(g))
        band = "p99_ms" if rows["p99_ms"].notna().any() else "p90_ms"
        why = (
            "too few samples for p99 at every point" if band == "p90_ms" else "from the raw samples"
        )
        caption = f"Line: p50 per-token latency; band: p50 to {band[:3]} ({why})."
        f = _context_figure(
            facts,
            "decode",
            g,
            [("time_ms", "decode latency per token (ms)", 1, True, band)],
            "decode",
            "Decode latency per token vs context",
            caption,
        )
        if f:
            out.append(f)
    return out


def utilization(facts: Facts) -> list[base.Figure]:
    """MFU of prefill beside MBU of decode, per group both suites share."""
    out = []
    groups = sorted(set(facts.groups("prefill")) | set(facts.groups("decode")))
    for g in base.capped(facts, "MFU / MBU", groups):
        where = _where(g)
        pre = facts.rows("prefill", **where)["mfu"].notna().any()
        dec = facts.rows("decode", **where)["mbu"].notna().any()
        if not (pre or dec):
            continue
        fig, axes = base.new(2)
        for ax, suite, metric, label, has in (
            (axes[0], "prefill", "mfu", "prefill MFU (% of peak FLOP/s)", pre),
            (axes[1], "decode", "mbu", "decode MBU (% of peak HBM bandwidth)", dec),
        ):
            if not has:
                base.no_data(ax, f"{metric.upper()} is null (no datasheet peak for this GPU)")
                continue
            statuses, lengths = lines(ax, facts, suite, where, metric, 100.0)
            base.length_axis(ax, lengths)
            ax.set_ylabel(label)
            ax.set_ylim(bottom=0)
            base.legend(ax, statuses)
        out.append(
            base.finish(
                fig,
                axes,
                anchors.figure("utilization", *g),
                f"MFU and MBU vs context · {_group_text(g)}",
                "Achieved / datasheet peak; the suites compute both from the cost model's FLOP "
                "and byte counts.",
            )
        )
    return out


def energy(facts: Facts) -> list[base.Figure]:
    out = []
    groups = sorted(set(facts.groups("prefill")) | set(facts.groups("decode")))
    for g in base.capped(facts, "energy", groups):
        where = _where(g)
        has = [facts.rows(s, **where)["energy_jpt"].notna().any() for s in ("prefill", "decode")]
        if not any(has):
            continue
        fig, axes = base.new(2)
        for ax, suite, ok in zip(axes, ("prefill", "decode"), has, strict=True):
            if not ok:
                base.no_data(ax, f"no {suite} energy measured")
                continue
            statuses, lengths = lines(ax, facts, suite, where, "energy_jpt", 1.0)
            base.log_y(ax)
            base.length_axis(ax, lengths)
            ax.set_ylabel(f"{suite} energy (J per token)")
            base.legend(ax, statuses)
        out.append(
            base.finish(
                fig,
                axes,
                anchors.figure("energy", *g),
                f"Energy per token vs context · {_group_text(g)}",
                "GPU energy counter (NVML) around the timed region, divided by the tokens it "
                "processed or generated.",
            )
        )
    return out


def throughput(facts: Facts) -> list[base.Figure]:
    """tokens/s vs batch at each context: decode points at several batches as lines, the
    throughput search's largest batch that fits as a star, its OOM batches marked."""
    out = []
    keys = set()
    for suite in ("decode", "throughput"):
        rows = facts.rows(suite, ok=False)
        keys |= set(zip(rows["size"], rows["dtype"], rows["context"], strict=True))
    chosen = []
    for size, dtype, context in sorted(keys):
        dec = facts.rows("decode", size=size, dtype=dtype, context=context)
        thr = facts.rows("throughput", ok=False, size=size, dtype=dtype, context=context)
        if not thr.empty or dec["batch"].nunique() >= 2:
            chosen.append((not thr.empty, size, dtype, context))
    chosen.sort(key=lambda c: (not c[0], c[1:]))  # where the throughput search ran first
    for _, size, dtype, context in base.capped(
        facts, "throughput", chosen, lambda c: f"{c[1]} {c[2]} L={c[3]}"
    ):
        dec = facts.rows("decode", size=size, dtype=dtype, context=context)
        thr = facts.rows("throughput", ok=False, size=size, dtype=dtype, context=context)
        fig, axes = base.new(1)
        ax, statuses = axes[0], set()
        models = sorted(set(dec["model"]) | set(thr["model"]), key=lambda m: (arch.family(m), m))
        for i, model in enumerate(models):
            colour = base.color(model, i)
            d = dec[dec["model"] == model].sort_values("batch")
            if not d.empty:
                ax.plot(
                    d["batch"],
                    d["tokens_per_s"],
                    "-o",
                    ms=3,
                    color=colour,
                    label=arch.series_label(model, "", d["backend"].iloc[-1]) + " decode",
                )
            for _, r in thr[thr["model"] == model].iterrows():
                if r["status"] == "ok" and r["best_batch"]:
                    capped = flag(r["batch_capped"])  # every batch ran: more may fit
                    ax.plot(
                        [r["best_batch"]],
                        [r["tokens_per_s"]],
                        "*",
                        ms=10,
                        color=colour,
                        mfc="none" if capped else colour,
                        label=f"{arch.name(model)} "
                        + (
                            "search's largest batch (more may fit)"
                            if capped
                            else "largest batch that fits"
                        ),
                    )
                search = (facts.run.records.get(r["hash"], {}).get("metrics") or {}).get(
                    "search"
                ) or []
                oom = [s["batch"] for s in search if s.get("status") != "ok"]
                if oom:
                    import pandas as pd

                    statuses |= base.mark_failures(
                        ax, pd.DataFrame({"batch": oom, "status": "oom"}), "batch", colour
                    )
            statuses |= base.mark_failures(
                ax,
                facts.failures("decode", model, size=size, dtype=dtype, context=context),
                "batch",
                colour,
            )
        base.log2_x(ax)
        base.log_y(ax)
        ax.set_xlabel("batch (sequences)")
        ax.set_ylabel("decode throughput (tokens/s)")
        base.legend(ax, statuses)
        from harness.report.facts import fmt_len

        out.append(
            base.finish(
                fig,
                axes,
                anchors.figure("throughput", size, None, dtype, f"L{context}"),
                f"Decode tokens/s vs batch · {size} {dtype} at {fmt_len(context)} context",
                "Stars: the largest batch the throughput search found to fit (hollow: the "
                "search's own largest batch, which ran: more may fit); marks at the top: "
                "batches that ran out of memory.",
            )
        )
    return out


def plot_groups(facts: Facts, suite: str) -> list:
    """Groups with a point that ran or failed (not only skipped): a figure of failures still
    tells the reader where a model stops."""
    rows = facts.rows(suite, ok=False)
    rows = rows[rows["status"] != "skipped"]
    keys = rows[["size", "batch", "dtype"]].drop_duplicates()
    return sorted((str(s), int(b), str(d)) for s, b, d in keys.itertuples(index=False))
