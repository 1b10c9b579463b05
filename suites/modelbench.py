"""What the model-level speed suites share: points over models, building the model a point names,
random prompts, the decode cache filled without a prefill, and the long-context canary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from harness.errors import InvalidOutput
from harness.point import Point, freeze

# Logits of the chunked prefill vs the step-by-step (recurrent) path for the same last token.
# bf16 through dozens of layers differs by ~1e-2; an offset overflow or a wrong kernel gives O(1).
CANARY_TOLERANCE = {"float32": 1e-3, "float16": 3e-2, "bfloat16": 6e-2}


# The decode-step choices a timing suite may name in its points: ModelConfig field -> its value
# when on (the step's small ops fused; its one-row products on the Triton GEMV)
STEP_CHOICES = {"fused_decode": True, "decode_gemv": "triton"}


def step_param(ctx, field: str, on: bool) -> dict[str, Any]:
    """A decode-step choice (STEP_CHOICES) on a GPU, named in the point so that a step measured
    before it was the default keeps its own identity. Off on the CPU (the kernels are Triton's);
    an explicit suite.model_overrides.<field> decides instead."""
    if not on or ctx.hw.device != "cuda" or field in ctx.cfg.suite.model_overrides:
        return {}
    return {field: STEP_CHOICES[field]}


def model_points(ctx, suite: str, params: dict[str, Any], contexts=None, batches=None) -> list:
    """One Point per model x batch x context, carrying the suite's params and model overrides."""
    overrides = dict(ctx.cfg.suite.model_overrides)
    return [
        Point(
            suite=suite,
            model=name,
            size=ctx.size,
            context=L,
            batch=B,
            dtype=ctx.dtype,
            device=ctx.hw.device,
            backends=freeze(ctx.backends),
            seed=ctx.seed,
            params=freeze({**params, "overrides": overrides}),
            timing=ctx.timing,
        )
        for name in ctx.models
        for B in (batches or ctx.batches)
        for L in (contexts or ctx.contexts)
    ]


def lengths(values, field_name: str) -> list[int] | None:
    """A measurement's own context list (human units), or None to use the sweep's."""
    from harness.config import ConfigError
    from harness.units import UnitError, parse_length

    if not values:
        return None
    try:
        return sorted({parse_length(v, field_name) for v in values})
    except UnitError as exc:
        raise ConfigError(str(exc)) from exc


def model_config(point: Point):
    import models

    step = {k: point.param(k) for k in STEP_CHOICES if point.param(k)}
    return models.config(
        point.model, point.size, **{**step, **dict(point.param("overrides") or ())}
    )


def predicted_memory(point: Point, phase: str) -> dict[str, int]:
    return model_config(point).cost().memory(point.batch, point.context, point.dtype, phase)


def memory_preflight(point: Point, ctx, phase: str) -> str | None:
    """Skip a point the cost model says cannot fit, naming the prediction."""
    need = predicted_memory(point, phase)["total"]
    limit = ctx.hw.memory_bytes * ctx.cfg.hardware.memory_fraction
    if need > limit:
        return (
            f"predicted {phase} memory {need / 1e9:.1f} GB > {limit / 1e9:.1f} GB usable "
            f"({ctx.hw.name}); the frontier suite measures where it really ends"
        )
    return None


@dataclass
class Bench:
    model: Any
    cost: Any
    dtype: torch.dtype
    device: str


def build(point: Point) -> Bench:
    cfg = model_config(point)
    dtype = getattr(torch, point.dtype)
    model = cfg.build(point.device, dtype, backends=point.backend_map)
    model.eval()
    return Bench(model, cfg.cost(), dtype, point.device)


def random_ids(point: Point, vocab: int, length: int | None = None) -> torch.Tensor:
    g = torch.Generator(device="cpu").manual_seed(point.seed)
    ids = torch.randint(0, vocab, (point.batch, length or point.context), generator=g)
    return ids.to(point.device)


@torch.inference_mode()
def fill_cache_randomly(cache, position: int, seed: int) -> None:
    """Stand in for a prefill of `position` tokens: random K/V and states, pos = position.
    A decode step's cost depends on the position and the shapes, not on the values, and a real
    prefill at 1M tokens would cost minutes per point; the prefill suite times that on its own."""
    g = torch.Generator(device=cache.pos.device).manual_seed(seed)
    for layer in cache.layers:
        for t in vars(layer).values() if layer is not None else ():
            t.normal_(0.0, 0.5, generator=g)
    cache.pos.fill_(position)


@torch.inference_mode()
def canary(
    bench: Bench, ids: torch.Tensor, point: Point, cache=None, full: torch.Tensor | None = None
) -> dict[str, Any]:
    """Chunked prefill vs recurrent step for the last token; raises InvalidOutput past tolerance.
    Each path uses different kernels (chunked scan / SDPA vs step update / cached attention).
    `cache` (at least ids' length) is reused if given: at 1M tokens a second one may not fit.
    `full`: the prefill's output for ids when the caller already has it, computed into `cache`
    (not computed again)."""
    if ids.shape[1] < 2:
        return {"skipped": "needs at least 2 tokens"}
    cache = cache or bench.model.allocate_cache(point.batch, ids.shape[1])
    full = (bench.model.prefill(ids, cache) if full is None else full).float()
    # `cache` now holds the prefill of ids. An attention-only cache rewinds by one position
    # (the step then reads the K/V the prefill wrote): at 1M tokens this saves a Transformer
    # prefill of minutes. A recurrent state cannot rewind: prefill the first L - 1 tokens again.
    rewound = cache.rewind(ids.shape[1] - 1)
    if not rewound:
        bench.model.prefill(ids[:, :-1], cache)
    stepped = bench.model.step(ids[:, -1:], cache).float()
    what = "last-token logits of the chunked prefill and the recurrent step"
    checked = check_close(full, stepped, point.dtype, what, f"L={point.context}", bench.model)
    return {**checked, "rewound": rewound}


def check_close(out, ref, dtype: str, what: str, where: str, model) -> dict[str, Any]:
    """A canary's verdict: `out` against `ref` by relative norm, within the dtype's tolerance;
    raises InvalidOutput (naming `what`, `where` and the model's kernels) past it."""
    err = ((out.float() - ref.float()).norm() / ref.float().norm().clamp_min(1e-30)).item()
    tol = CANARY_TOLERANCE[dtype]
    if not err <= tol:  # NaN fails too
        raise InvalidOutput(
            f"canary: {what} differ by {err:.3g} (relative) > {tol:g} at {where}: "
            f"{model.kernel_backends()}"
        )
    return {"rel_err": err, "tolerance": tol, "passed": True}


def device_name(device: str) -> str:
    return torch.cuda.get_device_name(0) if device == "cuda" else "cpu"


def achieved(value_per_s: float, peak: float | None) -> float | None:
    return value_per_s / peak if peak else None
