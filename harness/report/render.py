"""Render reports/<run-id>/index.html from results/<run-id>/ (self-contained, deterministic)."""

from __future__ import annotations

import json
from pathlib import Path

import jinja2

from harness.report import data, figures
from harness.units import format_bytes

TEMPLATES = Path(__file__).parent / "templates"


def _fmt(value, digits: int = 3) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def env_line(env: dict) -> str:
    pk = env.get("packages", {})
    parts = [
        env.get("device_name", "?"),
        format_bytes(env.get("device_memory_bytes")),
        f"driver {env['driver']}" if env.get("driver") else None,
        f"CUDA {env['cuda']}" if env.get("cuda") else "CPU build",
        f"torch {pk.get('torch')}",
        f"triton {pk.get('triton')}",
        f"Python {env.get('python')}",
        f"git {str((env.get('git') or {}).get('sha') or '?')[:10]}"
        + (" (dirty)" if (env.get("git") or {}).get("dirty") else ""),
    ]
    return " · ".join(p for p in parts if p)


def render(run_dir: Path, out_dir: Path | None = None) -> Path:
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else Path("reports") / run_dir.name
    manifest, records = data.load(run_dir)
    df = data.table(records)
    counts = df["status"].value_counts().sort_index().to_dict() if not df.empty else {}
    planned = manifest.get("plan", {}).get("points", len(df))
    figs = figures.kernel_figures(df) if not df.empty else []
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True
    )
    env.filters["fmt"] = _fmt
    env.filters["bytes"] = format_bytes
    html = env.get_template("index.html.j2").render(
        manifest=manifest,
        env_line=env_line(manifest.get("env", {})),
        env_json=json.dumps(manifest.get("env", {}), indent=2, sort_keys=True),
        rows=df.to_dict("records"),
        counts=counts,
        planned=planned,
        missing=max(planned - len(df), 0),
        figures=figs,
        records_json=json.dumps(records, sort_keys=True).replace("</", "<\\/"),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "index.html"
    out.write_text(html, encoding="utf-8")
    return out
