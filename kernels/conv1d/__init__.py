"""Depthwise causal conv1d (Mamba's short convolution): Triton prefill and decode step.

`causal_conv1d` and `causal_conv1d_step` take the arguments of their references in
`reference.py` (layout [B, T, C]); `config` fixes the launch parameters, otherwise they are
autotuned on CUDA. Gradients: the forward runs Triton, the backward differentiates the torch
reference (W shifted multiply-adds: bandwidth-bound like the forward, so a kernel would buy
little).
"""

from __future__ import annotations

import torch

from kernels.conv1d.reference import causal_conv1d_ref, check_activation, final_state
from kernels.conv1d.triton import (
    ConvConfig,
    ConvStepConfig,
    causal_conv1d_fwd,
    causal_conv1d_step_fwd,
)

__all__ = ["ConvConfig", "ConvStepConfig", "causal_conv1d", "causal_conv1d_step"]


class _CausalConv1dFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, initial_state, activation, config):
        ctx.save_for_backward(x, weight, bias, initial_state)
        ctx.activation = activation
        return causal_conv1d_fwd(x, weight, bias, activation, initial_state, config)

    @staticmethod
    def backward(ctx, dy):
        saved = ctx.saved_tensors
        with torch.enable_grad():
            leaves = [
                None if t is None else t.detach().requires_grad_(need)
                for t, need in zip(saved, ctx.needs_input_grad[:4], strict=True)
            ]
            x, weight, bias, init = leaves
            y = causal_conv1d_ref(x, weight, bias, ctx.activation, init)
            want = [t for t in leaves if t is not None and t.requires_grad]
            got = iter(torch.autograd.grad(y, want, dy))
        grads = [next(got) if t is not None and t.requires_grad else None for t in leaves]
        return (*grads, None, None)


def causal_conv1d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
    initial_state: torch.Tensor | None = None,
    return_final_state: bool = False,
    config: ConvConfig | None = None,
):
    """x: [B, T, C]; weight: [C, W]; bias: [C]; activation None or "silu";
    initial_state: [B, C, W-1], the W-1 inputs before x (oldest first; zeros when None).
    Returns y [B, T, C]; with return_final_state also the [B, C, W-1] state to continue from
    (pass it as initial_state of the next segment or as the state of `causal_conv1d_step`)."""
    check_activation(activation)
    tensors = (x, weight, bias, initial_state)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        y = _CausalConv1dFn.apply(x, weight, bias, initial_state, activation, config)
    else:
        y = causal_conv1d_fwd(x, weight, bias, activation, initial_state, config)
    if return_final_state:
        return y, final_state(x.detach(), weight.shape[1], initial_state)
    return y


def causal_conv1d_step(
    state: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    activation: str | None = None,
    config: ConvStepConfig | None = None,
) -> torch.Tensor:
    """One decode step. state: [B, C, W-1] updated in place (x shifted in); x: [B, C].
    Returns y [B, C] in x's dtype."""
    check_activation(activation)
    return causal_conv1d_step_fwd(state, x, weight, bias, activation, config)
