"""Attention decode step over a static KV cache: `decode_attention` (Triton, split-KV) and its
spec `decode_attention_ref`. Layout and semantics in reference.py, design in triton.py."""

from kernels.decode_attention.reference import decode_attention_ref
from kernels.decode_attention.triton import DecodeAttnConfig, decode_attention

__all__ = ["DecodeAttnConfig", "decode_attention", "decode_attention_ref"]
