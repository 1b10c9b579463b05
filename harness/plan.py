"""Expand suite x models x sweep axes into ordered Points; preflight each before any work.

Order matters: within one group (everything but the context length) points run from short to
long, so that an OOM at length L can skip the longer ones (MEASUREMENT.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import suites
from harness import config as C
from harness.backends import check_names
from harness.backends import resolve as resolve_backends
from harness.env import Hardware
from harness.point import Pairs, Point, freeze

DTYPES = {"bfloat16", "float16", "float32"}
DTYPE_ALIASES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


@dataclass
class PlanContext:
    """Everything a measurement needs to expand and preflight its points."""

    cfg: C.Config
    hw: Hardware
    contexts: list[int]
    batches: list[int]
    models: list[str]
    size: str
    dtype: str
    backends: dict[str, str]
    seed: int
    timing: Pairs = field(default_factory=tuple)


@dataclass(frozen=True)
class Planned:
    point: Point
    skip_reason: str | None = None


def resolve_dtype(value: str, hw: Hardware) -> str:
    if value == "auto":
        return "bfloat16" if hw.device == "cuda" else "float32"
    value = DTYPE_ALIASES.get(value, value)
    return C.check_choice("suite.dtype", value, sorted(DTYPES | {"auto"}))


def check_models(names: list[str], size: str) -> None:
    import models

    if not names:
        raise C.ConfigError("models: empty list; give at least one model preset")
    for name in names:
        C.check_choice("models", name, models.preset_names())
    C.check_choice("size", size, models.size_names())


def context(cfg: C.Config, hw: Hardware, size: str) -> PlanContext:
    """Validate the resolved config against the registries; raise ConfigError naming the field."""
    for name in cfg.suite.measure:
        C.check_choice("suite.measure", name, suites.names())
    for status in cfg.run.retry:
        C.check_choice("run.retry", status, C.STATUSES)
    limit = cfg.run.time_limit_s
    if limit is not None and not limit > 0:
        raise C.ConfigError(f"run.time_limit_s: {limit!r}; give seconds > 0, or null for no limit")
    check_names(cfg.backend)
    uses_models = any(getattr(suites.get(n), "USES_MODELS", False) for n in cfg.suite.measure)
    models = list(cfg.models) if cfg.models is not None else list(cfg.suite.models)
    if uses_models:
        check_models(models, size)
    return PlanContext(
        cfg=cfg,
        hw=hw,
        contexts=C.contexts(cfg),
        batches=C.batches(cfg),
        models=models,
        size=size,
        dtype=resolve_dtype(cfg.suite.dtype, hw),
        # Backends matter only to model measurements; kernel points carry their own.
        backends=resolve_backends(cfg.backend, hw) if uses_models else {},
        seed=cfg.run.seed,
        timing=freeze(vars(cfg.suite.timing)),
    )


def plan(ctx: PlanContext) -> list[Planned]:
    out: list[Planned] = []
    seen: set[str] = set()
    for name in ctx.cfg.suite.measure:
        module = suites.get(name)
        points = module.expand(ctx)
        first_seen = {}
        for p in points:
            first_seen.setdefault(p.group(), len(first_seen))
        points.sort(key=lambda p: (first_seen[p.group()], p.context))
        for p in points:
            if p.hash in seen:
                continue
            seen.add(p.hash)
            out.append(Planned(p, module.preflight(p, ctx)))
    return out
