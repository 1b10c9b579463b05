"""Run B over run A, per point, vs context: one figure per suite whose headline metric has a
length axis. Filled markers: differences larger than the run-to-run spread."""

from __future__ import annotations

from harness.report import anchors, arch
from harness.report.figures import base

SUITES = ("prefill", "decode", "kernels", "throughput", "memory")


def ratios(cmp) -> list[base.Figure]:
    out = []
    for suite in SUITES:
        rows = [r for r in cmp.rows if r.suite == suite and r.ratio is not None]
        if not rows:
            continue
        fig, axes = base.new(1)
        ax = axes[0]
        series: dict[str, list] = {}
        for r in rows:
            name = f"{arch.name(r.model)}{' ' + r.size if r.size else ''} [{r.backend_a}"
            name += f" → {r.backend_b}]" if r.backend_b != r.backend_a else "]"
            series.setdefault(f"{name} b{r.batch} {r.dtype}", []).append(r)
        for i, (name, rs) in enumerate(
            sorted(series.items())[:12]
        ):  # a legend beyond 12 is unreadable
            colour = base.color(rs[0].model if suite != "kernels" else rs[0].backend_a, i)
            xs = [r.context for r in rs]
            ys = [r.ratio.value for r in rs]
            err = [
                [r.ratio.value - r.ratio.lo for r in rs],
                [r.ratio.hi - r.ratio.value for r in rs],
            ]
            ax.errorbar(xs, ys, yerr=err, fmt="-", color=colour, lw=1, capsize=2, label=name)
            for r in rs:
                ax.plot(
                    [r.context],
                    [r.ratio.value],
                    "o",
                    ms=4,
                    color=colour,
                    markerfacecolor=colour if r.flag else "white",
                )
        ax.axhline(1.0, color="black", lw=0.8)
        base.log_y(ax)
        base.length_axis(ax, {r.context for r in rows})
        ax.set_ylabel(f"{rows[0].what}: B / A")
        base.legend(ax, set())
        out.append(
            base.finish(
                fig,
                axes,
                anchors.figure("compare", "", None, "", suite),
                f"{suite}: run B / run A vs context",
                f"A = {cmp.run_a}, B = {cmp.run_b}. Bars: 95% bootstrap interval. "
                "Filled markers: difference larger than the run-to-run spread.",
            )
        )
    return out
