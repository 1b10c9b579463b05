"""Records -> one flat table (pandas), one row per point's latest attempt.

Each suite writes its own metric names (see the suites); `flatten` maps them onto one set of
columns so figures, tables, crossovers and the ledger select rows the same way. Anything a column
does not hold (raw samples, bucketed perplexity, search steps) stays in the record, reachable by
the row's hash through `Run.records`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from harness.report import arch
from harness.store import TORN, latest_by_hash, read_run
from harness.units import format_length

FAILED = ("oom", "timeout", "crashed", "cuda_error", "invalid_output")

COLUMNS = [
    "suite",
    "model",
    "family",
    "size",
    "backend",
    "decode_step",
    "context",
    "batch",
    "dtype",
    "status",
    "phase",
    "time_ms",
    "p90_ms",
    "p99_ms",
    "samples",
    "tokens_per_s",
    "tflops",
    "gbps",
    "mfu",
    "mbu",
    "flops",
    "bytes_per_token",
    "peak_bytes",
    "predicted_bytes",
    "prefill_peak",
    "decode_peak",
    "prefill_predicted",
    "decode_predicted",
    "energy_jpt",
    "rel_err",
    "best_batch",
    "batch_capped",
    "max_context",
    "first_failure",
    "frontier_limit",
    "accuracy",
    "scored",
    "bpb",
    "width",
    "kv_pairs",
    "depth",
    "train_length",
    "reason",
    "hash",
]


@dataclass
class Run:
    dir: Path
    manifest: dict[str, Any]
    records: dict[str, dict[str, Any]]  # hash -> latest record, in file order
    df: pd.DataFrame
    torn: int  # lines set aside as torn (records.torn.jsonl): never counted

    @property
    def env(self) -> dict[str, Any]:
        return self.manifest.get("env") or {}

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.dir.name)

    def samples(self, hash_: str) -> list[float]:
        rec = self.records.get(hash_) or {}
        return list((rec.get("samples") or {}).get("time_ms") or [])

    def device_memory(self) -> int | None:
        """Bytes of one device: what a point could use (the env's, else a record's)."""
        if self.env.get("device_memory_bytes"):
            return int(self.env["device_memory_bytes"])
        col = self.df.get("device_memory_bytes")
        return None if col is None or col.dropna().empty else int(col.dropna().iloc[0])


def _batch_capped(m: dict) -> bool | None:
    """A throughput search whose every batch ran stopped at its own largest batch: the batch
    that fits, and its tokens/s, are lower bounds, not the search's answer."""
    steps = m.get("search")
    if not isinstance(steps, list) or not steps:
        return None
    return all(isinstance(x, dict) and x.get("status") == "ok" for x in steps)


def member_runs(folder: Path) -> list[Path]:
    """A collection: run folders (each with a manifest) directly inside `folder`, by name."""
    return sorted(p.parent for p in Path(folder).glob("*/manifest.json"))


def is_results(folder: Path) -> bool:
    """A run folder, or a collection of runs (see `load`)."""
    return (Path(folder) / "manifest.json").exists() or bool(member_runs(folder))


def load(run_dir: Path) -> Run:
    """One run folder; or a folder of runs made on one machine (say the standard, recall and
    perplexity suites of a published example), read as one run so that one report and one
    ledger see speed and quality together."""
    run_dir = Path(run_dir)
    if not (run_dir / "manifest.json").exists() and member_runs(run_dir):
        return _load_collection(run_dir)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    records = latest_by_hash(read_run(run_dir))  # every writer's file merged
    torn_path = run_dir / TORN
    torn = len(torn_path.read_text().splitlines()) if torn_path.exists() else 0
    return Run(run_dir, manifest, records, table(list(records.values())), torn)


def _load_collection(folder: Path) -> Run:
    runs = sorted((load(p) for p in member_runs(folder)), key=lambda r: r.manifest.get("created"))
    devices = {str(r.env.get("device_name") or r.env.get("device") or "") for r in runs}
    if len(devices) > 1:
        raise ValueError(
            f"{folder}: its runs were made on different devices ({', '.join(sorted(devices))}); "
            "report each and compare them with --compare"
        )
    records: dict[str, dict[str, Any]] = {}
    measure: list[str] = []
    claims: list[str] = []
    for r in runs:
        records.update(r.records)  # a point's hash is its content: the same point, same key
        config = r.manifest.get("config") or {}
        measure += [m for m in (config.get("suite") or {}).get("measure") or [] if m not in measure]
        claims += [c for c in (config.get("run") or {}).get("claims") or [] if c not in claims]
    manifest = {
        "run_id": folder.name,
        "suite": " + ".join(str(r.manifest.get("suite") or r.run_id) for r in runs),
        "created": runs[0].manifest.get("created"),
        "env": runs[0].env,
        "config": {
            "suite": {"measure": measure},
            "run": {"claims": claims},
            "runs": {r.run_id: r.manifest.get("config") for r in runs},
        },
        "plan": {"points": sum(int(_get(r.manifest, "plan", "points") or 0) for r in runs)},
        "runs": [r.run_id for r in runs],
    }
    return Run(folder, manifest, records, table(list(records.values())), sum(r.torn for r in runs))


def _num(value: Any) -> float | None:
    """A metric as a float, or None (bools and strings are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _get(d: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _decode_step(ran: dict, m: dict) -> str:
    """Which decode step a record timed: "compiled", "fused", "fused+gemv", "gemv" or "" (the
    plain step, or none)."""
    if m.get("compiled"):
        return "compiled"
    parts = [k for k in ("fused", "gemv") if ran.get(f"decode_{k}") == "triton"]
    return "+".join(parts)


def flatten(rec: dict[str, Any]) -> dict[str, Any]:
    p = rec.get("point") or {}
    m = rec.get("metrics") or {}
    params = p.get("params") or {}
    model = str(p.get("model", ""))
    ran = rec.get("backends_ran") or p.get("backends") or {}
    peaks = [_num(_get(m, k, "peak_allocated_bytes")) for k in ("prefill_memory", "decode_memory")]
    preds = [_num(_get(m, "predicted", k, "total")) for k in ("prefill", "decode")]
    row = {
        "suite": p.get("suite", ""),
        "model": model,
        "family": arch.family(model),
        "size": p.get("size") or "",
        "backend": arch.backend_label(model, ran),
        "decode_step": _decode_step(ran, m),
        "context": int(p.get("context") or 0),
        "batch": int(p.get("batch") or 0),
        "dtype": p.get("dtype", ""),
        "status": rec.get("status", ""),
        "phase": params.get("phase") or m.get("phase") or "",
        "time_ms": _num(m.get("time_ms")),
        "p90_ms": _num(_get(m, "time", "p90")),
        "p99_ms": _num(_get(m, "time", "p99")),
        "samples": _num(_get(m, "time", "count")),
        "tokens_per_s": _num(m.get("tokens_per_s")),
        "tflops": _num(m.get("tflops")),
        "gbps": _num(m.get("gbps")),
        "mfu": _num(m.get("mfu")),
        "mbu": _num(m.get("mbu")),
        "flops": _num(m.get("flops")),
        "bytes_per_token": (
            _bytes_per_token(m, int(p.get("batch") or 1)) if p.get("suite") == "decode" else None
        ),
        "peak_bytes": _num(_get(m, "memory", "peak_allocated_bytes")),
        "predicted_bytes": _num(_get(m, "predicted_memory", "total")),
        "prefill_peak": peaks[0],
        "decode_peak": peaks[1],
        "prefill_predicted": preds[0],
        "decode_predicted": preds[1],
        "energy_jpt": _num(_get(m, "energy", "joules_per_token")),
        "rel_err": _num(m.get("rel_err")) if "rel_err" in m else _num(_get(m, "canary", "rel_err")),
        "best_batch": _num(m.get("batch")) if p.get("suite") == "throughput" else None,
        "batch_capped": _batch_capped(m) if p.get("suite") == "throughput" else None,
        "max_context": _num(m.get("max_context")),
        "first_failure": _num(m.get("first_failure")),
        "frontier_limit": m.get("limited_by") if isinstance(m.get("limited_by"), str) else None,
        "accuracy": _num(m.get("accuracy")),
        # independent samples behind the accuracy, for its sampling error: needle examples; for
        # MQAR the test sequences (their 4-16 query positions each are not independent)
        "scored": _num(m.get("scored", params.get("test_examples"))),
        "bpb": _num(m.get("bpb")),
        "width": _num(params.get("width")),
        "kv_pairs": _num(params.get("kv_pairs")),
        "depth": _num(params.get("depth")),
        # a checkpoint scored as it is (model=hf) was not trained at the suite's length
        "train_length": None if model == "hf" else _num(params.get("train_length")),
        "reason": rec.get("reason") or "",
        "hash": rec.get("hash", ""),
        "device_memory_bytes": _num(m.get("device_memory_bytes")),
    }
    if row["peak_bytes"] is None and any(v is not None for v in peaks):
        row["peak_bytes"] = max(v for v in peaks if v is not None)  # the memory suite's phases
    if row["predicted_bytes"] is None and any(v is not None for v in preds):
        row["predicted_bytes"] = max(v for v in preds if v is not None)
    return row


def _bytes_per_token(m: dict, batch: int) -> float | None:
    """HBM bytes one decode step moves per generated token (the cost model's count)."""
    step = _num(m.get("bytes_per_step"))
    if step is None and _num(m.get("gbps")) and _num(m.get("time_ms")):
        step = m["gbps"] * 1e9 * m["time_ms"] / 1e3
    return step / max(batch, 1) if step is not None else None


SORT = ["suite", "model", "size", "backend", "dtype", "batch", "phase", "context", "hash"]


def table(records: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame([flatten(r) for r in records], columns=[*COLUMNS, "device_memory_bytes"])
    for col in (
        "suite",
        "model",
        "family",
        "size",
        "backend",
        "dtype",
        "status",
        "phase",
        "reason",
        "hash",
    ):
        # plain Python strings: pandas' Arrow-backed default makes every row selection and
        # .loc several times slower, and the report selects rows thousands of times
        df[col] = df[col].astype(object)
    df = df.sort_values(SORT, kind="stable").reset_index(drop=True)
    df["length"] = df["context"].map(lambda n: format_length(int(n)) if n else "")
    return df
