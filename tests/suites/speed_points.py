"""Tiny shapes and timing for the speed suites' CPU tests (speed suites, decode canary)."""

from __future__ import annotations

from dataclasses import replace

from harness.point import Point, freeze
from harness.timing import TimingConfig
from tests.suites.cpu_point import CPU_BACKENDS, cpu_point

TINY = {
    "d_model": 64,
    "n_layer": 16,
    "vocab_size": 256,
    "heads": 4,
    "kv_heads": 2,
    "headdim": 16,
    "d_state": 16,
}
TIMING = freeze(
    vars(
        TimingConfig(
            warmup=1, min_reps=3, min_time_s=0.0, max_time_s=2.0, flush_l2=False, queue_ahead=False
        )
    )
)


def _point(
    suite: str, model: str, context: int = 64, batch: int = 1, backends=CPU_BACKENDS, **params
) -> Point:
    point = cpu_point(suite, model, context, batch, {"overrides": TINY, **params})
    return replace(point, backends=backends, timing=TIMING)
