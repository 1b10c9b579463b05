"""Peer backend: mamba-ssm's CUDA selective scan, adapted to ctxbench's [B, T, ...] layout.

mamba-ssm wants u, delta, z as [B, Dc, T] and B, C as [B, N, T] or [B, G, N, T]; we pass
transposed views (its wrapper makes them contiguous where it needs to, and that copy is part of
what the peer costs in this layout). It has no initial state: passing one is an error, not a
silent zero.
"""

from __future__ import annotations

import torch


def selective_scan_mamba_ssm(
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
):
    """Same arguments and results as `selective_scan_ref` (u, delta, z [B, T, Dc];
    B, C [B, T, N] or [B, T, G, N]); y [B, T, Dc], last state [B, Dc, N]."""
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn

    if initial_state is not None:
        raise ValueError("mamba-ssm's selective_scan_fn takes no initial state")
    tr = lambda t: None if t is None else t.transpose(1, 2)  # [B, T, Dc] -> [B, Dc, T]
    bc = lambda m: m.permute(0, 2, 1) if m.dim() == 3 else m.permute(0, 2, 3, 1)  # -> [.., N, T]
    out = selective_scan_fn(
        tr(u),
        tr(delta),
        A,
        bc(B),
        bc(C),
        D,
        tr(z),
        delta_bias,
        delta_softplus,
        return_last_state,
    )
    if return_last_state:
        y, last = out
        return y.transpose(1, 2), last
    return out.transpose(1, 2)


# The registry checks these before any work: the package and its compiled extension.
selective_scan_mamba_ssm.requires = ("mamba_ssm", "selective_scan_cuda")


def peer_available() -> bool:
    """True when mamba-ssm's compiled selective scan imports."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()
