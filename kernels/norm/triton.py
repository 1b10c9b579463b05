"""Residual add + RMSNorm in one pass over a row: one launch where the unfused decode step
makes about seven (the add, the float32 norm, rsqrt, two scalings, dtype casts). At batch 1 a
decode step is bound by launches, not bytes (models/README.md), so this is what it buys."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _add_rmsnorm(
    X, R, W, Y, S,  # x, residual (read), weight, normed out, sum out (may alias R)
    D, eps,
    stride_x, stride_r, stride_y, stride_s,
    HAS_R: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < D
    s = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    if HAS_R:
        s += tl.load(R + row * stride_r + cols, mask=mask, other=0.0).to(tl.float32)
        s = s.to(S.dtype.element_ty)  # the residual stream keeps its dtype, as the add rounds it
        tl.store(S + row * stride_s + cols, s, mask=mask)
        s = s.to(tl.float32)
    inv = 1.0 / tl.sqrt(tl.sum(s * s, axis=0) / D + eps)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(Y + row * stride_y + cols, (s * inv * w).to(Y.dtype.element_ty), mask=mask)


@triton.jit
def _gated_rmsnorm(
    Y, Z, W, OUT, G, eps, stride_y, stride_z, stride_o, BLOCK: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0).to(tl.int64)
    group = tl.program_id(1)
    cols = tl.arange(0, BLOCK)
    mask = cols < G
    base = group * G
    y = tl.load(Y + row * stride_y + base + cols, mask=mask, other=0.0).to(tl.float32)
    z = tl.load(Z + row * stride_z + base + cols, mask=mask, other=0.0).to(tl.float32)
    g = y * z * tl.sigmoid(z)
    inv = 1.0 / tl.sqrt(tl.sum(g * g, axis=0) / G + eps)
    w = tl.load(W + base + cols, mask=mask, other=0.0).to(tl.float32)
    tl.store(OUT + row * stride_o + base + cols, (g * inv * w).to(OUT.dtype.element_ty), mask=mask)


def gated_rmsnorm_fwd(
    y: torch.Tensor, z: torch.Tensor, weight: torch.Tensor, group_size: int, eps: float
) -> torch.Tensor:
    """See reference.gated_rmsnorm_ref: one launch where the torch norm makes about ten."""
    D = y.shape[-1]
    if z.shape != y.shape or weight.shape != (D,) or D % group_size:
        raise ValueError(
            f"gated_rmsnorm: y {tuple(y.shape)}, z {tuple(z.shape)}, weight "
            f"{tuple(weight.shape)}, group_size {group_size}: z must match y, weight be [D] and "
            "D a multiple of group_size"
        )
    y2, z2 = y.reshape(-1, D).contiguous(), z.reshape(-1, D).contiguous()
    out = torch.empty_like(y2)
    block = triton.next_power_of_2(group_size)
    _gated_rmsnorm[(y2.shape[0], D // group_size)](
        y2, z2, weight, out, group_size, eps, y2.stride(0), z2.stride(0), out.stride(0),
        BLOCK=block, num_warps=min(16, max(1, block // 256)),
    )  # fmt: skip
    return out.view(y.shape)


def add_rmsnorm_fwd(
    x: torch.Tensor, residual: torch.Tensor | None, weight: torch.Tensor, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """See reference.add_rmsnorm_ref. The sum is written into `residual` in place (no-grad use:
    the residual stream of a decode step); without a residual, x itself is returned as the sum."""
    D = x.shape[-1]
    if weight.shape != (D,):
        raise ValueError(f"weight: shape {tuple(weight.shape)}, expected ({D},)")
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"residual: shape {tuple(residual.shape)} != x {tuple(x.shape)}")
    x2 = x.reshape(-1, D)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    r2 = None if residual is None else residual.view(-1, D)  # a view: written in place
    if r2 is not None and r2.stride(-1) != 1:
        raise ValueError("residual: the last dimension must be contiguous (it is written in place)")
    y = torch.empty_like(x2)
    block = triton.next_power_of_2(D)
    r = x2 if r2 is None else r2  # unread and unwritten without a residual (HAS_R)
    _add_rmsnorm[(x2.shape[0],)](
        x2, r, weight, y, r, D, eps, x2.stride(0), r.stride(0), y.stride(0), r.stride(0),
        HAS_R=r2 is not None, BLOCK=block, num_warps=min(16, max(1, block // 256)),
    )  # fmt: skip
    return y.view(x.shape), (x if residual is None else residual)
