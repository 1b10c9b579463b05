"""One Mamba-2 SSD decode step on Triton; same arguments and result as `ssd_step_ref`.

Memory-bound: each program streams a [BLOCK_P, N] tile of the state once in and once out, so the
floor is 2 * B*H*P*N * state.element_size() bytes over HBM bandwidth (see kernels/ssd/NOTES.md).
`set_autotune(False)` runs the FIXED config (no tuning pass); the CPU interpreter always does.
Autotuning restores the state between trials (it is updated in place).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

from kernels.ssd.jit import softplus

AUTOTUNE = True
FIXED = dict(BLOCK_P=16, num_warps=4)


def set_autotune(enabled: bool) -> bool:
    """Switch between autotuned and fixed configs; returns the previous setting."""
    global AUTOTUNE
    previous, AUTOTUNE = AUTOTUNE, bool(enabled)
    return previous


@triton.jit
def _ssd_step(
    state_ptr,
    x_ptr,
    dt_ptr,
    A_ptr,
    B_ptr,
    C_ptr,
    D_ptr,
    z_ptr,
    dt_bias_ptr,
    y_ptr,
    H,
    G,
    P,
    N,
    stride_s_b,
    stride_s_h,
    stride_s_p,
    stride_s_n,
    stride_x_b,
    stride_x_h,
    stride_x_p,
    stride_dt_b,
    stride_dt_h,
    stride_B_b,
    stride_B_g,
    stride_B_n,
    stride_C_b,
    stride_C_g,
    stride_C_n,
    stride_z_b,
    stride_z_h,
    stride_z_p,
    stride_y_b,
    stride_y_h,
    stride_y_p,
    BLOCK_P: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HAS_D: tl.constexpr,
    D_HAS_P: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    DT_SOFTPLUS: tl.constexpr,
):
    pid_p = tl.program_id(0)
    pid_h = tl.program_id(1).to(tl.int64)
    pid_b = tl.program_id(2).to(tl.int64)
    g = pid_h // (H // G)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_n = tl.arange(0, BLOCK_N)
    mask_p = offs_p < P
    mask_n = offs_n < N
    mask = mask_p[:, None] & mask_n[None, :]

    dt = tl.load(dt_ptr + pid_b * stride_dt_b + pid_h * stride_dt_h).to(tl.float32)
    if HAS_DT_BIAS:
        dt += tl.load(dt_bias_ptr + pid_h).to(tl.float32)
    if DT_SOFTPLUS:
        dt = softplus(dt)
    decay = tl.exp(dt * tl.load(A_ptr + pid_h).to(tl.float32))

    x = tl.load(
        x_ptr + pid_b * stride_x_b + pid_h * stride_x_h + offs_p * stride_x_p,
        mask=mask_p,
        other=0.0,
    ).to(tl.float32)
    Bv = tl.load(
        B_ptr + pid_b * stride_B_b + g * stride_B_g + offs_n * stride_B_n, mask=mask_n, other=0.0
    ).to(tl.float32)
    Cv = tl.load(
        C_ptr + pid_b * stride_C_b + g * stride_C_g + offs_n * stride_C_n, mask=mask_n, other=0.0
    ).to(tl.float32)
    s_ptrs = (
        state_ptr
        + pid_b * stride_s_b
        + pid_h * stride_s_h
        + offs_p[:, None] * stride_s_p
        + offs_n[None, :] * stride_s_n
    )  # [BLOCK_P, BLOCK_N]
    s = tl.load(s_ptrs, mask=mask, other=0.0).to(tl.float32)
    s = s * decay + (dt * x)[:, None] * Bv[None, :]
    tl.store(s_ptrs, s.to(state_ptr.dtype.element_ty), mask=mask)

    y = tl.sum(s * Cv[None, :], axis=1)  # [BLOCK_P]
    if HAS_D:
        if D_HAS_P:
            y += tl.load(D_ptr + pid_h * P + offs_p, mask=mask_p, other=0.0).to(tl.float32) * x
        else:
            y += tl.load(D_ptr + pid_h).to(tl.float32) * x
    if HAS_Z:
        z = tl.load(
            z_ptr + pid_b * stride_z_b + pid_h * stride_z_h + offs_p * stride_z_p,
            mask=mask_p,
            other=0.0,
        ).to(tl.float32)
        y = y * z * tl.sigmoid(z)
    tl.store(
        y_ptr + pid_b * stride_y_b + pid_h * stride_y_h + offs_p * stride_y_p,
        y.to(y_ptr.dtype.element_ty),
        mask=mask_p,
    )


def prune_step_configs(configs, named_args, **kwargs):
    """Drop configs whose BLOCK_P exceeds the head dim (all but the smallest such one)."""
    P = {**named_args, **kwargs}["P"]
    cap = triton.next_power_of_2(P)
    kept = [c for c in configs if c.kwargs["BLOCK_P"] <= cap]
    return kept or configs[:1]


STEP_CONFIGS = [
    triton.Config({"BLOCK_P": bp}, num_warps=w)
    for bp, w in [(4, 1), (8, 2), (8, 4), (16, 4), (16, 8), (32, 4), (32, 8), (64, 8)]
]
_ssd_step_tuned = triton.autotune(
    STEP_CONFIGS,
    key=["H", "G", "P", "N"],
    restore_value=["state_ptr"],
    prune_configs_by={"early_config_prune": prune_step_configs},
)(_ssd_step)


def ssd_step(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False, *, out=None):
    """state [B,H,P,N] (any float dtype, updated in place), x [B,H,P], dt [B,H], A [H],
    B and C [B,G,N], D [H] or [H,P], z [B,H,P], dt_bias [H]. Returns y [B,H,P] in x's dtype,
    written into `out` when given (a static buffer for CUDA-graph capture)."""
    bsz, nheads, headdim = x.shape
    ngroups, dstate = B.shape[1:]
    assert state.shape == (bsz, nheads, headdim, dstate), "state must be [B, H, P, N]"
    assert dt.shape == (bsz, nheads) and A.shape == (nheads,) and C.shape == B.shape
    assert nheads % ngroups == 0, f"heads {nheads} not divisible by groups {ngroups}"
    assert D is None or D.shape in ((nheads,), (nheads, headdim))
    assert z is None or z.shape == x.shape
    y = torch.empty_like(x, memory_format=torch.contiguous_format) if out is None else out
    assert y.shape == x.shape and y.dtype == x.dtype
    # read in their own dtype (the kernel computes in float32): a float copy of each was two
    # more kernels a layer in a batch-1 decode step
    A = A.contiguous()
    D = D.contiguous() if D is not None else None
    dt_bias = dt_bias.contiguous() if dt_bias is not None else None
    args = (
        state,
        x,
        dt,
        A,
        B,
        C,
        D,
        z,
        dt_bias,
        y,
        nheads,
        ngroups,
        headdim,
        dstate,
        *state.stride(),
        *x.stride(),
        *dt.stride(),
        *B.stride(),
        *C.stride(),
        *(z.stride() if z is not None else (0, 0, 0)),
        *y.stride(),
    )
    meta = dict(
        BLOCK_N=triton.next_power_of_2(dstate),
        HAS_D=D is not None,
        D_HAS_P=D is not None and D.dim() == 2,
        HAS_Z=z is not None,
        HAS_DT_BIAS=dt_bias is not None,
        DT_SOFTPLUS=dt_softplus,
    )
    grid = lambda m: (triton.cdiv(headdim, m["BLOCK_P"]), nheads, bsz)
    if os.environ.get("TRITON_INTERPRET") == "1" or not AUTOTUNE:
        kw = dict(FIXED, BLOCK_P=min(FIXED["BLOCK_P"], triton.next_power_of_2(headdim)))
        _ssd_step[grid(kw)](*args, **meta, **kw)
    else:
        _ssd_step_tuned[grid](*args, **meta)
    return y
