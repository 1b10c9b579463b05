"""The decode step on the plain torch path: the reference the decode suite's canary holds the
fast step (Triton step kernels, fused norms and RoPE, a CUDA-graph replay) against.

Only the decode step's choices are swapped: the torch step kernels (`kernels/*/reference.py`),
the masked-matmul decode attention, F.linear for the one-row products and the unfused step.
The weights and the cache are shared, so a difference is the fast path's, not the inputs'."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import kernels
from models.linear import DecodeLinear

# mixer attribute -> the op it holds (kernels.REGISTRY)
STEP_OPS = {"ssd_step": "ssd_step", "scan_step": "selective_scan_step", "conv_step": "conv1d_step"}


def has_fast_step(model) -> bool:
    """A native model whose step has a path other than the torch one (HF models do not)."""
    return hasattr(model, "layers") and all(hasattr(layer, "mixer") for layer in model.layers)


@contextmanager
def torch_step_path(model) -> Iterator[None]:
    """Within the block, `model.step` runs the torch reference path; restored afterwards."""
    saved = []

    def swap(obj, name, value):
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    try:
        swap(model, "cfg", dataclasses.replace(model.cfg, fused_decode=False))
        for module in model.modules():
            if isinstance(module, DecodeLinear):  # F.linear, not the Triton GEMV
                swap(module, "use_gemv", False)
        for layer in model.layers:
            mixer = layer.mixer
            if hasattr(mixer, "fused"):
                swap(mixer, "fused", False)
            if hasattr(mixer, "decode"):  # attention: the masked matmul over the cache
                swap(mixer, "decode", "matmul")
            for attr, op in STEP_OPS.items():
                if hasattr(mixer, attr):
                    swap(mixer, attr, kernels.get(op, "torch"))
        yield
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)
