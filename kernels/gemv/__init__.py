"""The decode step's batch-1 matrix-vector product (`gemv`, Triton) and its spec `gemv_ref`.
models/linear.py routes an nn.Linear's one-row calls to it when the model's `decode_gemv` is
"triton"; design and why in triton.py."""

from kernels.gemv.reference import gemv_ref
from kernels.gemv.triton import gemv

__all__ = ["gemv", "gemv_ref"]
