"""A quality-suite point on the CPU torch backends, for the suites' own tests."""

from __future__ import annotations

from typing import Any

from harness.point import Point, freeze

CPU_BACKENDS = freeze({"attention": "math", "ssm": "torch", "conv": "torch"})


def cpu_point(suite: str, model: str, context: int, batch: int, params: dict[str, Any]) -> Point:
    return Point(
        suite=suite,
        model=model,
        size="1.3b",
        context=context,
        batch=batch,
        dtype="float32",
        device="cpu",
        backends=CPU_BACKENDS,
        params=freeze(params),
    )
