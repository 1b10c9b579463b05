"""Figures as inline SVG (matplotlib), deterministic: fixed hash salt, no date metadata.

Failed points are drawn, not dropped: an x at the top edge of the plot at their length, labelled
with their status.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness.units import format_length  # noqa: E402

plt.rcParams.update({"svg.hashsalt": "ctxbench", "svg.fonttype": "none", "font.size": 9})
MARKERS = {"oom": "x", "timeout": "v", "invalid_output": "D", "crashed": "*", "cuda_error": "*"}


def to_svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog and doctype: we inline it


def _length_axis(ax, lengths: list[int]) -> None:
    ax.set_xscale("log", base=2)
    ax.set_xticks(lengths)
    ax.set_xticklabels([format_length(n) for n in lengths], rotation=0)
    ax.minorticks_off()


def time_vs_context(df: pd.DataFrame, title: str, group: str = "backend") -> str:
    """Median time per call vs context length on log-log axes, one line per `group` value."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    lengths = sorted(df["context"].unique())
    ok = df[df["status"] == "ok"]
    for name, part in ok.groupby(group, sort=True):
        part = part.sort_values("context")
        ax.plot(part["context"], part["time_ms"], marker="o", ms=3, label=str(name))
    failed = df[~df["status"].isin(["ok", "skipped"])]
    if not ok.empty:
        top = ok["time_ms"].max() * 2
        for status, part in failed.groupby("status", sort=True):
            ax.scatter(
                part["context"],
                [top] * len(part),
                marker=MARKERS.get(status, "x"),
                color="crimson",
                label=f"{status} ({', '.join(sorted(part[group].unique()))})",
            )
        ax.set_yscale("log")
    _length_axis(ax, lengths)
    ax.set_xlabel("context length (tokens)")
    ax.set_ylabel("time per call (ms, median)")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, title=group, title_fontsize=7)
    return to_svg(fig)


def kernel_figures(df: pd.DataFrame) -> list[tuple[str, str]]:
    out = []
    kern = df[df["suite"] == "kernels"]
    for op, part in kern.groupby("model", sort=True):
        if (part["status"] == "ok").any() or (part["status"] != "skipped").any():
            out.append((f"kernel-{op}", time_vs_context(part, f"{op}: time vs context length")))
    return out
