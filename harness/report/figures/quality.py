"""What the models get right: MQAR recall vs width and number of key-value pairs, needle
retrieval as a depth x length heatmap per model, and bits per byte by token position."""

from __future__ import annotations

import numpy as np

from harness.report import anchors, arch
from harness.report.facts import Facts, fmt_len
from harness.report.figures import base

# The quality suites train small models of each architecture here (their width and depth are the
# suite's); the size preset they are built from only lends the layer kinds, so titles say that.
TRAINED = " · small models trained here"


def buckets(record: dict) -> list[tuple[int, int, float]]:
    """bpb_by_bucket {"<start>-<end>": bpb} -> sorted [(start, end, bpb)]; bad keys are skipped."""
    out = []
    for key, value in ((record.get("metrics") or {}).get("bpb_by_bucket") or {}).items():
        try:
            start, end = (int(x) for x in str(key).split("-"))
        except ValueError:
            continue
        if isinstance(value, int | float):
            out.append((start, end, float(value)))
    return sorted(out)


def mqar(facts: Facts) -> list[base.Figure]:
    rows = facts.rows("mqar", ok=False)
    rows = rows[rows["status"] != "skipped"]
    out = []
    for size, part in rows.groupby("size", sort=True):
        fig, axes = base.new(2)
        for ax, x, xlabel in (
            (axes[0], "width", "model width (d_model)"),
            (axes[1], "kv_pairs", "key-value pairs"),
        ):
            statuses = set()
            for i, (model, m) in enumerate(
                sorted(part.groupby("model"), key=lambda t: (arch.family(t[0]), t[0]))
            ):
                colour = base.color(model, i)
                ok = m[(m["status"] == "ok") & m["accuracy"].notna() & m[x].notna()]
                if not ok.empty:
                    mean = ok.groupby(x)["accuracy"].mean()
                    ax.plot(
                        mean.index,
                        mean.to_numpy() * 100,
                        "-o",
                        ms=3,
                        color=colour,
                        label=arch.series_label(model, "", ok["backend"].iloc[-1]),
                    )
                statuses |= base.mark_failures(ax, m[m[x].notna()], x, colour)
            base.log2_x(ax)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("MQAR accuracy (%)")
            ax.set_ylim(0, 102)
            base.legend(ax, statuses)
        out.append(
            base.finish(
                fig,
                axes,
                anchors.figure("mqar", str(size)),
                f"Associative recall (MQAR){TRAINED}",
                "Accuracy on held-out queries, averaged over the settings not on the x axis "
                "(sequence length, and width or pairs).",
            )
        )
    return out


def niah(facts: Facts) -> list[base.Figure]:
    rows = facts.rows("niah", ok=False)
    rows = rows[rows["status"] != "skipped"]
    out = []
    for size, part in rows.groupby("size", sort=True):
        models = sorted(part["model"].unique(), key=lambda m: (arch.family(m), m))
        depths = sorted(part["depth"].dropna().unique())
        lengths = sorted(part["context"].unique())
        if not depths or not lengths:
            continue
        fig, axes = base.new(len(models), height=2.8)
        image = None
        for ax, model in zip(axes, models, strict=True):
            m = part[part["model"] == model]
            grid = np.full((len(depths), len(lengths)), np.nan)
            for _, r in m.iterrows():
                if r["depth"] != r["depth"]:
                    continue
                i, j = depths.index(r["depth"]), lengths.index(r["context"])
                if r["status"] == "ok" and r["accuracy"] == r["accuracy"]:
                    grid[i, j] = r["accuracy"] * 100
                elif r["status"] != "ok":
                    ax.text(j, i, "×", ha="center", va="center", color="crimson", fontsize=9)
            image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto", origin="upper")
            train = m["train_length"].dropna()
            if not train.empty:
                beyond = [j for j, L in enumerate(lengths) if L > train.max()]
                if beyond:
                    ax.axvline(beyond[0] - 0.5, color="white", ls="--", lw=1.2)
            ax.set_xticks(range(len(lengths)))
            ax.set_xticklabels([fmt_len(L) for L in lengths], rotation=45)
            ax.set_yticks(range(len(depths)))
            ax.set_yticklabels([f"{d:.0%}" for d in depths])
            ax.set_title(arch.series_label(model, "", m["backend"].iloc[-1]), fontsize=8)
            ax.set_xlabel("haystack length (tokens)")
            ax.grid(False)
        axes[0].set_ylabel("needle depth")
        if image is not None:
            fig.colorbar(image, ax=axes, label="retrieval accuracy (%)", shrink=0.9)
        # above the panels' titles (the tight bounding box takes it in)
        fig.suptitle(f"Needle retrieval by depth and length{TRAINED}", fontsize=10, y=1.05)
        out.append(
            base.Figure(
                anchors.figure("niah", str(size)),
                "Needle retrieval heatmap",
                base.to_svg(
                    fig, anchors.figure("niah", str(size)), "Needle retrieval heatmap", tight=True
                ),
                "Dashed line: beyond the training length. × : the point failed (see the table). "
                "Blank: not measured.",
                wide=len(models) > 1,
            )
        )
    return out


def perplexity(facts: Facts) -> list[base.Figure]:
    rows = facts.rows("perplexity", ok=False)
    rows = rows[rows["status"] != "skipped"]
    out = []
    for size, part in rows.groupby("size", sort=True):
        fig, axes = base.new(1)
        ax, statuses = axes[0], set()
        ends = set()
        for i, model in enumerate(
            sorted(part["model"].unique(), key=lambda m: (arch.family(m), m))
        ):
            colour = base.color(model, i)
            m = part[part["model"] == model]
            ok = m[m["status"] == "ok"].sort_values("context")
            if not ok.empty:
                r = ok.iloc[-1]  # the longest evaluation covers every position bucket
                b = buckets(facts.run.records.get(r["hash"], {}))
                if b:
                    ax.plot(
                        [e for _, e, _ in b],
                        [v for *_, v in b],
                        "-o",
                        ms=3,
                        color=colour,
                        label=arch.series_label(model, "", r["backend"]),
                    )
                    ends |= {e for _, e, _ in b}
            statuses |= base.mark_failures(ax, m, "context", colour)
            ends |= set(m[m["status"] != "ok"]["context"])
        if not ends:
            import matplotlib.pyplot as plt

            plt.close(fig)
            continue
        base.length_axis(ax, ends)
        ax.set_xlabel("token position (end of bucket)")
        ax.set_ylabel("bits per byte (lower is better)")
        base.legend(ax, statuses)
        out.append(
            base.finish(
                fig,
                axes,
                anchors.figure("perplexity", str(size)),
                f"Bits per byte by token position{TRAINED}",
                "Tokenizer-independent: total NLL in bits over the bytes of the text in each "
                "position bucket.",
            )
        )
    return out
