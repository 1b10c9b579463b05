"""The attention decode step's input side fused (`rope_qkv_step`): split the token's QKV, rotate
q and k, write k and v into the static cache at the device-side position, return q. Inference
only, CUDA or Triton's interpreter; `reference.py` is the spec. models/attention.py uses it when
the model's `fused_decode` is set."""

from __future__ import annotations

from kernels.rope_step.reference import rope_qkv_step_ref
from kernels.rope_step.triton import rope_qkv_step

__all__ = ["rope_qkv_step", "rope_qkv_step_ref"]
