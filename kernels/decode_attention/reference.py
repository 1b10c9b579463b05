"""One attention decode step over a static KV cache, in plain torch: the spec for
`kernels.decode_attention`.

Grouped-query layout, as the models keep it: query heads h = kv_head * G + j for j < G.
    q [B, Hkv, G, D]    k, v [B, Hkv, S, D] (S: the buffer's length)    pos: int64 [1] tensor
The query attends to cache positions 0..pos (the buffer past pos holds nothing yet):
    o[b, h, j] = softmax_s(scale * q[b, h, j] . k[b, h, s], s <= pos) @ v[b, h, s]
"""

from __future__ import annotations

import torch


def decode_attention_ref(q, k, v, pos, scale=None):
    """Returns o [B, Hkv, G, D] in q's dtype; computed in fp32."""
    check_shapes(q, k, v, pos)
    D = q.shape[-1]
    scale = D**-0.5 if scale is None else scale
    scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale  # [B, Hkv, G, S]
    valid = torch.arange(k.shape[2], device=k.device) <= pos.reshape(())
    probs = scores.masked_fill(~valid, float("-inf")).softmax(dim=-1)
    return torch.matmul(probs, v.float()).to(q.dtype)


def check_shapes(q, k, v, pos) -> None:
    if q.dim() != 4 or k.dim() != 4 or k.shape != v.shape:
        raise ValueError(
            f"q must be [B, Hkv, G, D] and k, v [B, Hkv, S, D]; got {tuple(q.shape)}, "
            f"{tuple(k.shape)}, {tuple(v.shape)}"
        )
    B, Hkv, _, D = q.shape
    if (k.shape[0], k.shape[1], k.shape[3]) != (B, Hkv, D):
        raise ValueError(f"k [B, Hkv, S, D] does not match q {tuple(q.shape)}: {tuple(k.shape)}")
    if pos.numel() != 1 or pos.dtype != torch.int64:
        raise ValueError(f"pos must be one int64 element, got {pos.dtype} {tuple(pos.shape)}")
