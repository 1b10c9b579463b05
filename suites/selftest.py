"""Self-test of the harness's isolation: each point acts out one behaviour (a real timed
computation, an OOM, a hang, a hard exit, a signal, an exception, a wrong output, a CUDA-style
error) so that a user can check, on their own machine, that every fault becomes a record and
the sweep goes on:

    make bench ARGS="suite=selftest"
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field

import torch

from harness.errors import InvalidOutput
from harness.point import Point, freeze
from harness.timing import TimingConfig, time_fn

BEHAVIOURS = (
    "ok",
    "oom",
    "oom_above",
    "hang",
    "exit",
    "signal",
    "raise",
    "invalid",
    "cuda_error",
    "slow",
)


@dataclass
class SelftestConfig:
    behaviours: list[str] = field(default_factory=lambda: list(BEHAVIOURS))
    oom_above: int = 4096  # `oom_above` runs out of memory past this many tokens
    slow_s: float = 1.0  # how long a `slow` point takes


CONFIG = SelftestConfig


def expand(ctx) -> list[Point]:
    cfg = ctx.cfg.suite.selftest
    for b in cfg.behaviours:
        if b not in BEHAVIOURS:
            from harness.config import ConfigError

            raise ConfigError(
                f"suite.selftest.behaviours: unknown value {b!r}; "
                f"valid choices: {', '.join(BEHAVIOURS)}"
            )
    return [
        Point(
            suite="selftest",
            model=b,
            size="",
            context=L,
            batch=B,
            dtype="float32",
            device="cpu",
            seed=ctx.seed,
            params=freeze({"oom_above": cfg.oom_above, "slow_s": cfg.slow_s}),
            timing=ctx.timing,
        )
        for b in cfg.behaviours
        for B in ctx.batches
        for L in ctx.contexts
    ]


def preflight(point: Point, ctx) -> str | None:
    return None


def run(point: Point) -> dict:
    b = point.model
    if b == "oom" or (b == "oom_above" and point.context > point.param("oom_above")):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 TiB (planted)")
    if b == "hang":
        time.sleep(10**6)
    if b == "exit":
        os._exit(3)
    if b == "signal":
        os.kill(os.getpid(), signal.SIGSEGV)
    if b == "raise":
        raise ValueError("planted exception")
    if b == "cuda_error":
        raise RuntimeError("CUDA error: an illegal memory access was encountered (planted)")
    if b == "slow":
        time.sleep(point.param("slow_s"))
    n = max(8, min(point.context, 256))
    a = torch.randn(point.batch, n, n)
    out = a @ a
    if b == "invalid":
        ref = out + 1.0
        err = ((out - ref).norm() / ref.norm()).item()
        raise InvalidOutput(f"relative error {err:.2e} > 1e-3 (planted)")
    samples = time_fn(lambda: a @ a, TimingConfig.from_pairs(point.timing), "cpu")
    summary = samples.summary()
    return {
        "metrics": {"time_ms": summary["median"], "time": summary},
        "samples": {"time_ms": samples.samples_ms},
        "cold": {"time_ms": samples.cold_ms},
    }
