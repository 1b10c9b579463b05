"""The table of every point (HTML built here, not in the template: 10,000 rows x 20 cells through
a template loop is most of a render's time), its CSV download, and the embedded raw records."""

from __future__ import annotations

import base64
import json
import math
from html import escape

import pandas as pd

from harness.report import anchors, arch
from harness.units import format_bytes

# (column, header, kind): kind picks the formatting and whether the cell sorts as a number
POINT_COLUMNS = [
    ("suite", "suite", "text"),
    ("model", "model / op", "model"),
    ("size", "size", "text"),
    ("backend", "backend", "text"),
    ("context", "length", "length"),
    ("batch", "batch", "int"),
    ("dtype", "dtype", "text"),
    ("status", "status", "status"),
    ("time_ms", "median ms", "num"),
    ("p90_ms", "p90 ms", "num"),
    ("p99_ms", "p99 ms", "num"),
    ("samples", "samples", "int"),
    ("tokens_per_s", "tokens/s", "num"),
    ("tflops", "TFLOP/s", "num"),
    ("gbps", "GB/s", "num"),
    ("mfu", "MFU", "pct"),
    ("mbu", "MBU", "pct"),
    ("peak_bytes", "peak mem", "bytes"),
    ("predicted_bytes", "predicted", "bytes"),
    ("energy_jpt", "J/token", "num"),
    ("rel_err", "rel. err", "num"),
    ("accuracy", "accuracy", "pct"),
    ("bpb", "bpb", "num"),
    ("max_context", "max length", "length"),
    ("reason", "reason", "reason"),
]
CSV_COLUMNS = [c for c, _, _ in POINT_COLUMNS] + [
    "phase",
    "family",
    "width",
    "kv_pairs",
    "depth",
    "train_length",
    "best_batch",
    "first_failure",
    "frontier_limit",
    "bytes_per_token",
    "flops",
    "hash",
]
NUMERIC = ("num", "int", "pct", "bytes", "length")


def missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_num(v, digits: int = 3) -> str:
    if missing(v):
        return "–"
    v = float(v)
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def sort_key(v) -> str:
    """A number for a cell's data-v, to 12 significant digits: enough to sort by, and a value
    computed from bootstraps or fits reads the same on every machine (numpy's SIMD paths round
    the last bit differently by CPU: a committed report re-rendered elsewhere differed there)."""
    return "" if missing(v) else f"{float(v):.12g}"


def cell(kind: str, v) -> str:
    """One <td>: display text, data-v (the raw value, so sorting is numeric) and css class."""
    from harness.report.facts import fmt_len

    if kind in ("text", "model", "status", "reason"):
        text = "" if missing(v) else arch.name(str(v)) if kind == "model" else str(v)
        cls = {"text": "l", "model": "l", "status": f"l s-{v}", "reason": "reason"}[kind]
        return f'<td class="{cls}">{escape(text)}</td>'
    if missing(v):
        return "<td>–</td>"
    if kind == "length":
        text, key = fmt_len(v), str(int(v))
    elif kind == "int":
        text = key = str(int(v))
    elif kind == "pct":
        text, key = f"{100 * float(v):.3g}%", sort_key(v)
    elif kind == "bytes":
        text, key = format_bytes(float(v)), sort_key(v)
    else:
        text, key = fmt_num(v), sort_key(v)
    return f'<td data-v="{key}">{escape(text)}</td>'


def table_html(df: pd.DataFrame, columns=POINT_COLUMNS, row_id=True) -> str:
    """<tr> rows for `df`, built column by column (10,000 rows x 25 cells: a per-row template
    or dict lookup per cell would be most of the render)."""
    if df.empty:
        return ""
    cols = []
    for col, _, kind in columns:
        values = df[col].tolist()
        memo: dict = {}  # lengths, statuses, models repeat: format each distinct value once
        out = []
        for v in values:
            key = v if not isinstance(v, float) or v == v else "nan"
            if key not in memo:
                memo[key] = cell(kind, v)
            out.append(memo[key])
        cols.append(out)
    ids = (
        [f'<tr id="{anchors.point(h)}">' for h in df["hash"].tolist()]
        if row_id
        else ["<tr>"] * len(df)
    )
    return "\n".join(
        start + "".join(cells) + "</tr>" for start, *cells in zip(ids, *cols, strict=True)
    )


def header_html(columns=POINT_COLUMNS) -> str:
    return "".join(
        f'<th{" class=l" if kind in ("text", "model", "status", "reason") else ""} data-kind="'
        f'{"num" if kind in NUMERIC else "text"}">{escape(h)}</th>'
        for _, h, kind in columns
    )


def csv_data_uri(df: pd.DataFrame) -> str:
    """Every point as CSV in a data: URI (a link that downloads without a server or script)."""
    cols = [c for c in CSV_COLUMNS if c in df.columns]
    text = df[cols].to_csv(index=False, lineterminator="\n")
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(text.encode()).decode()


def records_json(records: list[dict]) -> str:
    """Raw records as JSON safe inside <script type="application/json"> ("</" cannot close it)."""
    # key order as stored (the store writes sorted keys): the same results give the same bytes
    try:
        text = json.dumps(records, separators=(",", ":"), allow_nan=False)
    except (
        ValueError
    ):  # NaN / inf are not JSON: the browser's JSON.parse would reject the page's data
        text = json.dumps(_finite(records), separators=(",", ":"), allow_nan=False)
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


def _finite(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
