"""The spec of the decode step's matrix-vector product: one row of activations times a weight
stored as nn.Linear stores it ([out, in], no bias), accumulated in float32."""

from __future__ import annotations

import torch


def gemv_ref(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [..., K] holding one row in all, weight [N, K] -> [..., N] in x's dtype."""
    return (x.float() @ weight.float().t()).to(x.dtype)


def gemv_swiglu_ref(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor) -> torch.Tensor:
    """silu(x W_gate^T) * (x W_up^T) in float32, for one row x [..., K] -> [..., N] in x's dtype."""
    g = x.float() @ w_gate.float().t()
    return (torch.nn.functional.silu(g) * (x.float() @ w_up.float().t())).to(x.dtype)
