"""The spec of the fused residual add + RMSNorm: what models/stack.py's unfused decode step
computes between two mixers (`x + mixer(...)`, then the next layer's RMSNorm)."""

from __future__ import annotations

import torch


def gated_rmsnorm_ref(
    y: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, group_size: int, eps: float
) -> torch.Tensor:
    """Mamba-2's output norm (models/blocks.GatedRMSNorm): rmsnorm(y * silu(z)) over groups of
    `group_size` channels, times weight; y, z [..., D], weight [D] -> [..., D] in y's dtype."""
    g = y.float() * torch.nn.functional.silu(z.float())
    grouped = g.view(*g.shape[:-1], -1, group_size)
    inv = torch.rsqrt(grouped.pow(2).mean(-1, keepdim=True) + eps)
    return ((grouped * inv).view_as(g) * weight.float()).to(y.dtype)


def add_rmsnorm_ref(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """x, residual [..., D] (residual None: x alone), weight [D] ->
    (rmsnorm(s) * weight in x's dtype, s) with s = x + residual rounded to the residual's dtype
    (as the unfused add stores it); the statistics in float32."""
    s = x if residual is None else (x.float() + residual.float()).to(residual.dtype)
    f = s.float()
    inv = torch.rsqrt(f.pow(2).mean(-1, keepdim=True) + eps)
    return (f * inv * weight.float()).to(x.dtype), s
