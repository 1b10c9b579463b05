"""One run: resolve hardware and config, plan, open the store, run the points, render the report.

The run id defaults to `<suite>-<hash>` of the resolved config and the device, so starting the
same command again resumes the same run (completed points are skipped by hash).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness import SCHEMA_VERSION, __version__
from harness import config as C
from harness import plan as P
from harness.env import Hardware, detect, environment
from harness.progress import make as make_progress
from harness.runner import Runner
from harness.store import Store, now_iso


@dataclass
class Prepared:
    cfg: C.Config
    resolved: dict[str, Any]  # the composed config as plain data, for the manifest
    hw: Hardware
    ctx: P.PlanContext
    planned: list[P.Planned]
    run_id: str
    config_hash: str


def config_hash(resolved: dict[str, Any], hw: Hardware) -> str:
    """What makes two runs the same run: the config (minus run.*) and the device."""
    keyed = {k: v for k, v in resolved.items() if k != "run"}
    keyed["run_seed"] = resolved.get("run", {}).get("seed")
    payload = json.dumps(
        {"config": keyed, "device": hw.device, "device_name": hw.name}, sort_keys=True, default=str
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


def prepare(raw: DictConfig, cfg: C.Config, size: str = "") -> Prepared:
    """Everything that can reject the config, before anything runs. Raises ConfigError."""
    try:
        hw = detect(cfg.hardware.device, cfg.hardware.gpus)
    except ValueError as exc:
        raise C.ConfigError(str(exc)) from exc
    ctx = P.context(cfg, hw, size)
    planned = P.plan(ctx)
    resolved = OmegaConf.to_container(raw, resolve=True)
    # Where results go is this machine's business, not the run's: keep paths out of records.
    for key in ("results_dir", "reports_dir"):
        resolved["run"].pop(key, None)
    digest = config_hash(resolved, hw)
    run_id = cfg.run.id or f"{cfg.suite.name}-{digest}"
    return Prepared(cfg, resolved, hw, ctx, planned, run_id, digest)


def _manifest(p: Prepared, store: Store) -> dict[str, Any]:
    argv = [a for a in sys.argv[1:] if not a.startswith(("run.results_dir=", "run.reports_dir="))]
    session = {"started": now_iso(), "argv": argv, "harness": __version__}
    manifest = store.read_manifest()
    if manifest is None:
        manifest = {
            "schema": SCHEMA_VERSION,
            "run_id": p.run_id,
            "created": session["started"],
            "suite": p.cfg.suite.name,
            "config": p.resolved,
            "config_hash": p.config_hash,
            "env": environment(p.hw),
            "plan": {
                "points": len(p.planned),
                "preflight_skipped": sum(1 for x in p.planned if x.skip_reason),
            },
            "sessions": [],
            "timings_s": {},
        }
    elif manifest.get("config_hash") != p.config_hash:
        print(
            f"warning: run {p.run_id} was started with another config; "
            "its manifest keeps the first one",
            file=sys.stderr,
        )
    manifest["sessions"].append(session)
    return manifest


def execute(p: Prepared) -> Path:
    run_dir = Path(p.cfg.run.results_dir) / p.run_id
    store = Store(run_dir)
    if store.quarantined:
        print(f"set aside {store.quarantined} torn record line(s) in records.torn.jsonl")
    manifest = _manifest(p, store)
    store.write_manifest(manifest)
    print(
        f"run {p.run_id}: {len(p.planned)} points on {p.hw.name} ({p.hw.device}); "
        f"results in {run_dir}"
    )

    runner = Runner(store, p.run_id, p.cfg.suite.timeout_s, retry=p.cfg.run.retry)
    progress = make_progress(len(p.planned), p.cfg.run.progress)
    by_measure: dict[str, list[P.Planned]] = {}
    for item in p.planned:
        by_measure.setdefault(item.point.suite, []).append(item)
    counts: Counter[str] = Counter()
    with progress:
        for name, items in by_measure.items():
            t0 = time.perf_counter()
            counts.update(runner.run(items, progress))
            spent = time.perf_counter() - t0
            manifest["timings_s"][name] = manifest["timings_s"].get(name, 0.0) + spent
    manifest["sessions"][-1]["ended"] = now_iso()
    manifest["sessions"][-1]["counts"] = dict(counts)
    store.write_manifest(manifest)

    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing new to run"
    print(f"done: {summary}")
    if p.cfg.run.report:
        from harness.report import render

        out = render(run_dir, Path(p.cfg.run.reports_dir) / p.run_id)
        print(f"report: {out}")
    return run_dir
