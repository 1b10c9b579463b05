"""Typed configuration: the dataclasses behind conf/*.yaml, registered once with Hydra.

Hydra composes YAML over these schemas (unknown keys and wrong types fail at compose time, naming
the key); `load(cfg)` converts the result to plain dataclasses once, at the boundary, and runs the
checks that need more than types (valid names, human units). Code below the CLI never sees a
DictConfig.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

import suites
from harness.timing import TimingConfig
from harness.units import UnitError, parse_count, parse_length

STATUSES = ("ok", "oom", "timeout", "crashed", "cuda_error", "invalid_output", "skipped")


class ConfigError(ValueError):
    """Invalid configuration; the message names the field and the valid choices."""


@dataclass
class SuiteBase:
    name: str = MISSING
    description: str = ""
    measure: list[str] = field(default_factory=list)  # measurement modules in suites/
    models: list[str] = field(default_factory=list)  # default model presets (model suites)
    context: list[Any] = field(default_factory=lambda: ["1k"])
    batch: list[Any] = field(default_factory=lambda: [1])
    dtype: str = "auto"  # auto: bf16 on GPU, fp32 on CPU
    timeout_s: float = 600.0  # wall-clock limit of one point's worker
    # Applied to every model a model measurement builds (tiny shapes for smoke runs and tests)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    timing: TimingConfig = field(default_factory=TimingConfig)
    # suite=auto only: which suite to run with and without a CUDA GPU
    gpu: str = ""
    cpu: str = ""


# One section per measurement, typed by the dataclass its module exports as CONFIG:
# `suite.kernels.ops`, `suite.prefill...`. Adding a measurement to suites.REGISTRY adds its section.
SuiteConfig = make_dataclass(
    "SuiteConfig",
    [(name, cls, field(default_factory=cls)) for name, cls in suites.configs().items()],
    bases=(SuiteBase,),
)
# Pickled configs (submitit ships them to cluster jobs) find the class here.
SuiteConfig.__module__ = __name__


@dataclass
class BackendConfig:
    attention: str = "auto"  # cudnn | flash | efficient | math | flash_attn | auto
    ssm: str = "auto"  # triton | torch | mamba_ssm | fla | auto
    conv: str = "auto"  # triton | torch | causal_conv1d | auto


@dataclass
class HardwareConfig:
    device: str = "auto"  # auto | cuda | cpu
    gpus: Any = "all"  # all | [0, 2]
    memory_fraction: float = 0.95  # preflight skips points predicted above this share


@dataclass
class SweepConfig:
    context: list[Any] | None = None  # null: the suite's own default
    batch: list[Any] | None = None


@dataclass
class RunConfig:
    id: str | None = None  # default: <suite>-<hash of the resolved config>
    results_dir: str = "results"
    reports_dir: str = "reports"
    retry: list[str] = field(default_factory=list)  # statuses to measure again on resume
    report: bool = True
    seed: int = 0
    progress: str = "auto"  # auto | rich | plain
    claims: list[str] = field(default_factory=list)  # extra claims files for the report's ledger
    dry_run: bool = False  # print the plan (points, skips, what is already recorded); run nothing
    # Seconds from the start after which no point is started that the cost model predicts would
    # still be running (a SLURM job's wall time, a lent GPU's hour): such points stay unmeasured
    # and the next run with the same arguments takes them. null: no limit.
    time_limit_s: float | None = None


@dataclass
class Config:
    suite: SuiteConfig = MISSING
    size: Any = None
    backend: BackendConfig = field(default_factory=BackendConfig)
    hardware: HardwareConfig = field(default_factory=HardwareConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    models: list[str] | None = None  # null: the suite's own default
    run: RunConfig = field(default_factory=RunConfig)


def register() -> None:
    """Register the schemas; conf/*.yaml extend them through their defaults lists."""
    cs = ConfigStore.instance()
    cs.store(name="config_schema", node=Config)
    cs.store(group="suite", name="suite_schema", node=SuiteConfig)
    cs.store(group="backend", name="backend_schema", node=BackendConfig)
    cs.store(group="hardware", name="hardware_schema", node=HardwareConfig)


def to_object(cfg: DictConfig) -> Config:
    """DictConfig from Hydra -> plain, validated dataclasses."""
    try:
        obj = OmegaConf.to_object(cfg)
    except Exception as exc:  # omegaconf's errors name the key; keep the message
        raise ConfigError(str(exc)) from exc
    return obj  # type: ignore[return-value]


def check_choice(field_name: str, value: str, valid: list[str] | tuple[str, ...]) -> str:
    if value not in valid:
        raise ConfigError(
            f"{field_name}: unknown value {value!r}; valid choices: {', '.join(sorted(valid))}"
        )
    return value


def contexts(cfg: Config) -> list[int]:
    raw = cfg.sweep.context if cfg.sweep.context is not None else cfg.suite.context
    field_name = "sweep.context" if cfg.sweep.context is not None else "suite.context"
    try:
        values = [parse_length(v, field_name) for v in _as_list(raw, field_name)]
    except UnitError as exc:
        raise ConfigError(str(exc)) from exc
    return sorted(set(values))


def batches(cfg: Config) -> list[int]:
    raw = cfg.sweep.batch if cfg.sweep.batch is not None else cfg.suite.batch
    field_name = "sweep.batch" if cfg.sweep.batch is not None else "suite.batch"
    try:
        values = [parse_count(v, field_name) for v in _as_list(raw, field_name)]
    except UnitError as exc:
        raise ConfigError(str(exc)) from exc
    return sorted(set(values))


def _as_list(raw: Any, field_name: str) -> list[Any]:
    values = list(raw) if isinstance(raw, list | tuple) else [raw]
    if not values:
        raise ConfigError(f"{field_name}: empty list; give at least one value")
    return values
