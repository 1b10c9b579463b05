"""The spec of the decode step's matrix-vector product: one row of activations times a weight
stored as nn.Linear stores it ([out, in], no bias), accumulated in float32."""

from __future__ import annotations

import torch


def gemv_ref(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [..., K] holding one row in all, weight [N, K] -> [..., N] in x's dtype."""
    return (x.float() @ weight.float().t()).to(x.dtype)
