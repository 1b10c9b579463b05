"""Planning helpers the quality measurements share: which models, the points, the preflight."""

from __future__ import annotations

from typing import Any

from harness.point import Point, freeze


def model_names(ctx, own: list[str] | None) -> list[str]:
    """The measurement's own model list if it has one (checked), else the suite's."""
    if not own:
        return list(ctx.models)
    import models
    from harness.config import check_choice

    for name in own:
        check_choice("models", name, models.preset_names())
    return list(own)


def model_overrides(ctx, preset: str, per_preset: dict[str, Any]) -> dict[str, Any]:
    """suite.model_overrides (every model of the suite), then this measurement's per-preset
    overrides; the measurement's width/depth/vocab are applied on top by quality.tiny."""
    base = dict(ctx.cfg.suite.model_overrides or {})
    base.update(dict(per_preset.get(preset) or {}))
    return base


def point(ctx, suite: str, model: str, context: int, batch: int, params: dict) -> Point:
    # Training points carry no timing settings: repetition counts do not change what they measure.
    return Point(
        suite=suite,
        model=model,
        size=ctx.size,
        context=context,
        batch=batch,
        dtype=ctx.dtype,
        device=ctx.hw.device,
        backends=freeze(ctx.backends),
        seed=ctx.seed,
        params=freeze(params),
    )


def backend_reason(point: Point) -> str | None:
    from harness.backends import unavailable_reason

    for kind, backend in point.backends:
        reason = unavailable_reason(kind, backend, point.device)
        if reason:
            return f"backend.{kind}={backend}: {reason}"
    return None


def thaw_overrides(point: Point) -> dict[str, Any]:
    raw = point.param("overrides") or ()
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(raw).items()}


def tiny_overrides(point: Point, vocab_size: int | None = None) -> dict[str, Any]:
    """The tiny model's ModelConfig overrides from a quality point's params (the vocabulary from
    the point unless the measurement fixes it, as byte-level perplexity does)."""
    from suites.quality import tiny

    return tiny.overrides(
        point.model,
        point.param("width"),
        point.param("n_layer"),
        point.param("vocab_size") if vocab_size is None else vocab_size,
        point.param("attn_head_dim"),
        thaw_overrides(point),
    )


def train_config(point: Point, lr: float):
    """The TrainConfig a quality point's params describe, at learning rate `lr`; the loss curve
    keeps about 50 entries whatever the step count."""
    from suites.training import TrainConfig

    steps = point.param("steps")
    return TrainConfig(
        steps=steps,
        lr=lr,
        warmup=point.param("warmup"),
        weight_decay=point.param("weight_decay"),
        grad_clip=point.param("grad_clip"),
        log_every=max(1, steps // 50),
    )


def build_tiny(point: Point, device, overrides: dict[str, Any]):
    """The point's model with those overrides on `device`, on the point's kernel backends:
    (model, notes), as quality.tiny.build."""
    from suites.quality import tiny

    return tiny.build(point.model, point.size, overrides, device, dict(point.backends))
