"""The spec of the attention decode step's input side, fused by triton.py: split the QKV
projection of one token, rotate q and k (RoPE, rotate-half convention as models/blocks.py), write
k and v into the static KV cache at `pos`, return q."""

from __future__ import annotations

import torch


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [..., D] with cos/sin [D/2] -> (x1 cos - x2 sin, x2 cos + x1 sin), in float32."""
    x1, x2 = x.float().chunk(2, dim=-1)
    cos, sin = cos.float(), sin.float()
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def rope_qkv_step_ref(
    qkv: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    pos: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    heads: int,
    kv_heads: int,
) -> torch.Tensor:
    """qkv [B, 1, (heads + 2 kv_heads) * D], cos/sin [1, D/2] at the position, pos int64 [1],
    caches [B, kv_heads, S, D] -> q [B, heads, D] rotated, in qkv's dtype; the caches get the
    rotated k and v at pos, in their dtype."""
    B = qkv.shape[0]
    D = qkv.shape[-1] // (heads + 2 * kv_heads)
    q, k, v = qkv.view(B, heads + 2 * kv_heads, D).split([heads, kv_heads, kv_heads], dim=1)
    c, s = cos.reshape(-1), sin.reshape(-1)
    k_cache.index_copy_(2, pos, _rotate(k, c, s).to(k_cache.dtype)[:, :, None])
    v_cache.index_copy_(2, pos, v.to(v_cache.dtype)[:, :, None])
    return _rotate(q, c, s).to(qkv.dtype)
