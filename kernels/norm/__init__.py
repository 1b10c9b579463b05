"""Residual add + RMSNorm fused (`add_rmsnorm`) and Mamba-2's gated group norm in one launch
(`gated_rmsnorm`), for the decode step: inference only (no gradient), CUDA or Triton's
interpreter. `reference.py` is the spec; models/stack.py uses it when
the model's `fused_decode` is set (with kernels/rope_step)."""

from __future__ import annotations

from kernels.norm.reference import add_rmsnorm_ref, gated_rmsnorm_ref
from kernels.norm.triton import add_rmsnorm_fwd as add_rmsnorm
from kernels.norm.triton import gated_rmsnorm_fwd as gated_rmsnorm

__all__ = ["add_rmsnorm", "add_rmsnorm_ref", "gated_rmsnorm", "gated_rmsnorm_ref"]
