"""MQAR, multi-query associative recall (Arora et al. 2023, "Zoology"): a sequence of key-value
pairs, then the keys again at power-law distances; after each key the model must produce its
value. Small models of each architecture are trained here from scratch, once per learning rate
of a small sweep, and the best test accuracy is kept (Zoology's protocol). One point per
model x width x sequence length x number of pairs. model=hf (suite.model_overrides.hf_source):
a transformers checkpoint scored zero-shot on the same test set (suites/quality/pretrained.py).

    make bench ARGS="suite=recall"                       # GPU: mqar + niah
    make bench ARGS="suite=quality_smoke"                # CPU, tiny
    make bench ARGS="suite=recall 'suite.mqar.widths=[64,256]' 'models=[transformer,mamba2]'"

Record: metrics.accuracy (best over the sweep), metrics.lr (its learning rate),
metrics.accuracy_by_lr, metrics.loss_curve (the best run's), metrics.params (parameter count);
point.params holds width, seq_len, kv_pairs, lrs and every training setting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.point import Point
from suites.quality import points as Q

USES_MODELS = True


@dataclass
class MQARConfig:
    models: list[str] | None = None  # null: the suite's models
    widths: list[int] = field(default_factory=lambda: [64, 128, 256])
    seq_lens: list[int] = field(default_factory=lambda: [64, 256])
    kv_pairs: list[int] = field(default_factory=lambda: [4, 16])
    n_layer: int = 4  # Megatron counting: a Transformer block is 2 layers (A, -)
    vocab_size: int = 8192
    attn_head_dim: int = 64
    lrs: list[float] = field(default_factory=lambda: [3e-4, 1e-3, 3e-3])
    steps: int = 2000
    batch_size: int = 64
    warmup: float = 0.1
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    train_examples: int = 0  # 0: steps * batch_size, every example seen once
    test_examples: int = 1000
    power_a: float = 0.01
    random_non_queries: bool = True
    model_overrides: dict[str, Any] = field(default_factory=dict)  # preset -> overrides
    cache_dir: str = "~/.cache/ctxbench/data"


CONFIG = MQARConfig


def expand(ctx) -> list[Point]:
    cfg: MQARConfig = ctx.cfg.suite.mqar
    settings = {
        k: getattr(cfg, k)
        for k in (
            "n_layer",
            "vocab_size",
            "attn_head_dim",
            "lrs",
            "steps",
            "batch_size",
            "warmup",
            "weight_decay",
            "grad_clip",
            "train_examples",
            "test_examples",
            "power_a",
            "random_non_queries",
            "cache_dir",
        )
    }
    out = []
    for name in Q.model_names(ctx, cfg.models):
        ovr = Q.model_overrides(ctx, name, cfg.model_overrides)
        # a checkpoint has its own width: one point per task setting, not one per width
        for width in cfg.widths if name != "hf" else [None]:
            for L in cfg.seq_lens:
                for kv in cfg.kv_pairs:
                    params = {
                        **settings,
                        "width": width,
                        "seq_len": L,
                        "kv_pairs": kv,
                        "overrides": ovr,
                    }
                    out.append(Q.point(ctx, "mqar", name, L, cfg.batch_size, params))
    return out


def _spec(point: Point, n: int, seed: int):
    from suites.quality.synthetic import MQARSpec

    return MQARSpec(
        num_examples=n,
        seq_len=point.param("seq_len"),
        kv_pairs=point.param("kv_pairs"),
        vocab_size=point.param("vocab_size"),
        power_a=point.param("power_a"),
        random_non_queries=point.param("random_non_queries"),
        seed=seed,
    )


def _model_overrides(point: Point) -> dict[str, Any]:
    return Q.tiny_overrides(point)


def preflight(point: Point, ctx) -> str | None:
    from suites.quality import pretrained, tiny

    reason = _spec(point, 1, 0).check() or Q.backend_reason(point)
    if point.model == "hf":  # a checkpoint, zero-shot (suites/quality/pretrained.py)
        return reason or pretrained.check(Q.thaw_overrides(point), point.param("seq_len"))
    return reason or tiny.check(point.model, point.size, _model_overrides(point))


def run(point: Point) -> dict[str, Any]:
    import torch

    from suites.quality import tiny
    from suites.quality.synthetic import load_mqar
    from suites.training import shuffled_batches, train

    device = tiny.device_of(point)
    steps, bs = point.param("steps"), point.param("batch_size")
    n_train = point.param("train_examples") or steps * bs
    cache = point.param("cache_dir")
    # train and test come from different seeds of the same generator: disjoint draws
    test_arrays, test_info = load_mqar(
        _spec(point, point.param("test_examples"), 2 * point.seed + 1), cache
    )
    xt, yt = tiny.tensors(test_arrays)
    if point.model == "hf":  # a checkpoint as it is: the test set, zero-shot, no training
        from suites.quality import pretrained

        ovr = Q.thaw_overrides(point)
        out = pretrained.zero_shot(point, ovr, xt, yt, point.param("vocab_size"), device)
        return {**out, "data": {"test": test_info}}
    train_arrays, train_info = load_mqar(_spec(point, n_train, 2 * point.seed), cache)
    x, y = tiny.tensors(train_arrays)
    ovr = _model_overrides(point)

    by_lr: dict[str, Any] = {}
    best = None
    for lr in point.param("lrs"):
        torch.manual_seed(point.seed)  # every learning rate starts from the same weights
        model, notes = Q.build_tiny(point, device, ovr)
        cfg = Q.train_config(point, lr)
        try:
            result = train(model, shuffled_batches(x, y, bs, point.seed), cfg, device)
        except FloatingPointError as exc:  # a diverged learning rate is a result of the sweep
            by_lr[str(lr)] = {"accuracy": 0.0, "diverged": str(exc)}
            continue
        acc, scored = tiny.accuracy(model, xt, yt, 256, device)
        by_lr[str(lr)] = {
            "accuracy": acc,
            "final_loss": result["final_loss"],
            "loss_curve": result["loss_curve"],
            "train_s": result["seconds"],
            "step_mode": result["step_mode"],
            "graph_error": result.get("graph_error"),
        }
        if best is None or acc > best[0]:
            best = (acc, lr, result, notes, scored)
        del model
    if best is None:
        raise FloatingPointError(f"every learning rate diverged: {point.param('lrs')}")
    acc, lr, result, notes, scored = best
    return {
        "metrics": {
            "accuracy": acc,
            "lr": lr,
            "accuracy_by_lr": {k: v["accuracy"] for k, v in by_lr.items()},
            "loss_curve": result["loss_curve"],
            "final_loss": result["final_loss"],
            "params": notes["params"],
            "scored_positions": scored,
            "train_tokens": result["tokens"],
            "train_s": sum(v.get("train_s", 0.0) for v in by_lr.values()),
            "train_step_mode": result["step_mode"],  # cuda_graph or eager (suites/training.py)
        },
        "samples": {"sweep": by_lr},
        "model": {**notes, "overrides": ovr},
        "data": {"train": train_info, "test": test_info, "train_examples": n_train},
        "backends_ran": notes["kernel_backends"],
    }
