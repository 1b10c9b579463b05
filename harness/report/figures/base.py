"""What every figure shares: deterministic inline SVG, log-2 length axes, fixed colours, and
failed points drawn (at the top edge, in the series' colour, one marker shape per status) rather
than dropped."""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from harness.report.data import FAILED  # noqa: E402
from harness.units import format_length  # noqa: E402

# svg.hashsalt makes matplotlib's generated ids (clip paths, markers) reproducible; text stays
# text (svg.fonttype none) so figures are small and searchable.
plt.rcParams.update(
    {
        "svg.hashsalt": "ctxbench",
        "svg.fonttype": "none",
        "font.size": 8,
        "font.family": "sans-serif",
        "axes.titlesize": 9,
        "legend.fontsize": 7,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
STATUS_MARKERS = {
    "oom": "X",
    "timeout": "v",
    "invalid_output": "D",
    "crashed": "*",
    "cuda_error": "P",
}
COLORS = {
    "transformer": "#d62728",
    "transformer_mha": "#e377c2",
    "mamba2": "#1f77b4",
    "mamba1": "#2ca02c",
    "hybrid_1_7": "#9467bd",
    "hybrid_30": "#ff7f0e",
    "nemotron_h_like": "#8c564b",
    "hf": "#7f7f7f",
    "cudnn": "#d62728",
    "flash": "#ff7f0e",
    "efficient": "#e377c2",
    "math": "#7f7f7f",
    "flash_attn": "#8c564b",
    "triton": "#1f77b4",
    "torch": "#17becf",
    "mamba_ssm": "#2ca02c",
    "fla": "#9467bd",
    "causal_conv1d": "#bcbd22",
    "attention": "#d62728",
    "ssd": "#1f77b4",
    "selective_scan": "#2ca02c",
    "conv1d": "#bcbd22",
}
FALLBACK = ["#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354"]


@dataclass(frozen=True)
class Figure:
    id: str
    title: str
    svg: str
    caption: str = ""
    wide: bool = False  # several panels: shown across the page


# Figures per kind (one per size/batch/dtype group, or per op): past this the page stops being
# readable and the render budget (10,000 records in < 10 s) is spent on matplotlib. The rest of the
# groups are in the table; the report says which were left out.
MAX_FIGURES = {"default": 2, "kernels": 1, "kernels (fastest backend)": 1}


def capped(
    facts, kind: str, groups: list, describe=lambda g: " ".join(str(x) for x in g if x != "")
) -> list:
    limit = MAX_FIGURES.get(kind, MAX_FIGURES["default"])
    if len(groups) > limit:
        rest = ", ".join(describe(g) for g in groups[limit:])
        facts.notes.append(
            f"{kind} figures drawn for the first {limit} of {len(groups)} groups; "
            f"not drawn (see the table): {rest}."
        )
    return groups[:limit]


def color(key: str, i: int = 0) -> str:
    return COLORS.get(key) or FALLBACK[i % len(FALLBACK)]


def new(ncols: int = 1, width: float = 6.4, height: float = 3.6):
    fig, axes = plt.subplots(
        1, ncols, figsize=(width if ncols == 1 else 4.2 * ncols, height), squeeze=False
    )
    return fig, list(axes[0])


PNG_ENV = "CTXBENCH_REPORT_PNG_DIR"  # set by the report CLI; read here, in the drawing workers
_IDS = re.compile(r'\bid="([^"]+)"')
_REFS = re.compile(r'(url\(#|href="#)([^)"]+)')


def to_svg(fig, fid: str, title: str = "", tight: bool = False) -> str:
    """The figure as an inline <svg>, its internal ids prefixed with the figure id: several
    figures in one page must not share an id (matplotlib's ids repeat across figures)."""
    png_dir = os.environ.get(PNG_ENV)
    if png_dir:  # `python -m harness.report --png DIR`: the same figure as a picture for a README
        fig.savefig(
            Path(png_dir) / f"{fid}.png",
            dpi=110,
            bbox_inches="tight" if tight else None,
            metadata={"Software": None},
        )
    buf = io.StringIO()
    fig.savefig(
        buf,
        format="svg",
        bbox_inches="tight" if tight else None,
        metadata={"Date": None, "Creator": None},
    )
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]  # the XML prolog and doctype are not valid inside HTML
    svg = _IDS.sub(lambda m: f'id="{fid}-{m.group(1)}"', svg)
    svg = _REFS.sub(lambda m: f"{m.group(1)}{fid}-{m.group(2)}", svg)
    label = title.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
    return svg.replace("<svg ", f'<svg role="img" aria-label="{label}" ', 1)


def length_axis(ax, lengths) -> None:
    lengths = sorted({int(x) for x in lengths if x and x > 0})
    ax.set_xscale("log", base=2)
    ax.minorticks_off()
    if not lengths:
        return
    # labels at least span/7 doublings apart, so 64K 128K 256K 512K do not run into each other
    gap = max(math.log2(lengths[-1] / lengths[0]) / 7, 1.0) if len(lengths) > 1 else 1.0
    ticks = [lengths[0]]
    for n in lengths[1:]:
        if math.log2(n / ticks[-1]) >= gap - 1e-9:
            ticks.append(n)
    ax.set_xticks(ticks)
    ax.set_xticklabels([format_length(n) for n in ticks])
    ax.set_xlabel("context length (tokens)")


_PLAIN = FuncFormatter(lambda v, _pos: f"{v:g}")


def log_y(ax) -> None:
    """Log y axis with plain tick labels: matplotlib's default 10^k labels go through mathtext,
    which costs more than the rest of the figure."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(_PLAIN)
    ax.yaxis.set_minor_formatter(NullFormatter())


def log2_x(ax) -> None:
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(_PLAIN)
    ax.xaxis.set_minor_formatter(NullFormatter())


def mark_failures(ax, rows, x: str, colour: str) -> set[str]:
    """Failed points of one series, drawn at the top edge at their x. Returns their statuses."""
    failed = rows[rows["status"].isin(FAILED)]
    seen = set()
    for status, part in failed.groupby("status", sort=True):
        ax.plot(
            part[x],
            [0.96] * len(part),
            linestyle="none",
            marker=STATUS_MARKERS.get(status, "X"),
            color=colour,
            ms=6,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
        )
        seen.add(status)
    return seen


def _status_handle(status: str) -> Line2D:
    return Line2D(
        [], [], linestyle="none", marker=STATUS_MARKERS.get(status, "X"), color="black", ms=5
    )


def legend(ax, statuses: set[str], title: str = "", loc: str = "best") -> None:
    """Series first, then one black marker per failure status seen, so the reader can tell an
    OOM from a timeout. Beside other panels the legend is one for the figure, drawn by
    `finish` below the panels (inside a panel it hides data)."""
    if len(ax.figure.axes) > 1 and loc == "best":
        ax.figure._ctx_statuses = getattr(ax.figure, "_ctx_statuses", set()) | set(statuses)
        ax.figure._ctx_legend_title = title
        return
    handles, labels = ax.get_legend_handles_labels()
    for status in sorted(statuses):
        handles.append(_status_handle(status))
        labels.append(f"{status} (not a result)")
    if handles:
        ax.legend(handles, labels, title=title or None, title_fontsize=7, loc=loc, frameon=False)


def _log_ticks(ax) -> None:
    """Enough labelled ticks on a log y axis whatever its span: 10^k alone leaves a range like
    3-8 ms with no label at all."""
    lo, hi = ax.get_ylim()
    if lo <= 0 or hi <= lo:
        return
    decades = math.log10(hi / lo)
    if decades < 0.6:  # less than a factor 4: evenly spaced labels say more than 1, 2, 3
        ax.yaxis.set_major_locator(MaxNLocator(nbins=5))
    else:
        subs = (1.0,) if decades > 3 else (1.0, 2.0, 5.0) if decades > 0.8 else tuple(range(1, 10))
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(_PLAIN)
    ax.yaxis.set_minor_formatter(NullFormatter())


# Fixed margins (inches) instead of bbox_inches="tight": "tight" lays every text out twice, a
# third of a figure's cost, and the render budget is mostly figures.
LEFT, RIGHT, TOP, BOTTOM, GAP, LEGEND_ROW = 0.8, 0.25, 0.55, 0.5, 0.85, 0.16


def layout(fig, ax_list, left: float = LEFT) -> None:
    """Place panels with fixed margins, and the figure legend (multi-panel) below them."""
    handles, labels = [], []
    if len(ax_list) > 1 and not any(ax.get_legend() for ax in ax_list):
        for ax in ax_list:
            for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
                if lab not in labels:
                    handles.append(h)
                    labels.append(lab)
        for status in sorted(getattr(fig, "_ctx_statuses", set())):
            handles.append(_status_handle(status))
            labels.append(f"{status} (not a result)")
    ncol = min(3, len(handles)) or 1
    rows = math.ceil(len(handles) / ncol)
    extra = LEGEND_ROW * rows + (0.1 if rows else 0)
    width, height = fig.get_size_inches()
    height += extra
    fig.set_size_inches(width, height)
    n = len(ax_list)
    panel = (width - left - RIGHT - GAP * (n - 1)) / n
    fig.subplots_adjust(
        left=left / width,
        right=1 - RIGHT / width,
        top=1 - TOP / height,
        bottom=(BOTTOM + extra) / height,
        wspace=GAP / panel,
    )
    if handles:
        fig.legend(
            handles,
            labels,
            loc="lower center",
            ncol=ncol,
            frameon=False,
            fontsize=7,
            title=getattr(fig, "_ctx_legend_title", "") or None,
            title_fontsize=7,
            bbox_to_anchor=(0.5, 0.01),
        )


def finish(fig, ax_list, fid: str, title: str, caption: str = "", left: float = LEFT) -> Figure:
    for ax in ax_list:
        if ax.get_yscale() == "log":
            _log_ticks(ax)
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title, fontsize=10, y=1 - 0.12 / fig.get_size_inches()[1])
    layout(fig, ax_list, left)
    return Figure(fid, title, to_svg(fig, fid, title), caption, wide=len(ax_list) > 1)


def no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#777")
    ax.set_xticks([])
    ax.set_yticks([])
