"""Mixer-level microbenchmarks over the context sweep: causal attention on each SDPA backend
(and flash-attn), Mamba-2's SSD scan, Mamba-1's selective scan and the causal conv1d, each on
every backend asked for. Default shapes are PEERS.md's so the numbers sit beside that table.

A point whose output disagrees with the reference is `invalid_output`: no speed is reported.

    make bench ARGS="suite=kernels"
    make bench ARGS="suite=kernels 'sweep.context=[4k,64k]' 'suite.kernels.ops=[ssd]'"
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.point import Point, freeze
from harness.units import format_length, parse_length

OP_KINDS = {"attention": "attention", "ssd": "ssm", "selective_scan": "ssm", "conv1d": "conv"}


def _default_backends() -> dict[str, list[str]]:
    return {
        "attention": ["cudnn", "flash", "efficient", "math", "flash_attn"],
        "ssd": ["triton", "torch", "mamba_ssm", "fla"],
        "selective_scan": ["triton", "torch", "mamba_ssm"],
        "conv1d": ["triton", "torch", "causal_conv1d"],
    }


@dataclass
class KernelsConfig:
    ops: list[str] = field(default_factory=lambda: ["attention", "ssd", "selective_scan", "conv1d"])
    backends: dict[str, list[str]] = field(default_factory=_default_backends)
    # Longest context per op; longer points are skipped with this as the reason. Attention at
    # 1M tokens is ~8 s a call with the fastest backend, so it is capped by default.
    max_context: dict[str, Any] = field(default_factory=lambda: {"attention": "256k"})
    attn_heads: int = 16
    attn_kv_heads: int = 16
    attn_headdim: int = 128
    ssd_heads: int = 64
    ssd_headdim: int = 64
    ssd_d_state: int = 128
    ssd_groups: int = 1
    ssd_chunk: int = 256
    scan_channels: int = 4096
    scan_d_state: int = 16
    conv_channels: int = 4096
    conv_width: int = 4
    check: bool = True  # correctness gate before timing
    check_full_tokens: int = 16384  # up to this length the whole output is checked
    check_window: int = 2048  # beyond it, the first and last windows


CONFIG = KernelsConfig


def shape_params(cfg: KernelsConfig, op: str) -> dict[str, Any]:
    prefix = {"attention": "attn_", "ssd": "ssd_", "selective_scan": "scan_", "conv1d": "conv_"}[op]
    shape = {k: v for k, v in vars(cfg).items() if k.startswith(prefix)}
    checks = {k: getattr(cfg, k) for k in ("check", "check_full_tokens", "check_window")}
    return {**shape, **checks}


def expand(ctx) -> list[Point]:
    from harness.config import ConfigError, check_choice

    cfg: KernelsConfig = ctx.cfg.suite.kernels
    points = []
    for op in cfg.ops:
        check_choice("suite.kernels.ops", op, list(OP_KINDS))
        backends = cfg.backends.get(op)
        if not backends:
            raise ConfigError(f"suite.kernels.backends.{op}: no backends listed for op {op!r}")
        for backend in backends:
            _check_backend_name(op, backend)
            for B in ctx.batches:
                for L in ctx.contexts:
                    points.append(
                        Point(
                            suite="kernels",
                            model=op,
                            size="",
                            context=L,
                            batch=B,
                            dtype=ctx.dtype,
                            device=ctx.hw.device,
                            backends=((OP_KINDS[op], backend),),
                            seed=ctx.seed,
                            params=freeze(shape_params(cfg, op)),
                            timing=ctx.timing,
                        )
                    )
    return points


def _check_backend_name(op: str, backend: str) -> None:
    import kernels
    from harness.config import check_choice
    from kernels import attention

    valid = attention.BACKENDS if op == "attention" else kernels.backends(op)
    check_choice(f"suite.kernels.backends.{op}", backend, list(valid))


def preflight(point: Point, ctx) -> str | None:
    from harness.backends import unavailable_reason

    kind, backend = point.backends[0]
    reason = unavailable_reason(kind, backend, point.device)
    if reason is None and kind != "attention":
        import kernels

        reason = kernels.unavailable_reason(point.model, backend)
        if reason is None and backend == "triton" and point.device != "cuda":
            reason = "Triton kernels need a CUDA GPU"
    if reason:
        return reason
    cap = ctx.cfg.suite.kernels.max_context.get(point.model)
    if cap is not None and point.context > parse_length(
        cap, f"suite.kernels.max_context.{point.model}"
    ):
        cap_text = format_length(parse_length(cap))
        return f"longer than suite.kernels.max_context.{point.model}={cap_text}"
    need = io_bytes(point)
    limit = ctx.hw.memory_bytes * ctx.cfg.hardware.memory_fraction
    if need > limit:
        return f"inputs and output need {need / 1e9:.1f} GB > {limit / 1e9:.1f} GB usable"
    return None


def io_bytes(point: Point) -> float:
    """Inputs + output of one call, from the shapes (no allocation)."""
    p, B, T = dict(point.params), point.batch, point.context
    elt = 4 if point.dtype == "float32" else 2
    if point.model == "attention":
        return elt * B * T * p["attn_headdim"] * (2 * p["attn_heads"] + 2 * p["attn_kv_heads"])
    if point.model == "ssd":
        per_token = 2 * p["ssd_heads"] * p["ssd_headdim"] + p["ssd_heads"]
        return elt * B * T * (per_token + 2 * p["ssd_groups"] * p["ssd_d_state"])
    if point.model == "selective_scan":
        return elt * B * T * (4 * p["scan_channels"] + 2 * p["scan_d_state"])
    return elt * B * T * 2 * p["conv_channels"]


def run(point: Point) -> dict[str, Any]:
    from types import SimpleNamespace

    import torch

    from harness.errors import InvalidOutput
    from harness.memory import PeakMemory
    from harness.timing import TimingConfig, time_fn
    from suites.kernel_ops import OPS, TOLERANCE

    op, (kind, backend) = OPS[point.model], point.backends[0]
    cfg = SimpleNamespace(**dict(point.params))
    dtype = getattr(torch, point.dtype)
    x = op.inputs(cfg, point.batch, point.context, dtype, point.device)
    fn = op.call(backend, x)

    with PeakMemory(point.device) as mem:
        out = fn()
    out = out[0] if isinstance(out, tuple) else out
    err = None
    if cfg.check:
        err = op.check(backend, x, out, cfg)
        if not err <= TOLERANCE[point.dtype]:  # also catches NaN
            raise InvalidOutput(
                f"{point.model}/{backend}: relative error {err:.3g} vs the fp32 reference "
                f"exceeds {TOLERANCE[point.dtype]:g} at L={point.context}"
            )
    del out
    samples = time_fn(fn, TimingConfig.from_pairs(point.timing), point.device)
    summary = samples.summary()
    ms = summary["median"]
    flops, nbytes = op.flops(cfg, point.batch, point.context), op.bytes(x)
    return {
        "metrics": {
            "time_ms": ms,
            "time": summary,
            "tflops": flops / (ms * 1e-3) / 1e12,
            "gbps": nbytes / (ms * 1e-3) / 1e9,
            "flops": flops,
            "bytes": nbytes,
            "rel_err": err,
            "memory": mem.result(),
            "stopped_by": samples.stopped_by,
        },
        "samples": {"time_ms": samples.samples_ms},
        "cold": {"time_ms": samples.cold_ms, "warmup_calls": samples.warmup_calls},
        "backends_ran": {kind: backend},
    }
