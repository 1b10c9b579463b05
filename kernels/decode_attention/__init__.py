"""Attention decode step over a static KV cache: `decode_attention` (Triton, split-KV) and its
spec `decode_attention_ref`. Layout and semantics in reference.py, design in triton.py.

`decode_attention_op` is the same kernel registered as the torch operator
`ctxbench::decode_attention`, so that torch.compile keeps it whole inside a compiled step rather
than breaking the graph at a Python kernel launch.
"""

import torch

from kernels.decode_attention.reference import decode_attention_ref
from kernels.decode_attention.triton import DecodeAttnConfig, decode_attention

__all__ = ["DecodeAttnConfig", "decode_attention", "decode_attention_op", "decode_attention_ref"]


@torch.library.custom_op("ctxbench::decode_attention", mutates_args=())
def decode_attention_op(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, pos: torch.Tensor, scale: float
) -> torch.Tensor:
    return decode_attention(q, k, v, pos, scale)


@decode_attention_op.register_fake
def _(q, k, v, pos, scale):
    return q.new_empty(q.shape)
