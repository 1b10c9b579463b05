"""The decode step's batch-1 matrix-vector product (`gemv`, Triton), a SwiGLU MLP's gate and up
products in one pass (`gemv_swiglu`), and their specs (reference.py).
models/linear.py routes an nn.Linear's one-row calls to it when the model's `decode_gemv` is
"triton"; design and why in triton.py."""

from kernels.gemv.reference import gemv_ref, gemv_swiglu_ref
from kernels.gemv.triton import gemv, gemv_swiglu

__all__ = ["gemv", "gemv_ref", "gemv_swiglu", "gemv_swiglu_ref"]
