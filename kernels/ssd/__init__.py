"""Mamba-2 SSD chunked scan: `ssd` (Triton forward, autograd backward) and its spec `ssd_ref`.

`set_autotune(False)` switches the Triton kernels to their fixed configs (deterministic benchmarks).
"""

from kernels.ssd.reference import ssd_recurrent_ref, ssd_ref
from kernels.ssd.triton import set_autotune, ssd

__all__ = ["ssd", "ssd_ref", "ssd_recurrent_ref", "set_autotune"]
