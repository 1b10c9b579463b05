"""Records -> one flat table (pandas), one row per point's latest attempt."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.store import RECORDS, latest_by_hash, read_records
from harness.units import format_length

COLUMNS = [
    "suite",
    "model",
    "size",
    "backend",
    "context",
    "batch",
    "dtype",
    "status",
    "time_ms",
    "p90_ms",
    "p99_ms",
    "samples",
    "tflops",
    "gbps",
    "rel_err",
    "peak_bytes",
    "reason",
]


def load(run_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    records = list(latest_by_hash(read_records(run_dir / RECORDS)).values())
    return manifest, records


def flatten(rec: dict[str, Any]) -> dict[str, Any]:
    p, m = rec["point"], rec.get("metrics") or {}
    t = m.get("time") or {}
    mem = m.get("memory") or {}
    return {
        "suite": p["suite"],
        "model": p["model"],
        "size": p["size"],
        "backend": ",".join(p["backends"].values()) if p["backends"] else "",
        "context": p["context"],
        "batch": p["batch"],
        "dtype": p["dtype"],
        "status": rec["status"],
        "time_ms": m.get("time_ms"),
        "p90_ms": t.get("p90"),
        "p99_ms": t.get("p99"),
        "samples": t.get("count"),
        "tflops": m.get("tflops"),
        "gbps": m.get("gbps"),
        "rel_err": m.get("rel_err"),
        "peak_bytes": mem.get("peak_allocated_bytes"),
        "reason": rec.get("reason", ""),
        "hash": rec["hash"],
    }


def table(records: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame([flatten(r) for r in records], columns=[*COLUMNS, "hash"])
    if df.empty:
        return df
    df = df.sort_values(["suite", "model", "size", "backend", "batch", "context"], kind="stable")
    df["length"] = df["context"].map(format_length)
    return df.reset_index(drop=True)
