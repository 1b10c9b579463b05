"""NVML access for workers: the handle of the GPU this process measures on, and its counters.

NVML numbers GPUs physically; CUDA numbers the visible ones. With CUDA_VISIBLE_DEVICES=3 a
worker's cuda:0 is NVML's 3, so we map through that variable (numeric form) when it is set.
"""

from __future__ import annotations

import os
from typing import Any


def nvml_index(cuda_index: int = 0) -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    parts = [p.strip() for p in visible.split(",") if p.strip()]
    if parts and all(p.isdigit() for p in parts) and cuda_index < len(parts):
        return int(parts[cuda_index])
    return cuda_index


def handle(cuda_index: int = 0) -> Any | None:
    """An NVML device handle, or None where NVML is unavailable (CPU machines)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        return pynvml.nvmlDeviceGetHandleByIndex(nvml_index(cuda_index))
    except Exception:
        return None


def used_bytes(cuda_index: int = 0) -> int | None:
    h = handle(cuda_index)
    if h is None:
        return None
    import pynvml

    return int(pynvml.nvmlDeviceGetMemoryInfo(h).used)
