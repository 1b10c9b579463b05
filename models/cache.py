"""Decode caches: static buffers allocated once, before prefill, so a decode step can be captured
in a CUDA graph (no allocation, no shape change, the position lives in a device tensor).

- attention layers: KVCache, K and V as [B, Hkv, max_len, D] (see models/attention.py for why);
- Mamba layers: SSMState, the conv state (the last d_conv - 1 inputs of the conv) and the SSM
  state ([B, H, P, N] for Mamba-2, [B, d_inner, N] for Mamba-1, float32 by default);
- MLP layers hold nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class KVCache:
    k: torch.Tensor  # [B, Hkv, S, D]
    v: torch.Tensor  # [B, Hkv, S, D]


@dataclass
class SSMState:
    conv: torch.Tensor  # [B, C, d_conv - 1], C = conv channels
    ssm: torch.Tensor  # [B, H, P, N] (Mamba-2) or [B, d_inner, N] (Mamba-1)


@dataclass
class Cache:
    batch: int
    max_len: int
    pos: torch.Tensor  # int64 [1]: tokens already in the cache (the next token's position)
    layers: list = field(default_factory=list)  # per layer: KVCache | SSMState | None

    def nbytes(self) -> dict[str, int]:
        """Bytes of the buffers by component: kv_cache, ssm_state, conv_state, total."""
        out = {"kv_cache": 0, "ssm_state": 0, "conv_state": 0}
        for c in self.layers:
            if isinstance(c, KVCache):
                out["kv_cache"] += _nbytes(c.k) + _nbytes(c.v)
            elif isinstance(c, SSMState):
                out["ssm_state"] += _nbytes(c.ssm)
                out["conv_state"] += _nbytes(c.conv)
        out["total"] = sum(out.values())
        return out

    def rewind(self, to: int) -> bool:
        """Back to position `to` if nothing recurrent is held (attention only: positions past it
        are masked, and the K/V before it are what a prefill of `to` tokens writes, causality);
        False, and nothing changed, where an SSM state has already absorbed later tokens."""
        if any(isinstance(c, SSMState) for c in self.layers):
            return False
        self.pos.fill_(to)
        return True

    def states(self) -> list[torch.Tensor]:
        """The recurrent tensors (every SSM layer's conv and SSM state): what a step changes
        besides one K/V slot and the position."""
        return [t for c in self.layers if isinstance(c, SSMState) for t in (c.conv, c.ssm)]

    def reset(self) -> None:
        """Empty the cache (position 0). Stale K/V are masked by position; states are zeroed."""
        self.pos.zero_()
        for t in self.states():
            t.zero_()


def _nbytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def allocate(cfg, batch: int, max_len: int, dtype: torch.dtype, device) -> Cache:
    """Buffers for every layer of `cfg.pattern`; K/V and conv state in `dtype`, SSM state in
    cfg.ssm_state_dtype."""
    state_dtype = DTYPES[cfg.ssm_state_dtype]
    kw = {"device": device}
    layers = []
    for letter in cfg.pattern:
        if letter == "A":
            shape = (batch, cfg.kv_heads, max_len, cfg.head_dim)
            layers.append(
                KVCache(
                    torch.zeros(shape, dtype=dtype, **kw), torch.zeros(shape, dtype=dtype, **kw)
                )
            )
        elif letter == "M":
            conv_dim = cfg.d_inner + 2 * cfg.ngroups * cfg.d_state
            layers.append(
                SSMState(
                    torch.zeros(conv_state_shape(batch, conv_dim, cfg.d_conv), dtype=dtype, **kw),
                    torch.zeros(
                        batch, cfg.nheads_ssm, cfg.headdim, cfg.d_state, dtype=state_dtype, **kw
                    ),
                )
            )
        elif letter == "S":
            layers.append(
                SSMState(
                    torch.zeros(
                        conv_state_shape(batch, cfg.d_inner, cfg.d_conv), dtype=dtype, **kw
                    ),
                    torch.zeros(batch, cfg.d_inner, cfg.d_state_m1, dtype=state_dtype, **kw),
                )
            )
        else:
            layers.append(None)
    return Cache(batch, max_len, torch.zeros(1, dtype=torch.int64, **kw), layers)


def conv_state_shape(batch: int, channels: int, width: int) -> tuple[int, int, int]:
    return (batch, channels, width - 1)


def conv_state_from(x: torch.Tensor, width: int) -> torch.Tensor:
    """The conv state after a sequence: its last width-1 inputs, zero-padded on the left when the
    sequence is shorter. x [B, T, C] -> [B, C, width - 1]."""
    tail = x[:, -(width - 1) :].transpose(1, 2)  # [B, C, min(T, width-1)]
    return F.pad(tail, (width - 1 - tail.shape[-1], 0))
