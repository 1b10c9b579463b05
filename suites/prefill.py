"""Time to first token: a prompt of L tokens at batch B through `model.prefill` (which fills the
static decode cache, as serving does), timed end to end with host overhead included; cold start
kept apart; prefill tokens/s, achieved TFLOP/s and MFU from the cost model's FLOPs; peak memory
beside the cost model's prediction; energy per prompt token; and the long-context canary.

    make bench ARGS="suite=standard 'models=[transformer,mamba2]' 'sweep.context=[4k,64k]'"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.point import Point
from suites import modelbench as mb

USES_MODELS = True


@dataclass
class PrefillConfig:
    canary: bool = True
    context: list[Any] | None = None  # null: the sweep's lengths


CONFIG = PrefillConfig


def expand(ctx) -> list[Point]:
    cfg: PrefillConfig = ctx.cfg.suite.prefill
    own = mb.lengths(cfg.context, "suite.prefill.context")
    return mb.model_points(ctx, "prefill", {"canary": cfg.canary}, contexts=own)


def preflight(point: Point, ctx) -> str | None:
    return mb.memory_preflight(point, ctx, "prefill_cache")  # prefill fills a decode cache


def run(point: Point) -> dict[str, Any]:
    import torch

    from harness.energy import EnergyMeter
    from harness.memory import PeakMemory
    from harness.peaks import peak
    from harness.timing import TimingConfig, cold_call, time_fn

    bench = mb.build(point)
    ids = mb.random_ids(point, bench.model.cfg.vocab_size)
    cache = bench.model.allocate_cache(point.batch, point.context)
    timing = TimingConfig.from_pairs(point.timing)
    timing.queue_ahead = False  # time to first token includes the host's launch overhead
    timing.flush_l2 = False  # a prompt's working set dwarfs L2

    def ttft():
        with torch.inference_mode():
            return bench.model.prefill(ids, cache)

    with PeakMemory(point.device) as mem:
        first, cold_ms = cold_call(ttft, point.device)  # JIT, autotune, cuDNN plans
    # The canary compares the first call's output with a step-wise recomputation (modelbench's
    # canary: no second prefill of L tokens; none at all for an attention-only cache).
    canary = mb.canary(bench, ids, point, cache, first) if point.param("canary") else None
    del first
    with EnergyMeter(point.device) as energy:
        samples = time_fn(ttft, timing, point.device, cold_ms=cold_ms)
    summary = samples.summary()
    seconds = summary["median"] / 1e3
    tokens = point.batch * point.context
    flops = bench.cost.prefill_flops(point.batch, point.context)
    peak_flops, _, peak_note = peak(mb.device_name(point.device))
    return {
        "metrics": {
            "time_ms": summary["median"],
            "time": summary,
            "tokens_per_s": tokens / seconds,
            "tflops": flops / seconds / 1e12,
            "mfu": mb.achieved(flops / seconds, peak_flops),
            "peak_note": peak_note,
            "flops": flops,
            "memory": mem.result(),
            "predicted_memory": bench.cost.memory(
                point.batch, point.context, point.dtype, "prefill_cache"
            ),
            "energy": energy.result(tokens * (1 + samples.warmup_calls + len(samples.samples_ms))),
            "energy_null_reason": energy.null_reason or None,
            "canary": canary,
            "params": bench.model.num_params(),
            "stopped_by": samples.stopped_by,
        },
        "samples": {"time_ms": samples.samples_ms},
        "cold": {"time_ms": samples.cold_ms, "warmup_calls": samples.warmup_calls},
        "backends_ran": bench.model.kernel_backends(),
    }
