"""Small building blocks shared by the mixers: RMSNorm, gated RMSNorm, SwiGLU MLP, RoPE.

Norms take their statistics in float32. In float32 they compute exactly what transformers' Llama
and Mamba norms compute; in bf16/fp16 they avoid materialising a float32 copy of the activations
(at 1M tokens x 2048 channels that copy alone is 8 GB).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.linear import swiglu_gemv


def _inv_rms(x: torch.Tensor, eps: float) -> torch.Tensor:
    """1 / rms(x) over the last dim, float32: [..., D] -> [..., 1]."""
    if x.dtype == torch.float32:
        return torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=torch.float32)
    # autograd keeps `norm` for vector_norm's backward: square it in place only without autograd
    sq = norm.square() if torch.is_grad_enabled() else norm.square_()
    return torch.rsqrt(sq / x.shape[-1] + eps)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5, **kw):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, **kw))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inv = _inv_rms(x, self.eps)  # [..., 1] float32
        if torch.is_grad_enabled():
            return self.weight * (x * inv).to(x.dtype)
        return (x * inv.to(x.dtype)).mul_(self.weight)  # one [..., D] buffer, in x's dtype


class GatedRMSNorm(nn.Module):
    """Mamba-2's output norm: rmsnorm(y * silu(z)) per channel group (norm_before_gate=False)."""

    def __init__(self, dim: int, group_size: int, eps: float = 1e-5, **kw):
        super().__init__()
        self.eps, self.group_size = eps, group_size
        self.weight = nn.Parameter(torch.ones(dim, **kw))

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """y, z: [B, T, D_inner] -> [B, T, D_inner] in y's dtype."""
        grad = torch.is_grad_enabled()
        g = y * F.silu(z) if grad else F.silu(z).mul_(y)
        grouped = g.view(*g.shape[:-1], -1, self.group_size)  # [B, T, G, D_inner / G]
        inv = _inv_rms(grouped, self.eps)  # [B, T, G, 1] float32
        if grad:
            return self.weight * (grouped * inv).to(y.dtype).view_as(g)
        return grouped.mul_(inv.to(y.dtype)).view_as(g).mul_(self.weight)


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x)). Without autograd, long inputs run `chunk` tokens at a
    time: the MLP is position-wise, and its [T, d_ff] intermediates dominate memory at long T."""

    def __init__(self, d_model: int, d_ff: int, chunk: int = 65536, **kw):
        super().__init__()
        self.chunk = chunk
        self.gate = nn.Linear(d_model, d_ff, bias=False, **kw)
        self.up = nn.Linear(d_model, d_ff, bias=False, **kw)
        self.down = nn.Linear(d_ff, d_model, bias=False, **kw)

    def _mlp(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.down(F.silu(self.gate(x)) * self.up(x))
        h = F.silu(self.gate(x), inplace=True)
        return self.down(h.mul_(self.up(x)))

    def forward(self, x: torch.Tensor, **_) -> torch.Tensor:
        """x: [B, T, d_model] -> [B, T, d_model]."""
        T = x.shape[1]
        if torch.is_grad_enabled() or T <= self.chunk:
            return self._mlp(x)
        out = torch.empty_like(x)
        for s in range(0, T, self.chunk):
            out[:, s : s + self.chunk] = self._mlp(x[:, s : s + self.chunk])
        return out

    def step(self, x: torch.Tensor, cache=None, pos=None, **_) -> torch.Tensor:
        h = swiglu_gemv(self.gate, self.up, x)  # decode_gemv=triton, one row: one kernel
        return self._mlp(x) if h is None else self.down(h)


def rope_angles(positions: torch.Tensor, head_dim: int, theta: float) -> torch.Tensor:
    """positions [T] (any int/float dtype) -> angles [T, head_dim / 2] float32, as Llama computes
    them (float32 positions times float32 inverse frequencies)."""
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device=positions.device).float()
    inv_freq = 1.0 / (theta ** (exponents / head_dim))  # [D/2]
    return positions.float()[:, None] * inv_freq[None, :]


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float, dtype: torch.dtype):
    """-> (cos, sin), each [T, head_dim / 2] in `dtype`."""
    angles = rope_angles(positions, head_dim, theta)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x [B, T, H, D], cos/sin [T, D/2] -> x rotated (Llama's rotate-half convention)."""
    x1, x2 = x.chunk(2, dim=-1)  # [B, T, H, D/2] each
    cos, sin = cos[:, None, :], sin[:, None, :]  # [T, 1, D/2]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def step_decay_rates(mixer: nn.Module) -> torch.Tensor:
    """-exp(A_log) in float32 for a decode step, computed once per value of `mixer.A_log`.

    Per step it cost three kernels a layer (a float copy, exp, negation): 0.28 ms of Mamba-2's
    1.95 ms step at batch 1 on the H200 (models/step_profile.py). The memo is keyed on A_log's
    storage and version counter and holds a view of that storage, so the address cannot be
    reused by other data while the memo lives: an in-place change through the parameter (an
    optimizer step, load_state_dict) or a move recomputes it. Not seen: writes through
    `A_log.data`, which bypass the version counter. Where autograd records, torch.compile traces,
    or A_log is an inference tensor (no version counter), it is computed as before. A CUDA graph
    captured after a first step reads the memo's tensor: capture again after changing A_log."""
    a_log = mixer.A_log
    if torch.is_grad_enabled() or torch.compiler.is_compiling() or a_log.is_inference():
        return -torch.exp(a_log.float())
    key = (a_log.device, a_log.data_ptr(), a_log._version)
    memo = mixer.__dict__.get("_step_decay_memo")
    if memo is None or memo[0] != key:
        # a plain attribute (not state, not moved); the detached view keeps the storage alive
        memo = (key, a_log.detach(), -torch.exp(a_log.float()))
        mixer.__dict__["_step_decay_memo"] = memo
    return memo[2]
