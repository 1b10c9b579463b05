"""Tuning of the SSD kernels: config lists, their pruning predicates, and the fixed-config mode.

With AUTOTUNE on (the default) the two heavy kernels (`_chunk_state`, `_chunk_scan`) are autotuned
over short config lists pruned by `prune_state_configs` / `prune_scan_configs`.
`set_autotune(False)` runs every kernel at its FIXED_* config: deterministic benchmarks, no tuning
pass at cold start. Triton's CPU interpreter always uses the fixed configs, clipped to the problem.
"""

from __future__ import annotations

import os

import triton

from kernels.ssd import jit

AUTOTUNE = True
# Store C.B^T in the inputs' 16-bit dtype: the scan kernel reads it once per head, the largest
# part of its traffic (NOTES.md). Off: fp32, as mamba-ssm does. fp32 inputs always keep fp32.
CB_16BIT = True

FIXED_CB = dict(BLOCK_M=64, BLOCK_N=64, BLOCK_K=64, num_warps=4, num_stages=2)
# The autotuner's picks on an H100 at H=64, P=64, N=128, chunk 256, bf16 (NOTES.md).
FIXED_STATE = dict(BLOCK_P=32, BLOCK_N=128, BLOCK_L=64, num_warps=4, num_stages=3)
FIXED_SCAN = dict(BLOCK_M=64, BLOCK_P=64, BLOCK_K=32, BLOCK_N=64, num_warps=4, num_stages=3)


def set_autotune(enabled: bool) -> bool:
    """Switch between autotuned and fixed configs for later calls; returns the previous setting."""
    global AUTOTUNE
    previous, AUTOTUNE = AUTOTUNE, bool(enabled)
    return previous


def use_fixed() -> bool:
    """True when launches take the FIXED_* configs (set_autotune(False), or the CPU interpreter)."""
    return not AUTOTUNE or os.environ.get("TRITON_INTERPRET") == "1"


def clip(kw: dict, limits: dict) -> dict:
    """Shrink each BLOCK_* to the smallest power of two >= 16 covering its extent in `limits`."""
    out = dict(kw)
    for key, extent in limits.items():
        out[key] = min(out[key], max(16, triton.next_power_of_2(extent)))
    return out


def state_limits(args: dict) -> dict:
    return {"BLOCK_P": args["P"], "BLOCK_N": args["N"], "BLOCK_L": args["L"]}


def scan_limits(args: dict) -> dict:
    return {"BLOCK_M": args["L"], "BLOCK_P": args["P"], "BLOCK_K": args["L"], "BLOCK_N": args["N"]}


def _dedupe(configs, limits: dict, valid) -> list:
    seen, kept = set(), []
    for cfg in configs:
        kw = clip(cfg.kwargs, limits)
        sig = (tuple(sorted(kw.items())), cfg.num_warps, cfg.num_stages)
        if valid(kw) and sig not in seen:
            seen.add(sig)
            kept.append(triton.Config(kw, num_warps=cfg.num_warps, num_stages=cfg.num_stages))
    return kept


def prune_state_configs(configs, named_args, **kwargs):
    """Clip block sizes to (P, N, L), keep BLOCK_L dividing L, drop duplicates."""
    args = {**named_args, **kwargs}
    return _dedupe(configs, state_limits(args), lambda kw: kw["BLOCK_L"] <= args["L"])


def prune_scan_configs(configs, named_args, **kwargs):
    """Clip block sizes to (L, P, N), keep BLOCK_K <= BLOCK_M (the causal loop's bound), dedupe."""
    args = {**named_args, **kwargs}
    return _dedupe(configs, scan_limits(args), lambda kw: kw["BLOCK_K"] <= kw["BLOCK_M"])


def _cfg(num_warps, num_stages, **kw):
    return triton.Config(kw, num_warps=num_warps, num_stages=num_stages)


STATE_CONFIGS = [
    _cfg(4, 3, BLOCK_P=32, BLOCK_N=128, BLOCK_L=64),
    _cfg(8, 3, BLOCK_P=32, BLOCK_N=128, BLOCK_L=64),
    _cfg(4, 3, BLOCK_P=16, BLOCK_N=128, BLOCK_L=64),
    _cfg(4, 4, BLOCK_P=32, BLOCK_N=128, BLOCK_L=32),
    _cfg(8, 2, BLOCK_P=64, BLOCK_N=128, BLOCK_L=64),
    _cfg(4, 2, BLOCK_P=64, BLOCK_N=64, BLOCK_L=64),
]
SCAN_CONFIGS = [
    _cfg(8, 3, BLOCK_M=128, BLOCK_P=64, BLOCK_K=32, BLOCK_N=64),
    _cfg(8, 3, BLOCK_M=128, BLOCK_P=64, BLOCK_K=64, BLOCK_N=64),
    _cfg(8, 4, BLOCK_M=128, BLOCK_P=64, BLOCK_K=32, BLOCK_N=128),
    _cfg(4, 3, BLOCK_M=64, BLOCK_P=64, BLOCK_K=32, BLOCK_N=64),
    _cfg(4, 3, BLOCK_M=64, BLOCK_P=64, BLOCK_K=64, BLOCK_N=128),
    _cfg(8, 3, BLOCK_M=256, BLOCK_P=32, BLOCK_K=32, BLOCK_N=64),
]

chunk_state_tuned = triton.autotune(
    STATE_CONFIGS,
    key=["BATCH", "H", "P", "N", "L"],
    prune_configs_by={"early_config_prune": prune_state_configs},
)(jit._chunk_state)
chunk_scan_tuned = triton.autotune(
    SCAN_CONFIGS,
    key=["H", "G", "P", "N", "L"],
    prune_configs_by={"early_config_prune": prune_scan_configs},
)(jit._chunk_scan)
