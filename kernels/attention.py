"""Causal attention with an explicit backend, for the models and the kernels suite.

Backends: PyTorch SDPA pinned to one implementation (`cudnn`, `flash` = FlashAttention-2 inside
torch, `efficient`, `math`), or the `flash_attn` package when installed. Pinning matters: SDPA's
own choice changes with shape, dtype and torch version, and a benchmark must say what ran.
Layout [B, T, H, D] like everything else in ctxbench; SDPA wants [B, H, T, D], so we transpose.
"""

from __future__ import annotations

import importlib.util

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

SDPA_BACKENDS = {
    "cudnn": SDPBackend.CUDNN_ATTENTION,
    "flash": SDPBackend.FLASH_ATTENTION,
    "efficient": SDPBackend.EFFICIENT_ATTENTION,
    "math": SDPBackend.MATH,
}
BACKENDS = (*SDPA_BACKENDS, "flash_attn")
CUDA_ONLY = {"cudnn", "efficient", "flash_attn"}


def unavailable_reason(backend: str, device: str) -> str | None:
    """None when `backend` can run on `device` ("cuda" or "cpu"), else why not."""
    if backend not in BACKENDS:
        return f"unknown attention backend {backend!r}; valid backends: {', '.join(BACKENDS)}"
    if device != "cuda" and backend in CUDA_ONLY:
        return f"attention backend {backend!r} needs a CUDA GPU"
    if backend == "flash_attn" and importlib.util.find_spec("flash_attn") is None:
        return "attention backend 'flash_attn' needs: pip install flash-attn --no-build-isolation"
    return None


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backend: str, causal: bool = True
) -> torch.Tensor:
    """Scaled dot-product attention.

    q: [B, T, H, D]; k, v: [B, S, Hkv, D] with H divisible by Hkv (grouped-query attention).
    Returns [B, T, H, D]. With causal=True and S > T, query i attends to keys <= S - T + i
    (the queries are the last T positions), which is what decode and chunked prefill need.
    """
    if backend == "flash_attn":
        from flash_attn import flash_attn_func

        return flash_attn_func(q, k, v, causal=causal)
    if backend not in SDPA_BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; valid backends: {BACKENDS}")
    T, S, H, Hkv = q.shape[1], k.shape[1], q.shape[2], k.shape[2]
    if backend == "efficient" and H != Hkv:
        # torch's memory-efficient kernel has no grouped-query path ("No available kernel" on
        # the H100): it gets K and V expanded to every head, a real cost of choosing it.
        k, v = (t.repeat_interleave(H // Hkv, dim=2) for t in (k, v))
        Hkv = H
    q_, k_, v_ = (t.transpose(1, 2) for t in (q, k, v))  # [B, H, T, D]
    mask = None
    is_causal = causal and T == S
    if causal and T != S:
        # queries sit at the end of the key sequence: bottom-right aligned causal mask
        rows = torch.arange(T, device=q.device)[:, None] + (S - T)
        mask = rows >= torch.arange(S, device=q.device)[None, :]  # [T, S]
    with sdpa_kernel([SDPA_BACKENDS[backend]]):
        out = F.scaled_dot_product_attention(
            q_, k_, v_, attn_mask=mask, is_causal=is_causal, enable_gqa=H != Hkv
        )
    return out.transpose(1, 2)  # [B, T, H, D]


def attention_ref(q, k, v, causal: bool = True) -> torch.Tensor:
    """Plain-torch spec of `attention` (fp32 softmax, explicit GQA expansion)."""
    T, S, H, Hkv = q.shape[1], k.shape[1], q.shape[2], k.shape[2]
    k = k.repeat_interleave(H // Hkv, dim=2)
    v = v.repeat_interleave(H // Hkv, dim=2)
    scores = torch.einsum("bthd,bshd->bhts", q.float(), k.float()) / q.shape[-1] ** 0.5
    if causal:
        rows = torch.arange(T, device=q.device)[:, None] + (S - T)
        scores = scores.masked_fill(rows < torch.arange(S, device=q.device)[None, :], float("-inf"))
    return torch.einsum("bhts,bshd->bthd", scores.softmax(-1), v.float()).to(q.dtype)
