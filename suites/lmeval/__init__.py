"""lm-eval on ctxbench models: the measurement `lm_eval` runs lm-eval's `simple_evaluate` through
the registered `ctxbench` LM (suites/lmeval/model.py) on local tasks that work offline
(passkey retrieval at chosen lengths, rolling perplexity on the held-out corpus; see
suites/lmeval/tasks.py) and on any lm-eval task name when the hub is reachable.

Weights: `trained` uses the byte-level model the perplexity section of the same suite trains for
that preset (same cache entry, trained once); `random` the same shape untrained (a pipeline
check); model=hf with hf_weights=pretrained a checkpoint with its own tokenizer.

    make bench ARGS="suite=perplexity"                     # perplexity + lm_eval on GPU
    make bench ARGS="suite=quality_smoke"                  # CPU

Record: metrics.results (lm-eval's per-task metrics), metrics.passkey_by_length {L: exact
match}, metrics.rolling_bpb, metrics.long_inputs and metrics.carried_state (requests longer
than max_length, scored with the state carried across chunks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.point import Point, freeze
from suites.quality import points as Q

USES_MODELS = True
WEIGHTS = ("trained", "random", "pretrained")


@dataclass
class LMEvalConfig:
    models: list[str] | None = None  # null: the suite's models
    tasks: list[str] = field(default_factory=lambda: ["passkey", "rolling_ppl"])
    passkey_lengths: list[int] = field(default_factory=lambda: [1024, 4096])
    passkey_examples: int = 20
    rolling_max_bytes: int = 16384  # each held-out document cut to this (0: whole)
    max_length: int = 2048  # longer inputs: see long_inputs
    long_inputs: str = "carry_state"  # carry_state | error
    weights: str = "trained"  # trained | random (native presets) | pretrained (model=hf)
    limit: int = 0  # examples per task (0: all)
    cache_dir: str = "~/.cache/ctxbench/data"


CONFIG = LMEvalConfig
LOCAL = ("passkey", "rolling_ppl")


def expand(ctx) -> list[Point]:
    from harness.config import ConfigError
    from suites import perplexity as P

    cfg: LMEvalConfig = ctx.cfg.suite.lm_eval
    if cfg.weights not in WEIGHTS:
        raise ConfigError(f"suite.lm_eval.weights: unknown value {cfg.weights!r}; valid: {WEIGHTS}")
    if cfg.long_inputs not in ("carry_state", "error"):
        raise ConfigError(f"suite.lm_eval.long_inputs: {cfg.long_inputs!r} (carry_state | error)")
    out = []
    for point in P.expand(ctx, models=Q.model_names(ctx, cfg.models), contexts=[cfg.max_length]):
        params = {**vars(cfg), "models": None, "lm": point.to_dict()["params"]}
        out.append(Q.point(ctx, "lm_eval", point.model, cfg.max_length, 1, params))
    return out


def _lm_point(point: Point) -> Point:
    """The perplexity point whose trained model this evaluation uses."""
    lm = point.to_dict()["params"]["lm"]
    return Point(
        suite="perplexity",
        model=point.model,
        size=point.size,
        context=point.context,
        batch=lm["batch_size"],
        dtype=point.dtype,
        device=point.device,
        backends=point.backends,
        seed=point.seed,
        params=freeze(lm),
    )


def preflight(point: Point, ctx) -> str | None:
    from suites import perplexity as P

    if (point.model == "hf") != (point.param("weights") == "pretrained"):
        return "weights=pretrained goes with model=hf (and model=hf with weights=pretrained)"
    if point.model == "hf":
        return Q.backend_reason(point)
    return P.preflight(_lm_point(point), ctx)


def _model(point: Point, device: str):
    from suites import perplexity as P
    from suites.lmeval.model import ByteTokenizer
    from suites.quality import tiny

    if point.model == "hf":
        return _pretrained(point, device)
    lp = _lm_point(point)
    model, notes = tiny.build(lp.model, lp.size, P._model_overrides(lp), device, dict(lp.backends))
    trained_here = False
    if point.param("weights") == "trained":
        state, _, trained_here = P.trained(lp, device)
        model.load_state_dict(state)
    notes.update(weights=point.param("weights"), trained_here=trained_here)
    return model.eval(), ByteTokenizer(), notes


def _pretrained(point: Point, device: str):
    """A transformers checkpoint (suite.model_overrides.hf_source) with its own tokenizer."""
    import torch
    from transformers import AutoTokenizer

    from suites.lmeval.model import HFTokenizer
    from suites.quality.pretrained import load_model

    source = dict(point.to_dict()["params"]["lm"]["overrides"]).get("hf_source", "")
    model, notes = load_model(source, device, dtype=torch.float32)  # lm-eval scores in fp32
    return model.eval(), HFTokenizer(AutoTokenizer.from_pretrained(source)), notes


def _clean(results: dict) -> dict:
    out = {}
    for task, metrics in results.items():
        out[task] = {
            k.split(",")[0]: float(v)
            for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and "stderr" not in k
        }
    return out


def run(point: Point) -> dict[str, Any]:
    import contextlib
    import io
    from pathlib import Path

    import datasets
    import lm_eval

    from suites import perplexity as P
    from suites.lmeval import tasks as T
    from suites.lmeval.model import CtxbenchLM, info
    from suites.quality import corpus as C
    from suites.quality import tiny
    from suites.quality.cache import resolve_dir

    datasets.disable_progress_bars()
    device = tiny.device_of(point)
    model, tok, notes = _model(point, device)
    lm = CtxbenchLM(model, tok, device, point.param("max_length"), point.param("long_inputs"))
    folder = Path(resolve_dir(point.param("cache_dir"))) / "lm_eval_tasks"
    task_list: list[Any] = []
    for name in point.param("tasks"):
        if name == "passkey":
            task_list += [
                T.passkey_task(folder, L, point.param("passkey_examples"), point.seed)
                for L in point.param("passkey_lengths")
            ]
        elif name == "rolling_ppl":
            corpus = C.load(P._corpus_config(_lm_point(point)))
            task_list.append(T.rolling_task(folder, corpus.eval, point.param("rolling_max_bytes")))
        else:
            task_list.append(name)  # a standard lm-eval task (needs the hub for its data)
    # lm-eval's progress bars (stderr) would interleave with the orchestrator's progress lines
    # on the terminal the worker shares; errors still raise.
    with contextlib.redirect_stderr(io.StringIO()):
        res = lm_eval.simple_evaluate(
            model=lm,
            tasks=task_list,
            limit=point.param("limit") or None,
            log_samples=False,
            bootstrap_iters=0,
            random_seed=point.seed,
            numpy_random_seed=point.seed,
            torch_random_seed=point.seed,
        )
    results = _clean(res["results"])
    passkey = {
        int(k.rsplit("_", 1)[1]): v["exact_match"]
        for k, v in results.items()
        if k.startswith("ctxbench_passkey_")
    }
    rolling = results.get("ctxbench_rolling_ppl", {})
    return {
        "metrics": {
            "results": results,
            "passkey_by_length": passkey,
            "rolling_bpb": rolling.get("bits_per_byte"),
            **info(lm),
            "weights": notes["weights"],
            "params": notes["params"],
        },
        "model": notes,
        "lm_eval_version": res.get("lm_eval_version"),
        "backends_ran": notes["kernel_backends"],
    }
