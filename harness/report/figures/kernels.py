"""Kernel times vs peers: one figure per op (a line per backend: own Triton, torch reference,
installed peers), and one with the fastest backend of each op side by side."""

from __future__ import annotations

from harness.report import anchors, arch
from harness.report.crossovers import KERNEL_OPS, _fastest_backend
from harness.report.facts import Facts
from harness.report.figures import base

# ops bound by arithmetic are shown in TFLOP/s, the rest in GB/s
RATE = {
    "attention": ("tflops", "achieved TFLOP/s"),
    "ssd": ("tflops", "achieved TFLOP/s"),
    "selective_scan": ("gbps", "achieved GB/s"),
    "conv1d": ("gbps", "achieved GB/s"),
}


def _groups(facts: Facts):
    rows = facts.rows("kernels", ok=False)
    rows = rows[rows["status"] != "skipped"]
    keys = rows[["size", "batch", "dtype"]].drop_duplicates()
    return sorted((str(s), int(b), str(d)) for s, b, d in keys.itertuples(index=False))


def per_op(facts: Facts) -> list[base.Figure]:
    out = []
    for g in base.capped(facts, "kernels", _groups(facts)):
        size, batch, dtype = g
        where = dict(size=size, batch=batch, dtype=dtype)
        for op in facts.models("kernels", ok=False, **where):
            rows = facts.rows("kernels", ok=False, model=op, **where)
            if not (rows["status"] != "skipped").any():
                continue
            rate, rate_label = RATE.get(op, ("tflops", "achieved TFLOP/s"))
            fig, axes = base.new(2)
            statuses, lengths = set(), set()
            for i, (backend, part) in enumerate(rows.groupby("backend", sort=True)):
                colour = base.color(backend, i)
                ok = part[(part["status"] == "ok") & part["time_ms"].notna()].sort_values("context")
                if not ok.empty:
                    axes[0].plot(
                        ok["context"], ok["time_ms"], "-o", ms=3, color=colour, label=backend
                    )
                    if ok[rate].notna().any():
                        axes[1].plot(
                            ok["context"], ok[rate], "-o", ms=3, color=colour, label=backend
                        )
                for ax in axes:
                    statuses |= base.mark_failures(ax, part, "context", colour)
                lengths |= set(part[part["status"] != "skipped"]["context"])
            for ax in axes:
                base.length_axis(ax, lengths)
            base.log_y(axes[0])
            axes[0].set_ylabel("time per call (ms, median)")
            axes[1].set_ylabel(rate_label)
            axes[1].set_ylim(bottom=0)
            base.legend(axes[0], statuses, title="backend")
            skipped = rows[rows["status"] == "skipped"]
            caption = (
                f"{len(skipped)} point(s) skipped: {skipped['reason'].iloc[0]}"
                if len(skipped)
                else ""
            )
            out.append(
                base.finish(
                    fig,
                    axes,
                    anchors.figure("kernels", *g, op),
                    f"{arch.name(op)}: kernel time vs context · batch {batch} {dtype}",
                    caption,
                )
            )
    return out


def fastest(facts: Facts) -> list[base.Figure]:
    out = []
    for g in base.capped(facts, "kernels (fastest backend)", facts.groups("kernels")):
        size, batch, dtype = g
        where = dict(size=size, batch=batch, dtype=dtype)
        chosen = [(op, _fastest_backend(facts, op, g)) for op in (*KERNEL_OPS, "conv1d")]
        chosen = [(op, b) for op, b in chosen if b]
        if len(chosen) < 2:
            continue
        fig, axes = base.new(1)
        ax, statuses, lengths = axes[0], set(), set()
        for i, (op, backend) in enumerate(chosen):
            colour = base.color(op, i)
            s = facts.series("kernels", op, backend=backend, **where)
            ax.plot(
                s["context"],
                s["time_ms"],
                "-o",
                ms=3,
                color=colour,
                label=f"{arch.name(op)} [{backend}]",
            )
            statuses |= base.mark_failures(
                ax, facts.failures("kernels", op, backend=backend, **where), "context", colour
            )
            lengths |= set(s["context"])
        base.log_y(ax)
        base.length_axis(ax, lengths)
        ax.set_ylabel("time per call (ms, median)")
        base.legend(ax, statuses, title="op [fastest backend]")
        out.append(
            base.finish(
                fig,
                axes,
                anchors.figure("kernels", *g, "all"),
                f"Fastest backend of each op vs context · batch {batch} {dtype}",
                "Each op on the backend with the lowest geometric-mean time over the lengths "
                "all its backends ran.",
            )
        )
    return out
