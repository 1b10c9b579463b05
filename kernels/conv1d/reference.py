"""Depthwise causal conv1d in plain torch: the spec for the Triton kernels.

    y[b, t, c] = act(bias[c] + sum_{k<W} weight[c, k] * x[b, t - (W-1) + k, c])
where x at negative times comes from `initial_state` [B, C, W-1] (the W-1 inputs before the
sequence, oldest first) or is zero, and act is the identity or SiLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ACTIVATIONS = (None, "silu")


def check_activation(activation: str | None) -> None:
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {ACTIVATIONS}")


def final_state(x: torch.Tensor, width: int, initial_state: torch.Tensor | None) -> torch.Tensor:
    """The W-1 inputs before the next token after x: [B, C, W-1] in x's dtype.
    x: [B, T, C]; initial_state: [B, C, W-1] or None (zeros)."""
    bsz, seqlen, ch = x.shape
    keep = width - 1
    if seqlen >= keep:
        return x[:, seqlen - keep :].transpose(1, 2).contiguous()
    if initial_state is None:
        initial_state = x.new_zeros(bsz, ch, keep)
    return torch.cat([initial_state[..., seqlen:].to(x.dtype), x.transpose(1, 2)], dim=-1)


def causal_conv1d_ref(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
    initial_state: torch.Tensor | None = None,
    return_final_state: bool = False,
):
    """x: [B, T, C]; weight: [C, W]; bias: [C]; initial_state: [B, C, W-1].
    Returns y [B, T, C] in x's dtype (and with return_final_state the next initial_state)."""
    check_activation(activation)
    bsz, seqlen, ch = x.shape
    width = weight.shape[1]
    if initial_state is None:
        prev = x.new_zeros(bsz, width - 1, ch, dtype=torch.float32)
    else:
        prev = initial_state.float().transpose(1, 2)  # [B, W-1, C]
    xp = torch.cat([prev, x.float()], dim=1)  # [B, W-1+T, C]
    w = weight.float()
    y = sum(w[:, k] * xp[:, k : k + seqlen] for k in range(width))  # [B, T, C]
    if bias is not None:
        y = y + bias.float()
    if activation == "silu":
        y = F.silu(y)
    y = y.to(x.dtype)
    if return_final_state:
        return y, final_state(x, width, initial_state)
    return y


def causal_conv1d_step_ref(
    state: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
) -> torch.Tensor:
    """One decode step. state: [B, C, W-1] (oldest first), updated in place by shifting in x;
    x: [B, C]. Returns y [B, C] in x's dtype."""
    check_activation(activation)
    window = torch.cat([state.float(), x.float()[..., None]], dim=-1)  # [B, C, W]
    y = (window * weight.float()).sum(-1)
    if bias is not None:
        y = y + bias.float()
    if activation == "silu":
        y = F.silu(y)
    state.copy_(window[..., 1:])
    return y.to(x.dtype)
