"""Peak memory vs context (measured, the cost model's prediction, the device's limit and where
each model ran out), and the OOM frontier the frontier suite bisected."""

from __future__ import annotations

import matplotlib.pyplot as plt

from harness.report import anchors, arch
from harness.report.facts import Facts, fmt_len, frontier_end, ran_beyond_search
from harness.report.figures import base
from harness.units import format_bytes

GB = 1e9
PHASES = ("prefill", "decode")


def _phase_rows(facts: Facts, phase: str, where: dict):
    """(rows with `measured` and `predicted` columns, their failures) for one phase: the memory
    suite where it ran, else the phase's own suite."""
    mem = facts.rows("memory", ok=False, **where)
    if mem[f"{phase}_peak"].notna().any():
        rows = mem.assign(measured=mem[f"{phase}_peak"], predicted=mem[f"{phase}_predicted"])
        return rows, "memory suite"
    own = facts.rows(phase, ok=False, **where)
    return own.assign(
        measured=own["peak_bytes"], predicted=own["predicted_bytes"]
    ), f"{phase} suite"


def vram(facts: Facts) -> list[base.Figure]:
    groups = set()
    for suite in ("memory", "prefill", "decode"):
        rows = facts.rows(suite, ok=False)
        rows = rows[rows["status"] != "skipped"]
        groups |= {
            (str(s), int(b), str(d))
            for s, b, d in rows[["size", "batch", "dtype"]]
            .drop_duplicates()
            .itertuples(index=False)
        }
    limit = facts.run.device_memory()
    out = []
    for g in base.capped(facts, "memory", sorted(groups)):
        size, batch, dtype = g
        where = dict(size=size, batch=batch, dtype=dtype)
        fig, axes = base.new(2)
        drawn = False
        sources = []
        for ax, phase in zip(axes, PHASES, strict=True):
            rows, source = _phase_rows(facts, phase, where)
            statuses, lengths = set(), set()
            models = sorted(rows["model"].unique(), key=lambda m: (arch.family(m), m))
            for i, model in enumerate(models):
                colour = base.color(model, i)
                part = rows[(rows["model"] == model)].sort_values("context")
                ok = part[(part["status"] == "ok") & part["measured"].notna()]
                if not ok.empty:
                    ax.plot(
                        ok["context"],
                        ok["measured"] / GB,
                        "-o",
                        ms=3,
                        color=colour,
                        label=arch.series_label(model, "", ok["backend"].iloc[-1]),
                    )
                pred = part[part["predicted"].notna()]
                if not pred.empty:
                    ax.plot(
                        pred["context"], pred["predicted"] / GB, "--", color=colour, alpha=0.7, lw=1
                    )
                statuses |= base.mark_failures(ax, part, "context", colour)
                lengths |= set(part["context"])
                for _, fr in facts.rows("frontier", model=model, phase=phase, **where).iterrows():
                    if fr["max_context"] == fr["max_context"] and fr["max_context"]:
                        ax.axvline(fr["max_context"], color=colour, ls=":", lw=1)
                        lengths.add(int(fr["max_context"]))
            if not lengths:
                base.no_data(ax, f"no {phase} memory measured")
                continue
            drawn = True
            sources.append(f"{phase}: {source}")
            if limit:
                ax.axhline(
                    limit / GB,
                    color="black",
                    lw=1,
                    ls="-.",
                    label=f"device memory ({format_bytes(limit)})",
                )
            ax.plot([], [], "k--", lw=1, label="cost model prediction")
            if facts.rows("frontier", phase=phase, **where).shape[0]:
                ax.plot([], [], "k:", lw=1, label="largest length that ran (frontier)")
            base.log_y(ax)
            base.length_axis(ax, lengths)
            ax.set_ylabel(f"peak {phase} memory (GB)")
            ax.set_title(phase)
            base.legend(ax, statuses)
        if not drawn:
            plt.close(fig)
            continue
        out.append(
            base.finish(
                fig,
                axes,
                anchors.figure("memory", *g),
                f"Peak memory vs context · {size} batch {batch} {dtype}",
                "Solid: measured peak allocated ("
                + "; ".join(sources)
                + "). Dashed: the analytic memory model. "
                "Dotted verticals: the largest length the frontier search ran.",
            )
        )
    return out


def frontier(facts: Facts) -> list[base.Figure]:
    rows = facts.rows("frontier", ok=False)
    rows = rows[rows["status"] != "skipped"]
    if rows.empty:
        return []
    out = []
    for (size, batch, dtype), part in rows.groupby(["size", "batch", "dtype"], sort=True):
        part = part.sort_values(["phase", "model"], key=lambda c: c.map(str))
        fig, axes = base.new(1, height=0.6 + 0.32 * len(part))
        ax = axes[0]
        labels = []
        for y, (_, r) in enumerate(part.iterrows()):
            colour = base.color(r["model"], y)
            labels.append(f"{arch.name(r['model'])} · {r['phase']}")
            if r["status"] != "ok":
                ax.plot([1024], [y], "X", color=colour)
                ax.text(1100, y, f" {r['status']}: {r['reason'][:60]}", va="center", fontsize=7)
                continue
            mx, ff = r["max_context"], r["first_failure"]
            fails = ff == ff and bool(ff)
            timed = r.get("frontier_limit") == "time"  # the next probe was not run: a time limit
            reach = facts.suite_reach(r["model"], r["phase"], size, batch, dtype)
            beyond = ran_beyond_search(mx, reach, timed)
            if beyond:  # hatched: ran in its suite, not searched
                start = mx if mx == mx else 0
                ax.barh(
                    y, reach - start, left=start, color=colour, alpha=0.35, height=0.6, hatch="//"
                )
                ax.text(
                    reach * 1.1,
                    y,
                    f"  {fmt_len(reach)} ({r['phase']} suite)",
                    va="center",
                    fontsize=7,
                )
                fails = False
            if mx == mx and mx:
                ax.barh(y, mx, color=colour, alpha=0.8, height=0.6)
                end = "time limit" if timed else frontier_end(ff, False)  # short: fits the axes
                label = f"  {fmt_len(mx)}" + (f" ({end})" if fails else " (search max)")
                if not beyond:
                    ax.text(max(mx, ff if fails else 0) * 1.1, y, label, va="center", fontsize=7)
            if fails:
                ax.plot([ff], [y], "|" if timed else "X", color="black", ms=8 if timed else 6)
        ax.set_xlim(512, 2**28)  # room for the labels right of the bars
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels)
        ax.set_xscale("log", base=2)
        ax.set_xlabel(
            "context length (tokens): bar = ran, X = first failure, | = time limit,\n"
            "hatched = ran in its own suite past a time-limited search"
        )
        ax.minorticks_off()
        ticks = [2**k for k in range(10, 24, 2)]
        ax.set_xticks(ticks)
        ax.set_xticklabels([fmt_len(t) for t in ticks])
        out.append(
            base.finish(
                fig,
                axes,
                anchors.figure("frontier", str(size), int(batch), str(dtype)),
                f"Longest context that runs (OOM frontier) · {size} batch {batch} {dtype}",
                left=1.9,  # the bar labels: "Hybrid 30% attn · prefill"
            )
        )
    return out
