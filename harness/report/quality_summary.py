"""The summary's quality sentences: recall (MQAR, needle) and bits per byte, the models trained
here compared on the settings they share; a transformers checkpoint in a sentence of its own."""

from __future__ import annotations

from harness.report import anchors, arch
from harness.report.facts import Facts, fmt_len
from harness.report.sentence import Sentence

# what makes two quality rows the same setting (the model aside)
SETTING = ("width", "kv_pairs", "depth", "context", "train_length")


def _shared_settings(rows):
    """Rows of the settings every model was measured at: a mean over different settings per
    model (one model cut short of its harder cells) would compare unlike with unlike."""
    keys = [k for k in SETTING if k in rows.columns]
    if not keys:
        return rows, False
    setting = ["|".join(map(repr, vals)) for vals in rows[keys].itertuples(index=False)]
    tagged = rows.assign(_setting=setting)
    models = tagged["model"].nunique()
    counts = tagged.groupby("_setting")["model"].nunique()
    shared = counts[counts == models].index
    kept = tagged[tagged["_setting"].isin(shared)].drop(columns="_setting")
    return kept, len(shared) < len(counts)


def quality(facts: Facts) -> list[Sentence]:
    out = []
    for suite, name in (("mqar", "MQAR recall"), ("niah", "Needle retrieval")):
        rows = facts.rows(suite)
        rows = rows[rows["accuracy"].notna()]
        out += _checkpoint(rows, name, "accuracy", lambda v: f"{v:.1%}")
        rows = rows[rows["model"] != "hf"]  # the models trained here, compared on one budget
        if rows.empty:
            continue
        shared, partial = _shared_settings(rows)
        if shared.empty:
            shared, scope = rows, "over the settings each model has (no setting has them all)"
        else:
            scope = "over the settings every model has" if partial else "over every setting"
        mean = shared.groupby("model")["accuracy"].mean().sort_values(ascending=False)
        items = ", ".join(f"{arch.name(m)} {a:.1%}" for m, a in mean.items())
        out.append(
            Sentence(
                f"{name}, mean accuracy {scope}: {items}.",
                anchors.figure(suite, str(rows["size"].iloc[0])),
            )
        )
    rows = facts.rows("perplexity")
    rows = rows[rows["bpb"].notna()]
    out += _checkpoint(rows, "Bits per byte", "bpb", lambda v: f"{v:.3f}")
    rows = rows[rows["model"] != "hf"]
    if not rows.empty:
        parts = []
        for L, at in rows.groupby("context"):
            best = at.sort_values("bpb")
            pairs = zip(best["model"], best["bpb"], strict=True)
            items = ", ".join(f"{arch.name(m)} {b:.3f}" for m, b in pairs)
            trained = "train_length" in at and bool((at["train_length"] == L).all())
            parts.append(f"at {fmt_len(L)}{' (the trained length)' if trained else ''}: {items}")
        out.append(
            Sentence(
                f"Bits per byte (lower is better) {'; '.join(parts)}.",
                anchors.figure("perplexity", str(rows["size"].iloc[0])),
            )
        )
    return out


def _checkpoint(rows, name: str, metric: str, fmt) -> list[Sentence]:
    """A transformers checkpoint (model=hf) scored as it is: its own sentence, never ranked
    with the models trained here on one budget."""
    at = rows[rows["model"] == "hf"]
    if at.empty:
        return []
    by_len = at.groupby("context")[metric].mean()
    items = ", ".join(f"{fmt(v)} at {fmt_len(L)}" for L, v in by_len.items())
    return [
        Sentence(f"{name} of the transformers checkpoint, as it is (not trained here): {items}.")
    ]
