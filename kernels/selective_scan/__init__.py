"""Mamba-1 selective scan: Triton forward and backward, and one-step decode update.

`selective_scan` and `selective_scan_step` take the arguments of their references in
`reference.py` (layout [B, T, Dc]); `config` (a `ScanConfig`) fixes the launch parameters for
deterministic benchmarks, otherwise they are autotuned on CUDA.
"""

from __future__ import annotations

import torch

from kernels.selective_scan.autograd import SelectiveScanFn
from kernels.selective_scan.step import StepConfig, selective_scan_step
from kernels.selective_scan.triton import DEFAULT_CONFIG, ScanConfig, selective_scan_fwd

__all__ = [
    "DEFAULT_CONFIG",
    "ScanConfig",
    "StepConfig",
    "selective_scan",
    "selective_scan_step",
]


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: torch.Tensor | None = None,
    config: ScanConfig | None = None,
):
    """Selective scan; differentiable in every tensor argument.

    u, delta, z: [B, T, Dc]; A: [Dc, N]; B, C: [B, T, N] or [B, T, G, N] (channel d uses group
    d // (Dc / G)); D, delta_bias: [Dc]; initial_state: [B, Dc, N] (zeros when None).
    Returns y [B, T, Dc] in u's dtype; with return_last_state also the state after the last
    token, [B, Dc, N] fp32 (feed it to `selective_scan_step` or to the next segment).
    """
    tensors = (u, delta, A, B, C, D, z, delta_bias, initial_state)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        y, last = SelectiveScanFn.apply(*tensors, bool(delta_softplus), config)
    else:
        y, last = selective_scan_fwd(
            u,
            delta,
            A,
            B,
            C,
            D,
            z,
            delta_bias,
            delta_softplus,
            return_last_state,
            initial_state,
            config,
        )
    return (y, last) if return_last_state else y
