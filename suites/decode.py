"""Decode: per-token latency of generating G tokens after a context of L, at batch B, on the
static cache with the whole step captured in one CUDA graph (`decode.cuda_graphs=false` for the
eager comparison). Every token is timed with CUDA events around its replay; generations repeat
from position L until the sample count and duration rules are met. p50/p90/p99 with the count,
tokens/s, achieved GB/s and MBU from the cost model's bytes per step, energy per token. The
canary holds the timed step against the torch reference step at the same position.

    make bench ARGS="suite=standard 'suite.measure=[decode]' suite.decode.cuda_graphs=false"
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from harness.point import Point
from suites import modelbench as mb

USES_MODELS = True


@dataclass
class DecodeConfig:
    gen_tokens: int = 128  # tokens per generation; generations repeat from position L
    cuda_graphs: bool = True
    min_samples: int = 512  # enough per-token samples for a p99
    context: list[Any] | None = None
    # torch.compile the step before capturing it: fuses the step's many small kernels (norms,
    # RoPE, residual adds), which bound batch-1 decode (models/README.md). The compile time goes
    # into the cold start; the record's `compiled` says which ran.
    compile: bool = False
    # On a GPU, the step's residual adds, norms, Mamba-2's gated norm and RoPE with the KV
    # write as a few Triton kernels (ModelConfig.fused_decode): 20-44% less time a token at
    # 1K-4K on the H200, every model's canary passing at 1K, 4K and 1M. false: the plain step.
    fused: bool = True
    # On a GPU, the step's one-row products on the Triton GEMV and a SwiGLU MLP's gate and up as
    # one kernel (ModelConfig.decode_gemv=triton, kernels/gemv). Off until measured beside
    # cuBLAS (scripts/gpu_session.sh step `gemv`); named in the point when on.
    gemv: bool = False


CONFIG = DecodeConfig


def expand(ctx) -> list[Point]:
    cfg: DecodeConfig = ctx.cfg.suite.decode
    params = {
        "gen_tokens": cfg.gen_tokens,
        "cuda_graphs": cfg.cuda_graphs,
        "min_samples": cfg.min_samples,
    }
    if cfg.compile:  # only when asked: points measured before the option keep their identity
        params["compile"] = True
    # a compiled step leaves both to inductor (the torch ops and F.linear)
    params |= mb.step_param(ctx, "fused_decode", cfg.fused and not cfg.compile)
    params |= mb.step_param(ctx, "decode_gemv", cfg.gemv and not cfg.compile)
    return mb.model_points(
        ctx, "decode", params, contexts=mb.lengths(cfg.context, "suite.decode.context")
    )


def preflight(point: Point, ctx) -> str | None:
    if point.param("cuda_graphs") and point.device != "cuda":
        return "CUDA graphs need a CUDA GPU: set suite.decode.cuda_graphs=false on CPU"
    return mb.memory_preflight(point, ctx, "decode")


def ran_backends(model, compiled: bool, batch: int = 1) -> dict:
    """The model's kernels; a compiled step runs the torch ops of fused_decode and F.linear (for
    inductor to fuse), so those kernels are not named then; the GEMV takes one row only."""
    out = dict(model.kernel_backends())
    for kind in ("decode_fused", "decode_gemv"):
        if compiled and kind in out:
            out[kind] = "off: compiled step"
    if batch > 1 and "decode_gemv" in out:
        out["decode_gemv"] = "off: batch > 1"
    return out


class Stepper:
    """One decode step as a callable: a CUDA-graph replay, or the eager call."""

    def __init__(self, model, cache, ids, graphs: bool, compile: bool = False):
        import torch

        self.cache, self.ids = cache, ids
        self.fn = torch.compile(model.step, dynamic=False) if compile else model.step
        self.graph = None
        if graphs:
            start = cache.pos.clone()
            stream = torch.cuda.Stream()
            stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(stream), torch.inference_mode():
                for _ in range(3):  # warm up off the capture: JIT, autotune, cuBLAS handles
                    self.fn(ids, cache)
            torch.cuda.current_stream().wait_stream(stream)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph), torch.inference_mode():
                self.logits = self.fn(ids, cache)
            cache.pos.copy_(start)

    def __call__(self):
        import torch

        if self.graph is not None:
            self.graph.replay()
            return self.logits
        with torch.inference_mode():
            return self.fn(self.ids, self.cache)


def time_tokens(step: Stepper, cache, start: int, gen: int, timing, min_samples: int, device: str):
    """Per-token latencies (ms): generations of `gen` steps from position `start`."""
    from harness.timing import Samples, _clock, synchronize

    begin, end, read = _clock(device)
    cache.pos.fill_(start)
    synchronize(device)
    a = begin()
    step()
    b = end()
    synchronize(device)
    out = Samples(cold_ms=read(a, b))
    t0 = time.perf_counter()
    while True:
        cache.pos.fill_(start)
        pairs = []
        for _ in range(gen):
            a = begin()
            step()
            pairs.append((a, end()))
        synchronize(device)
        out.samples_ms.extend(read(x, y) for x, y in pairs)
        n, total = len(out.samples_ms), sum(out.samples_ms)
        if n >= max(min_samples, timing.min_reps) and total >= timing.min_time_s * 1e3:
            out.stopped_by = "min_reached"
            break
        if time.perf_counter() - t0 >= timing.max_time_s:
            out.stopped_by = "max_time"
            break
    return out


def canary(model, step: Stepper, cache, start: int, dtype: str, rows: int | None = None):
    """The timed step (graph replay, Triton step kernels, fused_decode) against the torch
    reference step (models/reference_step.py) at position `start`, from the same cache: the
    recurrent states are restored between the two and after, and each step writes the same K/V
    slot. Raises InvalidOutput past the prefill canary's tolerance. One eager step: cheap.
    rows: compare (and restore) the first sequences only, where a copy of every sequence's
    state would not fit (the throughput suite's largest batch); the others are left stepped."""
    import torch

    from models.reference_step import has_fast_step, torch_step_path

    if not has_fast_step(model):
        return {"skipped": "no fast step path: the model steps on torch ops only"}
    live = [t[:rows] for t in cache.states()]
    kept = [t.clone() for t in live]

    def rewind():
        for t, k in zip(live, kept, strict=True):
            t.copy_(k)
        cache.pos.fill_(start)

    rewind()
    fast = step()[:rows].clone()  # the graph's output buffer: the reference step overwrites it
    rewind()
    with torch.inference_mode(), torch_step_path(model):
        ref = model.step(step.ids, cache)[:rows]
    rewind()
    what = "the decode step's logits and the torch reference step's"
    checked = mb.check_close(fast, ref, dtype, what, f"position {start}", model)
    return {**checked, "reference": "torch step"}


def run(point: Point) -> dict[str, Any]:
    from harness.energy import EnergyMeter
    from harness.memory import PeakMemory
    from harness.peaks import peak
    from harness.timing import TimingConfig

    bench = mb.build(point)
    gen = point.param("gen_tokens")
    ids = mb.random_ids(point, bench.model.cfg.vocab_size, length=1)
    graphs = bool(point.param("cuda_graphs"))
    compiled = bool(point.param("compile"))
    with PeakMemory(point.device) as mem:
        cache = bench.model.allocate_cache(point.batch, point.context + gen + 1)
        mb.fill_cache_randomly(cache, point.context, point.seed)
        t0 = time.perf_counter()
        step = Stepper(bench.model, cache, ids, graphs, compiled)
        setup_s = time.perf_counter() - t0  # warmup, compile, graph capture
        step()
    timing = TimingConfig.from_pairs(point.timing)
    with EnergyMeter(point.device) as energy:
        samples = time_tokens(
            step, cache, point.context, gen, timing, point.param("min_samples"), point.device
        )
    # after the timing (its clones stay out of the peak) and before any number is reported
    checked = canary(bench.model, step, cache, point.context, point.dtype)
    summary = samples.summary()
    seconds = summary["median"] / 1e3
    step_bytes = bench.cost.decode_bytes(point.batch, point.context + gen // 2, point.dtype)
    _, peak_bw, peak_note = peak(mb.device_name(point.device))
    return {
        "metrics": {
            "time_ms": summary["median"],
            "time": summary,
            "tokens_per_s": point.batch / seconds,
            "gbps": step_bytes / seconds / 1e9,
            "mbu": mb.achieved(step_bytes / seconds, peak_bw),
            "peak_note": peak_note,
            "bytes_per_step": step_bytes,
            "cuda_graphs": graphs,
            "compiled": compiled,
            "prefill_mode": "synthetic: cache filled with random values, position set to L",
            "memory": mem.result(),
            "predicted_memory": bench.cost.memory(
                point.batch, point.context, point.dtype, "decode"
            ),
            "energy": energy.result(point.batch * (1 + len(samples.samples_ms))),
            "energy_null_reason": energy.null_reason or None,
            "stopped_by": samples.stopped_by,
            "canary": checked,
        },
        "samples": {"time_ms": samples.samples_ms},
        "cold": {"time_ms": samples.cold_ms, "setup_s": setup_s},
        "backends_ran": ran_backends(bench.model, compiled, point.batch),
    }
