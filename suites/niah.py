"""Needle in a haystack: key-value needles ([NEEDLE, key, value]) hidden in random filler, then
one query per needle at the end ([QUERY, key] -> value). Models are trained at one length with
needles anywhere, then scored on the target needle placed at depth d (0 = start of the haystack,
1 = its end) in haystacks of length L, including lengths beyond training: attention with RoPE and
SSMs extrapolate differently, which is the point.

One point per model x length x depth; every point of a model shares one trained model (trained by
the first point that needs it, cached on disk by a key over every training setting), so each
record carries the training loss curve without training again. model=hf: a transformers
checkpoint scored zero-shot on each cell's examples (suites/quality/pretrained.py).

    make bench ARGS="suite=recall"
    make bench ARGS="suite=recall 'suite.niah.depths=[0,0.5,1]' 'sweep.context=[512,2k,8k]'"

Record: metrics.accuracy, params.depth, point.context (haystack length), params.train_length,
metrics.loss_curve, metrics.trained_here (whether this point trained the model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.point import Point
from suites.quality import points as Q

USES_MODELS = True
# what changes only the evaluation: the pool chains a model's cells so one slot trains it
EVAL_ONLY_PARAMS = ("depth",)


@dataclass
class NIAHConfig:
    models: list[str] | None = None  # null: the suite's models
    depths: list[float] = field(default_factory=lambda: [0.0, 0.25, 0.5, 0.75, 1.0])
    lengths: list[Any] | None = None  # null: the sweep's context lengths
    train_length: int = 512
    width: int = 128
    n_layer: int = 4
    vocab_size: int = 512
    needles: int = 4  # the target and three distractors with other keys
    attn_head_dim: int = 64
    lrs: list[float] = field(default_factory=lambda: [1e-3])
    steps: int = 2000
    batch_size: int = 32
    warmup: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    val_examples: int = 256  # at train_length, random depths: picks the best learning rate
    eval_examples: int = 200  # per (length, depth) cell
    eval_tokens: int = 65536  # tokens per evaluation batch (batch = eval_tokens // L, >= 1)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    cache_dir: str = "~/.cache/ctxbench/data"


CONFIG = NIAHConfig
TRAIN_KEYS = (
    "train_length",
    "width",
    "n_layer",
    "vocab_size",
    "needles",
    "attn_head_dim",
    "lrs",
    "steps",
    "batch_size",
    "warmup",
    "weight_decay",
    "grad_clip",
    "val_examples",
)


def expand(ctx) -> list[Point]:
    from suites.modelbench import lengths

    cfg: NIAHConfig = ctx.cfg.suite.niah
    contexts = lengths(cfg.lengths, "suite.niah.lengths") or ctx.contexts
    shared = {k: getattr(cfg, k) for k in TRAIN_KEYS}
    shared.update(
        eval_examples=cfg.eval_examples, eval_tokens=cfg.eval_tokens, cache_dir=cfg.cache_dir
    )
    out = []
    for name in Q.model_names(ctx, cfg.models):
        ovr = Q.model_overrides(ctx, name, cfg.model_overrides)
        for L in contexts:
            for d in cfg.depths:
                params = {**shared, "depth": float(d), "overrides": ovr}
                out.append(Q.point(ctx, "niah", name, L, cfg.batch_size, params))
    return out


def _spec(point: Point, n: int, length: int, depth: float | None, label_all: bool, seed: int):
    from suites.quality.synthetic import NIAHSpec

    return NIAHSpec(
        num_examples=n,
        length=length,
        vocab_size=point.param("vocab_size"),
        needles=point.param("needles"),
        depth=depth,
        label_all=label_all,
        seed=seed,
    )


def _model_overrides(point: Point) -> dict[str, Any]:
    return Q.tiny_overrides(point)


def preflight(point: Point, ctx) -> str | None:
    from suites.quality import tiny

    d = point.param("depth")
    reason = (
        _spec(point, 1, point.context, d, False, 0).check()
        or _spec(point, 1, point.param("train_length"), None, True, 0).check()
        or Q.backend_reason(point)
    )
    if point.model == "hf":  # a checkpoint, zero-shot (suites/quality/pretrained.py)
        from suites.quality import pretrained

        # an example is exactly `context` tokens (quality.synthetic.NIAHSpec.length)
        return reason or pretrained.check(Q.thaw_overrides(point), point.context)
    return reason or tiny.check(point.model, point.size, _model_overrides(point))


def _train_key(point: Point) -> dict[str, Any]:
    """Everything the trained model depends on (not the eval length or depth)."""
    keys = {k: point.param(k) for k in TRAIN_KEYS}
    return {
        **keys,
        "model": point.model,
        "size": point.size,
        "overrides": _model_overrides(point),
        "device": point.device,
        "backends": dict(point.backends),
        "seed": point.seed,
    }


def _train(point: Point, device: str):
    """Train one model per learning rate; keep the best on held-out data at the training length."""
    import torch

    from suites.quality import tiny
    from suites.quality.synthetic import load_niah
    from suites.training import shuffled_batches, train

    T, steps, bs = point.param("train_length"), point.param("steps"), point.param("batch_size")
    cache = point.param("cache_dir")
    tr, tr_info = load_niah(_spec(point, steps * bs, T, None, True, 3 * point.seed), cache)
    va, _ = load_niah(
        _spec(point, point.param("val_examples"), T, None, True, 3 * point.seed + 1), cache
    )
    x, y = tiny.tensors(tr)
    xv, yv = tiny.tensors(va)
    best, sweep = None, {}
    for lr in point.param("lrs"):
        torch.manual_seed(point.seed)
        model, notes = Q.build_tiny(point, device, _model_overrides(point))
        cfg = Q.train_config(point, lr)
        try:
            result = train(model, shuffled_batches(x, y, bs, point.seed), cfg, device)
        except FloatingPointError as exc:
            sweep[str(lr)] = {"val_accuracy": 0.0, "diverged": str(exc)}
            continue
        val, _ = tiny.accuracy(model, xv, yv, max(1, 65536 // T), device)
        sweep[str(lr)] = {"val_accuracy": val, "final_loss": result["final_loss"]}
        if best is None or val > best[0]:
            best = (val, lr, model.state_dict(), result, notes)
    if best is None:
        raise FloatingPointError(f"every learning rate diverged: {point.param('lrs')}")
    val, lr, state, result, notes = best
    info = {
        "lr": lr,
        "val_accuracy": val,
        "sweep": sweep,
        "loss_curve": result["loss_curve"],
        "final_loss": result["final_loss"],
        "train_tokens": result["tokens"],
        "train_s": result["seconds"],
        "step_mode": result["step_mode"],
        "graph_error": result.get("graph_error"),
        "model": {k: v for k, v in notes.items()},
        "data": tr_info,
    }
    return state, info


def _eval_set(point: Point):
    """The cell's evaluation examples: (inputs, labels, data info)."""
    from suites.quality import tiny
    from suites.quality.synthetic import load_niah

    L, depth = point.context, point.param("depth")
    # evaluation seeds differ per cell so that cells are independent samples
    seed = 1_000_003 * (point.seed + 1) + 7919 * L + round(depth * 1000)
    ev, ev_info = load_niah(
        _spec(point, point.param("eval_examples"), L, depth, False, seed), point.param("cache_dir")
    )
    return (*tiny.tensors(ev), ev_info)


def _zero_shot(point: Point, device: str) -> dict[str, Any]:
    from suites.quality import pretrained

    x, y, ev_info = _eval_set(point)
    ovr = Q.thaw_overrides(point)
    out = pretrained.zero_shot(point, ovr, x, y, point.param("vocab_size"), device)
    m = out["metrics"]  # one scored position an example: the examples, as trained cells count
    m.update(depth=point.param("depth"), scored=m["scored_positions"], beyond_training=None)
    return {**out, "data": {"eval": ev_info}}


def run(point: Point) -> dict[str, Any]:
    from suites.quality import tiny
    from suites.quality.cache import cached_state

    device = tiny.device_of(point)
    if point.model == "hf":  # a checkpoint as it is: the cell's examples, zero-shot
        return _zero_shot(point, device)
    state, info, trained_here = cached_state(
        "niah-model", _train_key(point), lambda: _train(point, device), point.param("cache_dir")
    )
    model, notes = Q.build_tiny(point, device, _model_overrides(point))
    model.load_state_dict(state)
    x, y, ev_info = _eval_set(point)
    L, depth = point.context, point.param("depth")
    acc, scored = tiny.accuracy(model, x, y, max(1, point.param("eval_tokens") // L), device)
    return {
        "metrics": {
            "accuracy": acc,
            "depth": depth,
            "train_length": point.param("train_length"),
            "beyond_training": L > point.param("train_length"),
            "val_accuracy": info["val_accuracy"],
            "lr": info["lr"],
            "loss_curve": info["loss_curve"],
            "final_loss": info["final_loss"],
            "params": notes["params"],
            "scored": scored,
            "trained_here": trained_here,
            "train_s": info["train_s"] if trained_here else 0.0,
            "train_step_mode": info.get("step_mode"),  # cuda_graph or eager
            "graph_error": info.get("graph_error"),
            "train_tokens": info["train_tokens"],
        },
        "samples": {"sweep": info["sweep"]},
        "model": {**notes, "overrides": _model_overrides(point)},
        "data": {"train": info["data"], "eval": ev_info},
        "backends_ran": notes["kernel_backends"],
    }
