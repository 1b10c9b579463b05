"""One decode step of the selective scan in Triton, updating the state in place.

Memory-bound: per step it reads and writes the state [B, Dc, N] once and everything else is
O(B * Dc). The state tile [BLOCK_D, N] of one program is a contiguous run of BLOCK_D * N values,
so loads and stores are fully coalesced.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl


@dataclass(frozen=True)
class StepConfig:
    """Fixed launch parameters of the step kernel (no autotuning when passed)."""

    block_d: int = 64
    num_warps: int = 4


DEFAULT_STEP_CONFIG = StepConfig()

STEP_AUTOTUNE_CONFIGS = [
    triton.Config({"BLOCK_D": bd}, num_warps=w, num_stages=1)
    for bd, w in [(32, 4), (64, 4), (128, 4), (128, 8), (256, 8)]
]


def prune_step_configs(configs, named_args, **kwargs):
    """Drop channel blocks wider than the padded channel count (they would only mask)."""
    widest = max(32, triton.next_power_of_2(named_args["dc"]))
    return [c for c in configs if c.kwargs["BLOCK_D"] <= widest] or configs[:1]


@triton.jit
def _scan_step_kernel(
    s_ptr,
    u_ptr,
    dt_ptr,
    a_ptr,
    b_ptr,
    c_ptr,
    d_ptr,
    z_ptr,
    dtb_ptr,
    y_ptr,
    dc,
    dpg,
    stride_s_b,
    stride_s_d,
    stride_u_b,
    stride_dt_b,
    stride_b_b,
    stride_b_g,
    stride_c_b,
    stride_c_g,
    stride_z_b,
    stride_y_b,
    N: tl.constexpr,
    N_PAD: tl.constexpr,
    BLOCK_D: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    DT_SOFTPLUS: tl.constexpr,
):
    # grid: (B, cdiv(Dc, BLOCK_D)); tile [BLOCK_D, N_PAD]
    pid_b = tl.program_id(0).to(tl.int64)
    offs_d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D).to(tl.int64)
    offs_n = tl.arange(0, N_PAD)
    d_mask = offs_d < dc
    mask = d_mask[:, None] & (offs_n[None, :] < N)
    grp = offs_d // dpg

    s_p = s_ptr + pid_b * stride_s_b + offs_d[:, None] * stride_s_d + offs_n[None, :]
    h = tl.load(s_p, mask=mask, other=0.0).to(tl.float32)  # [BLOCK_D, N_PAD]
    u = tl.load(u_ptr + pid_b * stride_u_b + offs_d, mask=d_mask, other=0.0).to(tl.float32)
    dt = tl.load(dt_ptr + pid_b * stride_dt_b + offs_d, mask=d_mask, other=0.0).to(tl.float32)
    if HAS_DT_BIAS:
        dt += tl.load(dtb_ptr + offs_d, mask=d_mask, other=0.0).to(tl.float32)
    if DT_SOFTPLUS:
        dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)  # torch's softplus threshold
    a = tl.load(a_ptr + offs_d[:, None] * N + offs_n[None, :], mask=mask, other=0.0)
    bt = tl.load(
        b_ptr + pid_b * stride_b_b + grp[:, None] * stride_b_g + offs_n[None, :],
        mask=mask,
        other=0.0,
    ).to(tl.float32)
    ct = tl.load(
        c_ptr + pid_b * stride_c_b + grp[:, None] * stride_c_g + offs_n[None, :],
        mask=mask,
        other=0.0,
    ).to(tl.float32)
    h = tl.exp(dt[:, None] * a.to(tl.float32)) * h + (dt * u)[:, None] * bt
    tl.store(s_p, h.to(s_ptr.dtype.element_ty), mask=mask)
    y = tl.sum(h * ct, axis=1)  # [BLOCK_D]
    if HAS_D:
        y += tl.load(d_ptr + offs_d, mask=d_mask, other=0.0).to(tl.float32) * u
    if HAS_Z:
        zt = tl.load(z_ptr + pid_b * stride_z_b + offs_d, mask=d_mask, other=0.0).to(tl.float32)
        y *= zt / (1.0 + tl.exp(-zt))
    tl.store(y_ptr + pid_b * stride_y_b + offs_d, y.to(y_ptr.dtype.element_ty), mask=d_mask)


_scan_step_autotuned = triton.autotune(
    configs=STEP_AUTOTUNE_CONFIGS,
    key=["dc", "N", "dpg"],
    prune_configs_by={"early_config_prune": prune_step_configs},
    # the kernel updates the state in place: autotuning must not apply the step twice
    restore_value=["s_ptr"],
)(_scan_step_kernel)


def selective_scan_step(
    state: torch.Tensor,
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    config: StepConfig | None = None,
) -> torch.Tensor:
    """One decode step. state: [B, Dc, N] (any float dtype, N contiguous), updated in place;
    u, delta, z: [B, Dc]; A: [Dc, N]; B, C: [B, N] or [B, G, N]; D, delta_bias: [Dc].
    Returns y [B, Dc] in u's dtype. config None: autotuned on CUDA, the default on CPU."""
    bsz, dc = u.shape
    n = A.shape[1]
    if state.shape != (bsz, dc, n) or state.stride(-1) != 1:
        raise ValueError(f"state must be [B, Dc, N] = {(bsz, dc, n)} with N contiguous")
    if delta.shape != u.shape or (z is not None and z.shape != u.shape):
        raise ValueError("u, delta and z must all be [B, Dc]")
    bg = B.unsqueeze(1) if B.dim() == 2 else B  # [B, G, N]
    cg = C.unsqueeze(1) if C.dim() == 2 else C
    if bg.shape[0] != bsz or bg.shape[-1] != n or dc % bg.shape[1] or cg.shape != bg.shape:
        raise ValueError(f"B and C must be [B, N] or [B, G, N] with G dividing Dc={dc}")
    bg, cg = bg.contiguous(), cg.contiguous()
    u, delta = u.contiguous(), delta.contiguous()
    z = z.contiguous() if z is not None else None
    A = A.contiguous()
    y = torch.empty_like(u)
    dummy = u
    args = (
        state,
        u,
        delta,
        A,
        bg,
        cg,
        D.contiguous() if D is not None else dummy,
        z if z is not None else dummy,
        delta_bias.contiguous() if delta_bias is not None else dummy,
        y,
        dc,
        dc // bg.shape[1],
        state.stride(0),
        state.stride(1),
        u.stride(0),
        delta.stride(0),
        bg.stride(0),
        bg.stride(1),
        cg.stride(0),
        cg.stride(1),
        z.stride(0) if z is not None else 0,
        y.stride(0),
    )
    kw = dict(
        N=n,
        N_PAD=triton.next_power_of_2(n),
        HAS_D=D is not None,
        HAS_Z=z is not None,
        HAS_DT_BIAS=delta_bias is not None,
        DT_SOFTPLUS=bool(delta_softplus),
    )
    if config is None and u.device.type != "cuda":
        config = DEFAULT_STEP_CONFIG
    if config is None:
        grid = lambda meta: (bsz, triton.cdiv(dc, meta["BLOCK_D"]))
        _scan_step_autotuned[grid](*args, **kw)
    else:
        grid = (bsz, triton.cdiv(dc, config.block_d))
        _scan_step_kernel[grid](*args, **kw, BLOCK_D=config.block_d, num_warps=config.num_warps)
    return y
