"""One run: resolve hardware and config, plan, open the store, run the points, render the report.

The run id defaults to `<suite>-<hash>` of the resolved config and the device, so starting the
same command again resumes the same run (completed points are skipped by hash).

Points run on every selected GPU at once (`harness.pool`). Several orchestrators may share one
run folder: the tasks and jobs of a submitit/SLURM launch, or a second local start. The first
local one writes records.jsonl and the manifest; every other writes records.d/<writer>.jsonl,
and leases (`harness.leases`) keep any two from measuring the same point.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness import SCHEMA_VERSION, __version__
from harness import config as C
from harness import plan as P
from harness.env import Hardware, detect, environment, git_state
from harness.leases import Leases
from harness.pool import DEFERRED, slots_for
from harness.progress import make as make_progress
from harness.runner import Runner
from harness.store import Store, now_iso, writer_id


@dataclass
class Prepared:
    cfg: C.Config
    resolved: dict[str, Any]  # the composed config as plain data, for the manifest
    hw: Hardware
    ctx: P.PlanContext
    planned: list[P.Planned]
    run_id: str
    config_hash: str
    launcher: str = "basic"  # Hydra's launcher: anything else may run jobs of one run at once


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
    return Prepared(cfg, resolved, hw, ctx, planned, run_id, digest, _launcher())


def _launcher() -> str:
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return "basic"
    return str(HydraConfig.get().runtime.choices.get("hydra/launcher") or "basic")


def _new_manifest(p: Prepared, started: str) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "run_id": p.run_id,
        "created": started,
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


def _session(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    from hydra.core.hydra_config import HydraConfig

    # A launched job's argv is the launcher's; Hydra keeps the overrides that made this job.
    args = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else sys.argv[1:]
    argv = [a for a in args if not a.startswith(("run.results_dir=", "run.reports_dir="))]
    # each session says which commit measured (a resumed run can span several)
    git = {k: v for k, v in git_state().items() if k in ("sha", "dirty")}
    return {"started": now_iso(), "argv": argv, "harness": __version__, "git": git, **(extra or {})}


def _primary_lock(run_dir: Path, shared: bool) -> int | None:
    """The first local orchestrator of a run holds this lock and writes records.jsonl. Launched
    by a parallel launcher, nobody takes it: flock across NFS hosts is not to be trusted."""
    if shared:
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / ".primary.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except OSError:  # held by a live orchestrator (or no locking here): write a file of our own
        os.close(fd)
        return None


def execute(p: Prepared) -> Path:
    run_dir = Path(p.cfg.run.results_dir) / p.run_id
    lock = _primary_lock(run_dir, shared=p.launcher != "basic")
    me = writer_id()
    store = Store(run_dir, writer=None if lock is not None else me)
    if store.quarantined:
        print(f"set aside {store.quarantined} torn record line(s) in {store.records_path.name}")
    slots = slots_for(p.hw, os.environ.get("CUDA_VISIBLE_DEVICES"))
    session = _session({"writer": me, "slots": [s.name for s in slots]})
    if lock is not None:
        manifest = store.read_manifest() or _new_manifest(p, session["started"])
        if manifest.get("config_hash") != p.config_hash:
            print(
                f"warning: run {p.run_id} was started with another config; "
                "its manifest keeps the first one",
                file=sys.stderr,
            )
        manifest["sessions"].append(session)
        store.write_manifest(manifest)
    else:
        store.create_manifest(_new_manifest(p, session["started"]))
    print(
        f"run {p.run_id}: {len(p.planned)} points on {p.hw.name} ({p.hw.device}), "
        f"{len(slots)} worker slot(s); results in {run_dir}"
    )

    leases = Leases(run_dir, me)
    limit = p.cfg.run.time_limit_s
    runner = Runner(
        store, p.run_id, p.cfg.suite.timeout_s, retry=p.cfg.run.retry, leases=leases, slots=slots,
        deadline=None if limit is None else time.monotonic() + limit,
    )  # fmt: skip
    progress = make_progress(len(p.planned), p.cfg.run.progress)
    t0 = time.perf_counter()
    try:
        with progress:
            counts = runner.run(p.planned, progress)
    finally:
        leases.close()
    session.update(ended=now_iso(), counts=counts, wall_s=time.perf_counter() - t0)
    session["busy_s"] = dict(runner.busy_s)  # worker seconds by measurement
    if lock is not None:
        manifest["sessions"][-1] = session
        for name, spent in runner.busy_s.items():
            manifest["timings_s"][name] = manifest["timings_s"].get(name, 0.0) + spent
        store.write_manifest(manifest)
    else:
        (store.records_path.with_suffix(".session.json")).write_text(
            json.dumps(session, indent=2, sort_keys=True) + "\n"
        )

    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "nothing new to run"
    print(f"done: {summary} in {session['wall_s']:.1f} s")
    if counts.get(DEFERRED):
        print(
            f"{counts[DEFERRED]} point(s) predicted to end past run.time_limit_s={limit:g} were "
            "not started: run again with the same arguments to measure them"
        )
    if p.cfg.run.report:
        _render(p, run_dir, store, shared=lock is None)
    if lock is not None:
        os.close(lock)
    return run_dir


def _render(p: Prepared, run_dir: Path, store: Store, shared: bool) -> None:
    from harness.report import render

    out_dir = Path(p.cfg.run.reports_dir) / p.run_id
    if not shared:
        print(f"report: {render(run_dir, out_dir)}")
        return
    # Jobs sharing the run end at about the same time: one renders, the others say where.
    recorded = store.latest_by_hash()
    if any(x.point.hash not in recorded for x in p.planned):
        print(f"report: run incomplete; render later with `make report RUN={run_dir}`")
        return
    with Leases(run_dir, writer_id()) as leases:
        lease = leases.acquire("_report")
        if lease is None:
            print(f"report: another job is rendering it into {out_dir}")
            return
        try:
            print(f"report: {render(run_dir, out_dir)}")
        finally:
            leases.release(lease)
