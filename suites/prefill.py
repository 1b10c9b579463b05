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
COLD_PROMPT = 8192  # tokens; see PrefillConfig.cold_prompt


@dataclass
class PrefillConfig:
    canary: bool = True
    context: list[Any] | None = None  # null: the sweep's lengths
    # A prompt whose one call the cost model puts past the timing cap (timing.max_time_s: it gets
    # one timed call anyway) takes its cold start (JIT, autotune, cuDNN plans) on a prompt of
    # this many tokens, and one layer of each kind runs at L off the clock (Model.pretune: what
    # is tuned or planned per length): one forward of L for the sample instead of two, plus a
    # layer's worth (the Transformer's 1M prefill is 214 s a forward on an H200). null: every
    # cold start at L. Decided in the worker, recorded as the record's cold.prompt_tokens; the
    # point carries the setting only when it is not the default, so a change of the cost model
    # never changes a point's identity.
    cold_prompt: int | None = COLD_PROMPT


CONFIG = PrefillConfig


def expand(ctx) -> list[Point]:
    cfg: PrefillConfig = ctx.cfg.suite.prefill
    own = mb.lengths(cfg.context, "suite.prefill.context")
    if cfg.cold_prompt is not None and (
        not isinstance(cfg.cold_prompt, int) or cfg.cold_prompt < 16
    ):
        from harness.config import ConfigError

        raise ConfigError(
            f"suite.prefill.cold_prompt: {cfg.cold_prompt!r}; give a token count >= 16, or null "
            "to take every cold start at the prompt's own length"
        )
    params = {"canary": cfg.canary}
    if cfg.cold_prompt != COLD_PROMPT:  # the default is not named: earlier records stay valid
        params["cold_prompt"] = cfg.cold_prompt
    return mb.model_points(ctx, "prefill", params, contexts=own)


def cold_prompt_for(point: Point, one_call_s: float | None = None) -> int | None:
    """The short prompt's length where the point's one call is predicted past the timing cap
    (see PrefillConfig.cold_prompt), else None: the cold start runs at L. `one_call_s`: that
    prediction, when the caller has it (harness.pool.one_prefill_seconds)."""
    from harness.pool import one_prefill_seconds, point_timing

    n = point.param("cold_prompt", COLD_PROMPT)
    if not n or point.context <= n:
        return None
    if one_call_s is None:
        one_call_s = one_prefill_seconds(point)
    if one_call_s <= point_timing(point).max_time_s:
        return None
    # Triton specialises integer arguments on divisibility by 16: the short prompt keeps the
    # long one's remainder, so the timed call reuses more of what the cold start compiled
    return n - n % 16 + point.context % 16


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

    from harness.pool import one_prefill_seconds

    cold_prompt = cold_prompt_for(point, one_prefill_seconds(point, bench.cost))

    def short_prompt():
        with torch.inference_mode():
            return bench.model.prefill(ids[:, :cold_prompt], cache)

    with PeakMemory(point.device) as mem:
        if cold_prompt:  # see PrefillConfig.cold_prompt
            first, samples, energy, pretune_ms = one_timed_call(
                bench.model, cache, short_prompt, ttft, point
            )
        else:
            first, cold_ms = cold_call(ttft, point.device)  # JIT, autotune, cuDNN plans
    # The canary compares the first call's output with a step-wise recomputation (modelbench's
    # canary: no second prefill of L tokens; none at all for an attention-only cache).
    canary = mb.canary(bench, ids, point, cache, first) if point.param("canary") else None
    del first
    if not cold_prompt:
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
            # the calls inside the energy region: warmup and timed ones (the cold call is not)
            "energy": energy.result(tokens * (samples.warmup_calls + len(samples.samples_ms))),
            "energy_null_reason": energy.null_reason or None,
            "canary": canary,
            "params": bench.model.num_params(),
            "stopped_by": samples.stopped_by,
        },
        "samples": {"time_ms": samples.samples_ms},
        "cold": {
            "time_ms": samples.cold_ms,
            "warmup_calls": samples.warmup_calls,
            "prompt_tokens": cold_prompt or point.context,  # the cold start's prompt
            # cold_prompt's way: the layer-of-each-kind warm-up at L (Model.pretune), apart
            **({"pretune_ms": pretune_ms} if cold_prompt else {}),
        },
        "backends_ran": bench.model.kernel_backends(),
    }


def one_timed_call(model, cache, short_prompt, call, point: Point):
    """PrefillConfig.cold_prompt's way: the cold start on the short prompt, the per-length work
    done at L by one layer of each kind (Model.pretune; a model without one, transformers',
    does it in the timed call), then one call of L, timed, inside the energy region.
    -> (its output, Samples, the energy meter, the warm-up's milliseconds or None)."""
    from harness.energy import EnergyMeter
    from harness.timing import Samples, cold_call

    _, cold_ms = cold_call(short_prompt, point.device)
    pretune_ms = None
    if hasattr(model, "pretune"):
        _, pretune_ms = cold_call(
            lambda: model.pretune(point.batch, point.context, cache), point.device
        )
    with EnergyMeter(point.device) as energy:
        first, ms = cold_call(call, point.device)
    samples = Samples(cold_ms=cold_ms, samples_ms=[ms], stopped_by="max_time")
    return first, samples, energy, pretune_ms
