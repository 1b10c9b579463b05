"""Measurement registry: name -> module. Each module provides

- `CONFIG`: the dataclass of its settings, the section `suite.<name>` of the suite config
  (modules are imported when the config schema is built: keep heavy imports inside functions),
- `expand(ctx: harness.plan.PlanContext) -> list[Point]`,
- `preflight(point, ctx) -> str | None` (the reason a point cannot run here, before any work),
- `run(point) -> dict` executed inside an isolated worker: {"metrics", "samples", "cold", ...}.
"""

from __future__ import annotations

import importlib
from types import ModuleType

REGISTRY = {
    "kernels": "suites.kernels",
    "selftest": "suites.selftest",
    "prefill": "suites.prefill",
    "decode": "suites.decode",
    "memory": "suites.memory",
    "throughput": "suites.throughput",
    "frontier": "suites.frontier",
    "mqar": "suites.mqar",
    "niah": "suites.niah",
    "perplexity": "suites.perplexity",
    "lm_eval": "suites.lmeval",
}


def names() -> list[str]:
    return sorted(REGISTRY)


def configs() -> dict[str, type]:
    """name -> the measurement's config dataclass, for harness.config's schema."""
    return {name: get(name).CONFIG for name in names()}


def get(name: str) -> ModuleType:
    if name not in REGISTRY:
        raise ValueError(f"unknown measurement {name!r}; valid: {', '.join(names())}")
    return importlib.import_module(REGISTRY[name])
