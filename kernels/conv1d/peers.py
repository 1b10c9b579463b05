"""Peer backend: the causal-conv1d package's CUDA kernel, adapted to the [B, T, C] layout.

causal_conv1d_fn takes x as [B, C, T]; the transpose of our contiguous [B, T, C] is a
"channel-last" view (stride 1 along C), which it supports without a copy, and it needs that
layout for initial states.
"""

from __future__ import annotations

import torch


def causal_conv1d_peer(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
    initial_state: torch.Tensor | None = None,
    return_final_state: bool = False,
):
    """Same arguments and results as `causal_conv1d_ref`: x [B, T, C] -> y [B, T, C]."""
    from causal_conv1d import causal_conv1d_fn

    x = x if x.stride(-1) == 1 else x.contiguous()
    out = causal_conv1d_fn(
        x.transpose(1, 2),
        weight,
        bias,
        initial_states=initial_state,
        return_final_states=return_final_state,
        activation=activation,
    )
    if return_final_state:
        y, final = out
        return y.transpose(1, 2), final
    return out.transpose(1, 2)


# The registry checks these before any work: the package and its compiled extension.
causal_conv1d_peer.requires = ("causal_conv1d", "causal_conv1d_cuda")


def peer_available() -> bool:
    """True when causal-conv1d's compiled kernel imports."""
    try:
        from causal_conv1d import causal_conv1d_fn  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()
