"""Depthwise causal conv1d in Triton: prefill kernel, decode-step kernel and launchers.

Layout [B, T, C] with channels contiguous. The prefill is bandwidth-bound (read x once, write y
once): a program owns a [BLOCK_T, BLOCK_C] tile and reads the W time-shifted copies of it, which
overlap and come from L1/L2, so DRAM traffic stays one read of x and one write of y. Offsets are
int64 (program ids cast first) so T * C past 2^31 is addressed correctly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl


@dataclass(frozen=True)
class ConvConfig:
    """Fixed launch parameters of the prefill kernel (no autotuning when passed)."""

    block_t: int = 32
    block_c: int = 128
    num_warps: int = 4


@dataclass(frozen=True)
class ConvStepConfig:
    """Fixed launch parameters of the decode-step kernel."""

    block_c: int = 256
    num_warps: int = 4


DEFAULT_CONV_CONFIG = ConvConfig()
DEFAULT_STEP_CONFIG = ConvStepConfig()

CONV_AUTOTUNE_CONFIGS = [
    triton.Config({"BLOCK_T": bt, "BLOCK_C": bc}, num_warps=w, num_stages=1)
    for bt, bc, w in [(32, 128, 4), (64, 128, 8), (16, 256, 4), (32, 256, 8), (16, 512, 8)]
]
CONV_STEP_AUTOTUNE_CONFIGS = [
    triton.Config({"BLOCK_C": bc}, num_warps=w, num_stages=1)
    for bc, w in [(128, 4), (256, 4), (512, 4), (1024, 4), (1024, 8)]
]


def prune_conv_configs(configs, named_args, **kwargs):
    """Drop tiles larger than the padded problem in either direction (pure masking work)."""
    t_max = max(16, triton.next_power_of_2(named_args["seqlen"]))
    c_max = max(64, triton.next_power_of_2(named_args["ch"]))
    kept = [c for c in configs if c.kwargs["BLOCK_T"] <= t_max and c.kwargs["BLOCK_C"] <= c_max]
    return kept or [min(configs, key=lambda c: c.kwargs["BLOCK_T"] * c.kwargs["BLOCK_C"])]


def prune_conv_step_configs(configs, named_args, **kwargs):
    c_max = max(128, triton.next_power_of_2(named_args["ch"]))
    return [c for c in configs if c.kwargs["BLOCK_C"] <= c_max] or configs[:1]


@triton.jit
def _conv_fwd_kernel(
    x_ptr,
    w_ptr,
    bias_ptr,
    init_ptr,
    y_ptr,
    seqlen,
    ch,
    stride_x_b,
    stride_x_t,
    stride_w_c,
    stride_w_k,
    stride_i_b,
    stride_i_c,
    stride_i_k,
    stride_y_b,
    stride_y_t,
    W: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_C: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    HAS_INIT: tl.constexpr,
    SILU: tl.constexpr,
):
    # grid: (B * cdiv(T, BLOCK_T), cdiv(C, BLOCK_C)); tile [BLOCK_T, BLOCK_C].
    # The tile's origin goes into scalar int64 base pointers; offsets inside the tile are int32
    # (BLOCK_T * stride_t is far below 2^31), which halves the registers per address.
    pid_bt = tl.program_id(0).to(tl.int64)
    n_tblk = tl.cdiv(seqlen, BLOCK_T)
    pid_b = pid_bt // n_tblk
    t_start = (pid_bt % n_tblk) * BLOCK_T
    c_start = tl.program_id(1).to(tl.int64) * BLOCK_C
    rows = tl.arange(0, BLOCK_T)  # [BLOCK_T] int32, local time
    cols = tl.arange(0, BLOCK_C)  # [BLOCK_C] int32, local channel
    c_mask = cols < ch - c_start
    t_hi = tl.minimum(seqlen - t_start, BLOCK_T).to(tl.int32)  # rows < t_hi are in range
    t_lo = tl.maximum(-t_start, -W).to(tl.int32)  # source rows >= t_lo exist in x

    acc = tl.zeros([BLOCK_T, BLOCK_C], dtype=tl.float32)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + c_start + cols, mask=c_mask, other=0.0).to(tl.float32)[None, :]
    x_tile = x_ptr + pid_b * stride_x_b + t_start * stride_x_t + c_start
    w_col = w_ptr + c_start * stride_w_c
    for k in tl.static_range(W):
        src = rows - (W - 1 - k)  # [BLOCK_T] local source row of tap k
        wk = tl.load(w_col + cols * stride_w_c + k * stride_w_k, mask=c_mask, other=0.0)
        m = ((src >= t_lo) & (rows < t_hi))[:, None] & c_mask[None, :]
        xk = tl.load(x_tile + src[:, None] * stride_x_t + cols[None, :], mask=m, other=0.0)
        xk = xk.to(tl.float32)
        if HAS_INIT:
            # global times -(W-1)..-1 live in initial_state[:, :, 0..W-2]; only the first tile
            # has such rows: elsewhere i_hi = -W and this mask is all false
            i_hi = tl.minimum(t_start, 1).to(tl.int32) * (-W)
            mi = (src < i_hi)[:, None] & c_mask[None, :]
            i_p = init_ptr + pid_b * stride_i_b + c_start * stride_i_c
            iv = tl.load(
                i_p + cols[None, :] * stride_i_c + (src + W - 1)[:, None] * stride_i_k,
                mask=mi,
                other=0.0,
            )
            xk += iv.to(tl.float32)
        acc += xk * wk.to(tl.float32)[None, :]
    if SILU:
        acc = acc / (1.0 + tl.exp(-acc))
    y_p = y_ptr + pid_b * stride_y_b + t_start * stride_y_t + c_start
    y_p += rows[:, None] * stride_y_t + cols[None, :]
    tl.store(y_p, acc.to(y_ptr.dtype.element_ty), mask=(rows < t_hi)[:, None] & c_mask[None, :])


_conv_fwd_autotuned = triton.autotune(
    configs=CONV_AUTOTUNE_CONFIGS,
    key=["ch", "W", "seqlen"],
    prune_configs_by={"early_config_prune": prune_conv_configs},
)(_conv_fwd_kernel)


@triton.jit
def _conv_step_kernel(
    s_ptr,
    x_ptr,
    w_ptr,
    bias_ptr,
    y_ptr,
    ch,
    stride_s_b,
    stride_s_c,
    stride_s_k,
    stride_x_b,
    stride_w_c,
    stride_w_k,
    stride_y_b,
    W: tl.constexpr,
    BLOCK_C: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    SILU: tl.constexpr,
):
    # grid: (B, cdiv(C, BLOCK_C)); one thread per channel, which owns its whole state row, so
    # the in-place shift needs no barrier: slot k is read, then slot k-1 (already read) is
    # overwritten with it, and the last slot receives x.
    pid_b = tl.program_id(0).to(tl.int64)
    offs_c = tl.program_id(1).to(tl.int64) * BLOCK_C + tl.arange(0, BLOCK_C).to(tl.int64)
    c_mask = offs_c < ch
    row = s_ptr + pid_b * stride_s_b + offs_c * stride_s_c  # [BLOCK_C]
    w_row = w_ptr + offs_c * stride_w_c
    x = tl.load(x_ptr + pid_b * stride_x_b + offs_c, mask=c_mask, other=0.0)
    acc = tl.zeros([BLOCK_C], dtype=tl.float32)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_c, mask=c_mask, other=0.0).to(tl.float32)
    for k in tl.static_range(W - 1):
        sk = tl.load(row + k * stride_s_k, mask=c_mask, other=0.0)
        acc += sk.to(tl.float32) * tl.load(w_row + k * stride_w_k, mask=c_mask).to(tl.float32)
        if k > 0:
            tl.store(row + (k - 1) * stride_s_k, sk, mask=c_mask)
    acc += x.to(tl.float32) * tl.load(w_row + (W - 1) * stride_w_k, mask=c_mask).to(tl.float32)
    if W > 1:
        tl.store(row + (W - 2) * stride_s_k, x.to(s_ptr.dtype.element_ty), mask=c_mask)
    if SILU:
        acc = acc / (1.0 + tl.exp(-acc))
    tl.store(y_ptr + pid_b * stride_y_b + offs_c, acc.to(y_ptr.dtype.element_ty), mask=c_mask)


_conv_step_autotuned = triton.autotune(
    configs=CONV_STEP_AUTOTUNE_CONFIGS,
    key=["ch", "W"],
    prune_configs_by={"early_config_prune": prune_conv_step_configs},
    restore_value=["s_ptr"],  # the step updates the state in place
)(_conv_step_kernel)


def check_conv_shapes(x, weight, bias, initial_state):
    bsz, _, ch = x.shape
    if weight.dim() != 2 or weight.shape[0] != ch:
        raise ValueError(f"weight must be [C={ch}, W], got {tuple(weight.shape)}")
    if bias is not None and bias.shape != (ch,):
        raise ValueError(f"bias must be [C={ch}], got {tuple(bias.shape)}")
    want = (bsz, ch, weight.shape[1] - 1)
    if initial_state is not None and initial_state.shape != want:
        raise ValueError(
            f"initial_state must be [B, C, W-1] = {want}, got {tuple(initial_state.shape)}"
        )


def causal_conv1d_fwd(x, weight, bias=None, activation=None, initial_state=None, config=None):
    """Prefill forward. x: [B, T, C] -> y [B, T, C]. config None: autotuned on CUDA."""
    check_conv_shapes(x, weight, bias, initial_state)
    if x.stride(-1) != 1:
        x = x.contiguous()
    bsz, seqlen, ch = x.shape
    width = weight.shape[1]
    y = torch.empty_like(x)
    if seqlen == 0:
        return y
    init = initial_state
    args = (
        x,
        weight,
        bias if bias is not None else x,
        init if init is not None else x,
        y,
        seqlen,
        ch,
        x.stride(0),
        x.stride(1),
        weight.stride(0),
        weight.stride(1),
        init.stride(0) if init is not None else 0,
        init.stride(1) if init is not None else 0,
        init.stride(2) if init is not None else 0,
        y.stride(0),
        y.stride(1),
    )
    kw = dict(
        W=width, HAS_BIAS=bias is not None, HAS_INIT=init is not None, SILU=activation == "silu"
    )
    if config is None and x.device.type != "cuda":
        config = DEFAULT_CONV_CONFIG
    if config is None:
        grid = lambda m: (bsz * triton.cdiv(seqlen, m["BLOCK_T"]), triton.cdiv(ch, m["BLOCK_C"]))
        _conv_fwd_autotuned[grid](*args, **kw)
    else:
        grid = (bsz * triton.cdiv(seqlen, config.block_t), triton.cdiv(ch, config.block_c))
        _conv_fwd_kernel[grid](
            *args,
            **kw,
            BLOCK_T=config.block_t,
            BLOCK_C=config.block_c,
            num_warps=config.num_warps,
            num_stages=1,
        )
    return y


def causal_conv1d_step_fwd(state, x, weight, bias=None, activation=None, config=None):
    """Decode step. state: [B, C, W-1] updated in place; x: [B, C] -> y [B, C]."""
    bsz, ch = x.shape
    width = weight.shape[1]
    if state.shape != (bsz, ch, width - 1):
        raise ValueError(f"state must be [B, C, W-1] = {(bsz, ch, width - 1)}")
    if weight.shape[0] != ch or (bias is not None and bias.shape != (ch,)):
        raise ValueError("weight must be [C, W] and bias [C]")
    x = x.contiguous()
    y = torch.empty_like(x)
    args = (
        state,
        x,
        weight,
        bias if bias is not None else x,
        y,
        ch,
        state.stride(0),
        state.stride(1),
        state.stride(2),
        x.stride(0),
        weight.stride(0),
        weight.stride(1),
        y.stride(0),
    )
    kw = dict(W=width, HAS_BIAS=bias is not None, SILU=activation == "silu")
    if config is None and x.device.type != "cuda":
        config = DEFAULT_STEP_CONFIG
    if config is None:
        _conv_step_autotuned[lambda m: (bsz, triton.cdiv(ch, m["BLOCK_C"]))](*args, **kw)
    else:
        _conv_step_kernel[(bsz, triton.cdiv(ch, config.block_c))](
            *args, **kw, BLOCK_C=config.block_c, num_warps=config.num_warps
        )
    return y
