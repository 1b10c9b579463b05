"""Where a batch-1 decode step's time goes (issue 5: MBU at 4K is 25-32%, not 60%).

    python -m models.step_profile --out $OUT [--models transformer,mamba2] [--context 4096]

For each 1.3B model, the decode step at context L (cache filled with random values, as the decode
suite does), plain and fused: the CUDA-graph replay's time a token (what the suite reports), and
the same step's kernels traced by torch.profiler (eager replays of the step, CUPTI kernel
records): device time by kernel, launches a step, the GEMMs' share and their achieved bandwidth
on the weights they read. The replay time minus the kernels' device time is the gaps between
kernels that no kernel speed-up removes. Records go to <out>/step_profile.jsonl.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

GEMM_MARKERS = ("gemm", "gemv", "cublas", "cutlass", "sm90_xmma", "nvjet")
GEN = 32  # tokens a timed generation steps through (the cache holds them past L)


def is_gemm(kernel: str) -> bool:
    k = kernel.lower()
    return any(m in k for m in GEMM_MARKERS)


def per_step(events, steps: int) -> dict:
    """Kernel records (name, device microseconds) of `steps` steps -> one step's summary."""
    by_name: dict[str, list[float]] = defaultdict(list)
    for name, us in events:
        by_name[name].append(us)
    kernels = sorted(
        ({"kernel": k, "us": sum(v) / steps, "calls": len(v) / steps} for k, v in by_name.items()),
        key=lambda r: -r["us"],
    )
    total = sum(r["us"] for r in kernels)
    gemm = sum(r["us"] for r in kernels if is_gemm(r["kernel"]))
    return {
        "kernel_us": total,
        "gemm_us": gemm,
        "launches": sum(r["calls"] for r in kernels),
        "top": kernels[:12],
    }


def gemm_weight_bytes(model) -> int:
    """Bytes of the weights a step's GEMMs read: every nn.Linear's weight, once (a tied lm_head
    is the embedding; an untied input embedding is a row lookup, not a GEMM read)."""
    from torch import nn

    weights = {id(m.weight): m.weight for m in model.modules() if isinstance(m, nn.Linear)}
    return sum(w.numel() * w.element_size() for w in weights.values())


def profile_step(step) -> list[tuple[str, float]]:
    """CUDA kernel records of one eager call of `step`."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    return [
        (e.name, e.device_time)  # microseconds on the device
        for e in prof.events()
        if e.device_type == torch.autograd.DeviceType.CUDA and e.device_time > 0
    ]


def timed_step(name, size, L, fused, device="cuda", backends=None, **overrides):
    """(model, cache, ids, ms): the step's median time a token at context L, timed as the decode
    suite times it (CUDA graph on a GPU), over generations of GEN tokens from L."""
    import torch

    import models
    from harness.timing import TimingConfig
    from suites import modelbench as mb
    from suites.decode import Stepper, time_tokens

    cfg = models.config(name, size, fused_decode=fused, **overrides)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = cfg.build(device, dtype, backends=backends).eval()
    cache = model.allocate_cache(1, L + GEN + 1)
    mb.fill_cache_randomly(cache, L, 0)
    ids = torch.randint(0, cfg.vocab_size, (1, 1), device=device)
    step = Stepper(model, cache, ids, graphs=device == "cuda")
    min_samples = 256 if device == "cuda" else 1
    samples = time_tokens(step, cache, L, GEN, TimingConfig(), min_samples, device)
    return model, cache, ids, samples.summary()["median"]


def measure(name: str, size: str, L: int, fused: bool, gemv: str = "cublas") -> dict:
    from suites.decode import Stepper

    backends = {"attention": "cudnn", "ssm": "triton", "conv": "triton"}
    model, cache, ids, ms = timed_step(name, size, L, fused, backends=backends, decode_gemv=gemv)
    eager = Stepper(model, cache, ids, graphs=False)
    cache.pos.fill_(L)
    eager()  # warm
    steps = 10
    events = []
    for _ in range(steps):  # one position, as the replays
        cache.pos.fill_(L)
        events += profile_step(eager)
    summary = per_step(events, steps)
    weights = gemm_weight_bytes(model)
    step_bytes = model.cost().decode_bytes(1, L, "bfloat16")
    return {
        "model": name,
        "size": size,
        "context": L,
        "fused": fused,
        "gemv": gemv,
        "graph_ms": ms,
        "kernel_ms": summary["kernel_us"] / 1e3,
        "gaps_ms": ms - summary["kernel_us"] / 1e3,
        "gemm_ms": summary["gemm_us"] / 1e3,
        "gemm_weight_gbps": weights / (summary["gemm_us"] * 1e-6) / 1e9,
        "launches": summary["launches"],
        "mbu_bytes": step_bytes,
        "top": summary["top"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="step_profile_out")
    ap.add_argument("--models", default="transformer,mamba2,mamba1,hybrid_1_7,hybrid_30")
    ap.add_argument("--size", default="1.3b")
    ap.add_argument("--context", type=int, default=4096)
    ap.add_argument("--gemv", default="cublas", help="decode_gemv: cublas | triton")
    ap.add_argument("--fused-only", action="store_true", help="skip the plain step")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "step_profile.jsonl", "a") as f:
        for name in args.models.split(","):
            for fused in (True,) if args.fused_only else (False, True):
                rec = measure(name, args.size, args.context, fused, args.gemv)
                f.write(json.dumps(rec) + "\n")
                f.flush()
                print(
                    f"{name:>11} {'fused' if fused else 'plain'} {args.gemv}: "
                    f"{rec['graph_ms']:.3f} ms a "
                    f"token; kernels {rec['kernel_ms']:.3f} (GEMMs {rec['gemm_ms']:.3f}, "
                    f"{rec['gemm_weight_gbps']:.0f} GB/s on the weights), gaps "
                    f"{rec['gaps_ms']:.3f}, {rec['launches']:.0f} launches",
                    flush=True,
                )


if __name__ == "__main__":
    main()
