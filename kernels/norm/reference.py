"""The spec of the fused residual add + RMSNorm: what models/stack.py's unfused decode step
computes between two mixers (`x + mixer(...)`, then the next layer's RMSNorm)."""

from __future__ import annotations

import torch


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
