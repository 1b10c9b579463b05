"""RoPE on q and k and the KV-cache write of one decode step as one launch (the unfused step
makes ~16: a split, seven elementwise ops per rotation, two cache writes); at batch 1 the step is
bound by launches (models/README.md). One program per (batch row, head): q heads first, then the
key/value heads, each rotating its k and copying its v into the cache at the device-side `pos`."""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _rope_qkv_step(
    QKV, COS, SIN, POS, Q, KC, VC,
    stride_qkv, stride_q_b, stride_q_h,
    stride_kc_b, stride_kc_h, stride_kc_s, stride_vc_b, stride_vc_h, stride_vc_s, S,
    H: tl.constexpr, HKV: tl.constexpr, HALF: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    b = tl.program_id(0).to(tl.int64)
    h = tl.program_id(1)
    offs = tl.arange(0, BLOCK)
    mask = offs < HALF
    cos = tl.load(COS + offs, mask=mask, other=0.0).to(tl.float32)
    sin = tl.load(SIN + offs, mask=mask, other=0.0).to(tl.float32)
    row = QKV + b * stride_qkv + h * (2 * HALF)  # q heads, then k heads: one row of the qkv
    x1 = tl.load(row + offs, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(row + HALF + offs, mask=mask, other=0.0).to(tl.float32)
    r1 = x1 * cos - x2 * sin
    r2 = x2 * cos + x1 * sin
    if h < H:
        out = Q + b * stride_q_b + h * stride_q_h
        tl.store(out + offs, r1.to(Q.dtype.element_ty), mask=mask)
        tl.store(out + HALF + offs, r2.to(Q.dtype.element_ty), mask=mask)
    else:
        kh = (h - H).to(tl.int64)  # kh * stride: past 2^31 at ~1M cached positions
        pos = tl.load(POS).to(tl.int64)
        # a step past the buffer writes nothing (Model.step's contract): no lane is valid then
        mask = offs < tl.where(pos < S, HALF, 0)
        kout = KC + b * stride_kc_b + kh * stride_kc_h + pos * stride_kc_s
        tl.store(kout + offs, r1.to(KC.dtype.element_ty), mask=mask)
        tl.store(kout + HALF + offs, r2.to(KC.dtype.element_ty), mask=mask)
        vrow = QKV + b * stride_qkv + (H + HKV + kh) * (2 * HALF)
        vout = VC + b * stride_vc_b + kh * stride_vc_h + pos * stride_vc_s
        v1 = tl.load(vrow + offs, mask=mask, other=0.0)
        v2 = tl.load(vrow + HALF + offs, mask=mask, other=0.0)
        tl.store(vout + offs, v1.to(VC.dtype.element_ty), mask=mask)
        tl.store(vout + HALF + offs, v2.to(VC.dtype.element_ty), mask=mask)


def rope_qkv_step(qkv, cos, sin, pos, k_cache, v_cache, heads: int, kv_heads: int):
    """See reference.rope_qkv_step_ref (same arguments, same result)."""
    B = qkv.shape[0]
    n = heads + 2 * kv_heads
    D = qkv.shape[-1] // n
    if qkv.shape != (B, 1, n * D) or D % 2:
        raise ValueError(f"qkv: shape {tuple(qkv.shape)}, expected [B, 1, {n} x an even head dim]")
    if (
        k_cache.shape[:2] != (B, kv_heads)
        or k_cache.shape[-1] != D
        or v_cache.shape != k_cache.shape
    ):
        raise ValueError(
            f"caches: shapes {tuple(k_cache.shape)}, {tuple(v_cache.shape)}; expected "
            f"[{B}, {kv_heads}, S, {D}] both"
        )
    qkv2 = qkv.reshape(B, n * D)
    if qkv2.stride(-1) != 1:
        qkv2 = qkv2.contiguous()
    cos, sin = cos.reshape(-1).contiguous(), sin.reshape(-1).contiguous()
    q = torch.empty(B, heads, D, dtype=qkv.dtype, device=qkv.device)
    half = D // 2
    _rope_qkv_step[(B, heads + kv_heads)](
        qkv2, cos, sin, pos, q, k_cache, v_cache,
        qkv2.stride(0), q.stride(0), q.stride(1),
        k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
        v_cache.stride(0), v_cache.stride(1), v_cache.stride(2), k_cache.shape[2],
        H=heads, HKV=kv_heads, HALF=half, BLOCK=triton.next_power_of_2(half), num_warps=1,
    )  # fmt: skip
    return q
