"""Causal self-attention, Llama style: fused QKV projection, RoPE, grouped-query attention.

The full-sequence path goes through `kernels.attention` with the configured backend (cuDNN, FLASH,
EFFICIENT, MATH or flash-attn). The decode step does not: a CUDA graph needs fixed shapes, so a
step cannot slice the valid prefix `[:pos]` (a host-side shape) nor read `pos` on the host (a
sync); SDPA's FLASH and cuDNN paths take no arbitrary mask, and the EFFICIENT one parallelises
over query blocks, which leaves a 1-token query on a handful of SMs. So the step is one of
(`decode_attention`):
- "triton": `kernels.decode_attention`, split-KV flash decoding that reads `pos` on the device and
  only the valid prefix (the default on a GPU);
- "matmul": two batched matrix products over the whole buffer with a mask by position (the
  default on the CPU); on the GPU cuBLAS runs the long-S reduction far below bandwidth
  (models/README.md);
- "split_s": the same with the probabilities x V product cut along S.
The torch paths read the whole buffer, so callers size the cache to the context they measure
(max_len = prompt + generated tokens).
The KV buffer is [B, Hkv, S, D] (not the project's [B, T, H, D]) so that those matmuls see
contiguous [S, D] matrices per head and need no copy.
"""

from __future__ import annotations

import torch
from torch import nn

from kernels.attention import attention as attention_kernel
from models.blocks import apply_rope, rope_cos_sin

SPLIT_CHUNK = 1024  # tokens per piece of the split-S decode product


class Attention(nn.Module):
    def __init__(self, cfg, backend: str, **kw):
        super().__init__()
        self.heads, self.kv_heads, self.head_dim = cfg.heads, cfg.kv_heads, cfg.head_dim
        self.decode = cfg.decode_attention  # see ModelConfig and the module docstring
        self.fused = cfg.fused_decode  # RoPE + cache write as one kernel in step
        self.theta = cfg.rope_theta
        self.backend = backend
        qkv = (cfg.heads + 2 * cfg.kv_heads) * cfg.head_dim
        self.wqkv = nn.Linear(cfg.d_model, qkv, bias=False, **kw)
        self.wo = nn.Linear(cfg.heads * cfg.head_dim, cfg.d_model, bias=False, **kw)

    def _qkv(self, x: torch.Tensor):
        B, T, _ = x.shape
        H, Hkv, D = self.heads, self.kv_heads, self.head_dim
        q, k, v = self.wqkv(x).split([H * D, Hkv * D, Hkv * D], dim=-1)
        return q.view(B, T, H, D), k.view(B, T, Hkv, D), v.view(B, T, Hkv, D)

    def forward(self, x: torch.Tensor, rope=None, cache=None, **_) -> torch.Tensor:
        """x [B, T, d_model] -> [B, T, d_model]. rope: (cos, sin) [T, D/2] for positions 0..T-1.
        With a cache (KVCache), the keys and values of positions 0..T-1 are written to it."""
        B, T, _ = x.shape
        q, k, v = self._qkv(x)  # [B, T, H, D], [B, T, Hkv, D] x2
        cos, sin = rope
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            cache.k[:, :, :T] = k.transpose(1, 2)  # [B, Hkv, T, D]
            cache.v[:, :, :T] = v.transpose(1, 2)
        o = attention_kernel(q, k, v, backend=self.backend, causal=True)  # [B, T, H, D]
        return self.wo(o.reshape(B, T, -1))

    def step(self, x: torch.Tensor, cache=None, pos=None, rope=None, **_) -> torch.Tensor:
        """One token. x [B, 1, d_model]; pos: int64 [1] device tensor, the token's position;
        rope: (cos, sin) [1, D/2] at pos, computed here when not given.
        Writes K/V at `pos` and attends to positions 0..pos. -> [B, 1, d_model]."""
        B = x.shape[0]
        H, Hkv, D = self.heads, self.kv_heads, self.head_dim
        cos, sin = rope if rope is not None else rope_cos_sin(pos, D, self.theta, x.dtype)
        if self.fused and not torch.compiler.is_compiling():
            from kernels.rope_step import rope_qkv_step

            q = rope_qkv_step(self.wqkv(x), cos, sin, pos, cache.k, cache.v, H, Hkv)
            return self._attend(q.view(B, Hkv, H // Hkv, D).to(cache.k.dtype), cache, pos, x)
        q, k, v = self._qkv(x)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        # [B, Hkv, 1, D] into [B, Hkv, S, D], in the cache's dtype as the prefill's slice writes
        # (under autocast the projections and rope need not agree with it; a no-op when they do)
        cache.k.index_copy_(2, pos, k.transpose(1, 2).to(cache.k.dtype))
        cache.v.index_copy_(2, pos, v.transpose(1, 2).to(cache.v.dtype))
        # heads h = kv_head * (H / Hkv) + j, as SDPA's GQA groups; the kernels take q in K's dtype
        return self._attend(q.view(B, Hkv, H // Hkv, D).to(cache.k.dtype), cache, pos, x)

    def _attend(self, q, cache, pos, x) -> torch.Tensor:
        """q [B, Hkv, G, D] over the cache's positions 0..pos -> wo(o) [B, 1, d_model]."""
        B, Hkv, G, D = q.shape
        way = decode_path(self.decode, x.device.type)
        if way == "triton":
            from kernels.decode_attention import decode_attention, decode_attention_op

            # the registered operator inside torch.compile; the plain launch otherwise (no
            # dispatcher overhead on the host in eager decode)
            call = decode_attention_op if torch.compiler.is_compiling() else decode_attention
            o = call(q, cache.k, cache.v, pos, D**-0.5)
        else:
            o = masked_decode(q, cache.k, cache.v, pos, split=way == "split_s")
        return self.wo(o.reshape(B, 1, Hkv * G * D))


def masked_decode(q, k, v, pos, split: bool = False) -> torch.Tensor:
    """The torch decode paths: q [B, Hkv, G, D] over the whole [B, Hkv, S, D] buffer, positions
    past `pos` masked out; the probabilities x V product split along S when `split`."""
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * q.shape[-1] ** -0.5  # [B, Hkv, G, S]
    valid = torch.arange(k.shape[2], device=q.device) <= pos  # [S]
    probs = scores.masked_fill(~valid, float("-inf")).softmax(dim=-1).to(q.dtype)
    return split_s_pv(probs, v) if split else torch.matmul(probs, v)  # [B, Hkv, G, D]


def decode_path(choice: str, device_type: str) -> str:
    """The decode attention path that runs: "auto" is triton on a GPU, matmul on the CPU (where
    Triton runs only through its interpreter)."""
    if choice == "auto":
        return "triton" if device_type == "cuda" else "matmul"
    return choice


def split_s_pv(probs: torch.Tensor, v: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """probs [B, Hkv, G, S] @ v [B, Hkv, S, D] -> [B, Hkv, G, D], with the long S reduction cut
    into `chunk`-token pieces that run as one batched product each (B x Hkv x S/chunk small
    products rather than B x Hkv long ones), their partial sums added in fp32. Static shapes
    only (the split depends on the buffer's length, never on the position): graph-capturable."""
    B, Hkv, G, S = probs.shape
    D = v.shape[-1]
    chunk = chunk or SPLIT_CHUNK
    main = S - S % chunk
    out = torch.zeros(B, Hkv, G, D, dtype=torch.float32, device=v.device)
    if main:
        n = main // chunk
        p = probs[..., :main].reshape(B, Hkv, G, n, chunk).transpose(2, 3)  # [B, Hkv, n, G, c]
        vv = v[:, :, :main].reshape(B, Hkv, n, chunk, D)  # a view: v is contiguous
        out += torch.matmul(p, vv).sum(2, dtype=torch.float32)
    if main < S:
        out += torch.matmul(probs[..., main:], v[:, :, main:]).float()
    return out.to(v.dtype)
