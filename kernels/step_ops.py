"""The Triton decode-step kernels as torch operators, for a compiled decode step.

torch.compile traces a Python-launched Triton kernel itself; with an autotuned one called in every
layer of a step it fails (torch 2.11 on the H200: "ListVariable ... is already tracked for
mutation" at the second layer's conv step). Registered as `ctxbench::conv1d_step`,
`ctxbench::ssd_step` and `ctxbench::selective_scan_step` (each updates its state in place, as
declared), they stay whole, opaque calls inside the compiled graph, as
`ctxbench::decode_attention` does.

The registry's "triton" entries of the three step ops are the functions below: the plain
launcher when running eagerly (no dispatcher overhead on the host), the operator when compiling.
"""

from __future__ import annotations

import torch

from kernels.conv1d import causal_conv1d_step as _conv_step
from kernels.selective_scan import selective_scan_step as _scan_step
from kernels.ssd_step import ssd_step as _ssd_step

Tensor = torch.Tensor


@torch.library.custom_op("ctxbench::conv1d_step", mutates_args=("state",))
def conv1d_step_op(
    state: Tensor, x: Tensor, weight: Tensor, bias: Tensor | None, activation: str | None
) -> Tensor:
    return _conv_step(state, x, weight, bias, activation)


@conv1d_step_op.register_fake
def _(state, x, weight, bias, activation):
    return torch.empty_like(x)  # what the launcher allocates


@torch.library.custom_op("ctxbench::ssd_step", mutates_args=("state",))
def ssd_step_op(
    state: Tensor,
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    dt_bias: Tensor | None,
    dt_softplus: bool,
) -> Tensor:
    return _ssd_step(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)


@ssd_step_op.register_fake
def _(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus):
    return torch.empty_like(x, memory_format=torch.contiguous_format)


@torch.library.custom_op("ctxbench::selective_scan_step", mutates_args=("state",))
def selective_scan_step_op(
    state: Tensor,
    u: Tensor,
    delta: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    D: Tensor | None,
    z: Tensor | None,
    delta_bias: Tensor | None,
    delta_softplus: bool,
) -> Tensor:
    return _scan_step(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus)


@selective_scan_step_op.register_fake
def _(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus):
    return torch.empty_like(u)


def conv1d_step(state, x, weight, bias=None, activation=None, config=None):
    """kernels.conv1d.causal_conv1d_step; the operator inside torch.compile (default config)."""
    if torch.compiler.is_compiling():
        return conv1d_step_op(state, x, weight, bias, activation)
    return _conv_step(state, x, weight, bias, activation, config)


def ssd_step(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False, *, out=None):
    """kernels.ssd_step.ssd_step; the operator inside torch.compile (no `out` there)."""
    if torch.compiler.is_compiling() and out is None:
        return ssd_step_op(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus)
    return _ssd_step(state, x, dt, A, B, C, D, z, dt_bias, dt_softplus, out=out)


def selective_scan_step(
    state, u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, config=None
):
    """kernels.selective_scan.selective_scan_step; the operator inside torch.compile."""
    if torch.compiler.is_compiling():
        return selective_scan_step_op(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus)
    return _scan_step(state, u, delta, A, B, C, D, z, delta_bias, delta_softplus, config)
