"""Batch-1 matrix-vector product in Triton, for the decode step (models/README.md, "Where a
batch-1 step's time goes": cuBLAS's GEMVs read the 1.3B models' weights at 2.4-2.6 TB/s, 50-54%
of the H200's bandwidth, and are most of the step).

Memory-bound: the weight is read once and nothing else is large, so the kernel is a stream over
W's rows. One program owns BLOCK_N output rows and walks K in BLOCK_K slices, keeping a
[BLOCK_N, BLOCK_K] float32 partial product and reducing it once at the end (no split-K, so no
second kernel and no atomics); loads are marked evict-first, since no weight is read twice in a
step. The grid depends on N only: capturable in a CUDA graph. Offsets into W are int64 (lm_head
rows x K pass 2^31 at large vocabularies times widths).
"""

from __future__ import annotations

import os

import torch
import triton
import triton.language as tl

FIXED = dict(BLOCK_N=4, BLOCK_K=64, num_warps=4)  # the CPU interpreter and set_autotune(False)
AUTOTUNE = True


def set_autotune(enabled: bool) -> bool:
    """Switch between autotuned and fixed configs; returns the previous setting."""
    global AUTOTUNE
    previous, AUTOTUNE = AUTOTUNE, bool(enabled)
    return previous


@triton.jit
def _gemv(
    X, W, W2, Y, N, K, stride_wn, stride_w2n,
    BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, SWIGLU: tl.constexpr,
):  # fmt: skip
    # SWIGLU: W is the MLP's gate and W2 its up projection; y = silu(W x) * (W2 x), both rows
    # read in the same pass (one launch, no [d_ff] intermediates between three kernels)
    pid = tl.program_id(0)
    offs_n = pid * BLOCK_N + tl.arange(0, BLOCK_N)
    mask_n = offs_n < N
    rows = W + offs_n.to(tl.int64)[:, None] * stride_wn
    rows2 = W2 + offs_n.to(tl.int64)[:, None] * stride_w2n
    acc = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
    acc2 = tl.zeros([BLOCK_N, BLOCK_K], tl.float32)
    for k0 in range(0, K, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        mask_k = offs_k < K
        mask = mask_n[:, None] & mask_k[None, :]
        x = tl.load(X + offs_k, mask=mask_k, other=0.0).to(tl.float32)[None, :]
        w = tl.load(rows + offs_k[None, :], mask=mask, other=0.0, eviction_policy="evict_first")
        acc += w.to(tl.float32) * x
        if SWIGLU:
            w2 = tl.load(
                rows2 + offs_k[None, :], mask=mask, other=0.0, eviction_policy="evict_first"
            )
            acc2 += w2.to(tl.float32) * x
    y = tl.sum(acc, 1)
    if SWIGLU:
        y = y * tl.sigmoid(y) * tl.sum(acc2, 1)
    tl.store(Y + offs_n, y.to(Y.dtype.element_ty), mask=mask_n)


def _prune(configs, named_args, **kwargs):
    """Configs worth timing: BLOCK_K no wider than K rounded up to a power of two, and at most 64
    float32 accumulator elements a thread (two accumulators under SWIGLU): past that the
    partial products spill to local memory, which costs compile and tuning time and never wins."""
    args = {**named_args, **kwargs}
    cap_k = max(64, triton.next_power_of_2(args["K"]))
    accumulators = 2 if args.get("SWIGLU") else 1

    def fits(c):
        per_thread = c.kwargs["BLOCK_N"] * c.kwargs["BLOCK_K"] // (32 * c.num_warps)
        return c.kwargs["BLOCK_K"] <= cap_k and per_thread * accumulators <= 64

    return [c for c in configs if fits(c)] or configs[:1]


CONFIGS = [
    triton.Config({"BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w)
    for bn in (1, 2, 4, 8, 16)  # 1: a narrow output (x_proj, 160 rows) still fills the SMs
    for bk in (256, 512, 1024)
    for w in (4, 8)
]
_gemv_tuned = triton.autotune(
    CONFIGS, key=["N", "K", "SWIGLU"], prune_configs_by={"early_config_prune": _prune}
)(_gemv)


def _check(x: torch.Tensor, weight: torch.Tensor, name: str) -> None:
    K = x.shape[-1]
    if x.numel() != K:
        raise ValueError(f"gemv takes one row of activations, got shape {tuple(x.shape)}")
    if weight.dim() != 2 or weight.shape[1] != K or weight.stride(1) != 1:
        raise ValueError(
            f"{name} must be [N, {K}] with unit stride along K, got {tuple(weight.shape)} "
            f"strides {weight.stride()}"
        )


def _launch(x, weight, weight2, swiglu: bool) -> torch.Tensor:
    K, N = x.shape[-1], weight.shape[0]
    x = x.contiguous()
    y = torch.empty(*x.shape[:-1], N, dtype=x.dtype, device=x.device)
    args = (x, weight, weight2, y, N, K, weight.stride(0), weight2.stride(0))
    if os.environ.get("TRITON_INTERPRET") == "1" or not AUTOTUNE:
        _gemv[(triton.cdiv(N, FIXED["BLOCK_N"]),)](*args, SWIGLU=swiglu, **FIXED)
    else:
        _gemv_tuned[lambda m: (triton.cdiv(N, m["BLOCK_N"]),)](*args, SWIGLU=swiglu)
    return y


def gemv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x [..., K] holding one row in all, weight [N, K] with unit stride along K -> [..., N] in
    x's dtype (see reference.py)."""
    _check(x, weight, "weight")
    return _launch(x, weight, weight, False)


def gemv_swiglu(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor) -> torch.Tensor:
    """silu(x W_gate^T) * (x W_up^T) for one row x [..., K], both weights [N, K]: a SwiGLU MLP's
    first half in one pass (see reference.py)."""
    _check(x, w_gate, "w_gate")
    _check(x, w_up, "w_up")
    if w_up.shape != w_gate.shape:
        raise ValueError(f"w_up {tuple(w_up.shape)} must match w_gate {tuple(w_gate.shape)}")
    return _launch(x, w_gate, w_up, True)
