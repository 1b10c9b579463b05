"""One Mamba-2 SSD decode step: `ssd_step` (Triton) and its spec `ssd_step_ref`."""

from kernels.ssd_step.reference import ssd_step_ref
from kernels.ssd_step.triton import ssd_step

__all__ = ["ssd_step", "ssd_step_ref"]
