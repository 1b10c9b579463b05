"""Peak memory of a prefill and of decode at (B, L), each measured once in its own region, beside
the cost model's prediction by component (weights, KV cache, SSM/conv state, activations).
Also the probe the frontier suite bisects with (one prefill or one decode phase, no timing).

    make bench ARGS="suite=standard 'suite.measure=[memory]'"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.point import Point
from suites import modelbench as mb

USES_MODELS = True
PHASES = ("prefill", "decode")


@dataclass
class MemoryConfig:
    phases: list[str] = field(default_factory=lambda: list(PHASES))
    decode_steps: int = 4
    context: list[Any] | None = None


CONFIG = MemoryConfig


def expand(ctx) -> list[Point]:
    from harness.config import check_choice

    cfg: MemoryConfig = ctx.cfg.suite.memory
    for phase in cfg.phases:
        check_choice("suite.memory.phases", phase, PHASES)
    params = {"phases": list(cfg.phases), "decode_steps": cfg.decode_steps}
    return mb.model_points(
        ctx, "memory", params, contexts=mb.lengths(cfg.context, "suite.memory.context")
    )


def preflight(point: Point, ctx) -> str | None:
    return mb.memory_preflight(
        point, ctx, "prefill_cache" if "prefill" in point.param("phases") else "decode"
    )


def run(point: Point) -> dict[str, Any]:
    import torch

    from harness import nvml
    from harness.memory import PeakMemory

    bench = mb.build(point)
    weights = sum(p.numel() * p.element_size() for p in bench.model.parameters())
    out: dict[str, Any] = {"weights_bytes": weights, "predicted": {}}
    phases = point.param("phases")
    if "prefill" in phases:
        ids = mb.random_ids(point, bench.model.cfg.vocab_size)
        with PeakMemory(point.device) as mem, torch.inference_mode():
            cache = bench.model.allocate_cache(point.batch, point.context)
            bench.model.prefill(ids, cache)
        out["prefill_memory"] = mem.result()
        out["predicted"]["prefill"] = bench.cost.memory(
            point.batch, point.context, point.dtype, "prefill_cache"
        )
        del cache, ids
    if "decode" in phases:
        steps = point.param("decode_steps")
        ids = mb.random_ids(point, bench.model.cfg.vocab_size, length=1)
        with PeakMemory(point.device) as mem, torch.inference_mode():
            cache = bench.model.allocate_cache(point.batch, point.context + steps)
            mb.fill_cache_randomly(cache, point.context, point.seed)
            for _ in range(steps):
                bench.model.step(ids, cache)
        out["decode_memory"] = mem.result()
        out["predicted"]["decode"] = bench.cost.memory(
            point.batch, point.context, point.dtype, "decode"
        )
        out["cache_bytes"] = cache.nbytes()
    out["device_used_bytes"] = nvml.used_bytes() if point.device == "cuda" else None
    out["device_memory_bytes"] = (
        torch.cuda.get_device_properties(0).total_memory if point.device == "cuda" else None
    )
    return {"metrics": out, "backends_ran": bench.model.kernel_backends()}
