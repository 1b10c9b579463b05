"""Render reports/<run-id>/index.html from results/<run-id>/: self-contained (a CSP forbids every
network request), deterministic (two renders of the same results are byte-identical: no clock,
seeded bootstraps, fixed SVG ids, sorted everything), and from partial runs too."""

from __future__ import annotations

from pathlib import Path

import jinja2

from harness.report import anchors, crossovers, data, ledger, summary, tables
from harness.report import compare as compare_mod
from harness.report.facts import Facts, fmt_len
from harness.report.figures import Pending
from harness.report.figures import compare as compare_figs
from harness.report.ledger.claims import SHIPPED
from harness.units import format_bytes

TEMPLATES = Path(__file__).parent / "templates"
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'unsafe-inline'; "
    "base-uri 'none'; form-action 'none'"
)


def env_line(env: dict) -> str:
    """The environment in one line: GPU, memory, driver, CUDA, packages, peers, git."""
    pk = env.get("packages") or {}
    peers = [f"{k} {v}" for k, v in sorted((env.get("optional_packages") or {}).items()) if v]
    git = env.get("git") or {}
    gpus = env.get("gpus") or []
    parts = [
        (f"{len(gpus)}× " if len(gpus) > 1 else "")
        + str(env.get("device_name") or "unknown device"),
        format_bytes(env.get("device_memory_bytes")) if env.get("device_memory_bytes") else None,
        f"driver {env['driver']}" if env.get("driver") else None,
        f"CUDA {env['cuda']}" if env.get("cuda") else "no CUDA",
        f"torch {pk['torch']}" if pk.get("torch") else None,
        f"triton {pk['triton']}" if pk.get("triton") else None,
        ", ".join(peers) if peers else "no peer kernels installed",
        f"Python {env['python']}" if env.get("python") else None,
        f"git {str(git.get('sha') or '?')[:10]}" + (" (dirty)" if git.get("dirty") else "")
        if git
        else None,
    ]
    return " · ".join(p for p in parts if p)


def _claim_files(manifest: dict, extra) -> list[Path]:
    """Shipped claims, then the run's config `run.claims`, then the command line's."""
    run_cfg = (manifest.get("config") or {}).get("run") or {}
    configured = run_cfg.get("claims") or []
    return [SHIPPED, *(Path(p) for p in configured), *(Path(p) for p in extra or ())]


def _missing_suites(manifest: dict, df) -> list[str]:
    measure = ((manifest.get("config") or {}).get("suite") or {}).get("measure") or []
    present = set(df["suite"]) if not df.empty else set()
    return [m for m in measure if m not in present]


def _check_links(verdicts, crossover_list, known: set[str]):
    """Links must land: a figure that was not drawn (capped, or no data) falls back to the table."""
    for v in verdicts:
        for c in v.checks:
            if c.obs.anchor not in known:
                c.obs.anchor = anchors.POINTS
    return [x if x.anchor in known else _relink(x) for x in crossover_list]


def _relink(x):
    from dataclasses import replace

    return replace(x, anchor=anchors.POINTS)


def build(run_dir: Path, compare: Path | None = None, claims=(), workers: int | None = None) -> str:
    run = data.load(run_dir)
    facts = Facts(run)
    pending = Pending(facts, workers)  # drawn in worker processes while the rest is computed
    xos = crossovers.all_crossovers(facts)
    claim_set = ledger.load(_claim_files(run.manifest, claims))
    verdicts = ledger.evaluate(facts, claim_set)
    cmp, cmp_figs = None, []
    if compare:
        fb = Facts(data.load(Path(compare)))
        cmp = compare_mod.compare(facts, fb, env_line)
        cmp_figs = compare_figs.ratios(cmp)
    sections, notes = pending.result()
    fig_ids = [f.id for _, figs in sections for f in figs] + [f.id for f in cmp_figs]
    assert len(fig_ids) == len(set(fig_ids)), "figure ids must be unique"
    known = {
        *fig_ids,
        "environment",
        anchors.POINTS,
        anchors.LEDGER,
        anchors.CROSSOVERS,
        anchors.COMPARE,
    }
    xos = _check_links(verdicts, xos, known)
    planned = (run.manifest.get("plan") or {}).get("points")
    missing_suites = _missing_suites(run.manifest, run.df)
    sentences = summary.sentences(facts, xos, verdicts, planned, missing_suites, cmp)
    df = run.df
    counts = df["status"].value_counts().sort_index().to_dict() if not df.empty else {}

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["bytes"] = format_bytes
    env.filters["len"] = fmt_len
    env.filters["num"] = tables.fmt_num
    env.filters["key"] = tables.sort_key
    env.filters["est"] = _estimate_text
    env.globals["anchors"] = anchors
    return env.get_template("index.html.j2").render(
        csp=CSP,
        manifest=run.manifest,
        run_id=run.run_id,
        env_line=env_line(run.env),
        env_json=_json(run.manifest.get("env", {})),
        config_json=_json(run.manifest.get("config", {})),
        sentences=sentences,
        counts=counts,
        n_points=len(df),
        planned=planned,
        missing=max((planned or 0) - len(df), 0),
        missing_suites=missing_suites,
        torn=run.torn,
        sections=sections,
        notes=notes,
        crossovers=xos,
        verdicts=verdicts,
        claim_files=[Path(f).name for f in claim_set.files],
        cmp=cmp,
        cmp_figs=cmp_figs,
        header=tables.header_html(),
        body=tables.table_html(df),
        csv_uri=tables.csv_data_uri(df),
        records_json=tables.records_json(list(run.records.values())),
    )


def render(
    run_dir: Path,
    out_dir: Path | None = None,
    compare: Path | None = None,
    claims=(),
    workers: int | None = None,
) -> Path:
    """Write <out_dir>/index.html; `workers` processes draw the figures (default: up to 4, one
    per CPU; 1 draws them inline)."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir else Path("reports") / run_dir.name
    html = build(run_dir, compare, claims, workers)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / "index.html"
    out.write_text(html, encoding="utf-8")
    return out


def _json(obj) -> str:
    import json

    return json.dumps(obj, indent=2, sort_keys=True, default=str)


def _estimate_text(obs) -> str:
    """A check's measured value in its unit: lengths as 24K, the rest to 3 significant digits."""
    if obs.estimate is None:
        return obs.note
    return obs.estimate.text(fmt_len if obs.unit == "tokens" else None)
