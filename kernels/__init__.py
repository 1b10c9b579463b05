"""Kernel registry: for each op, the backends that implement it.

One registry, one place. `get(op, backend)` returns the callable; an unknown op or backend, or a
backend whose package is missing, raises `KernelUnavailable` with the valid names or the install
command, never a silent fallback. Entries are import paths so that optional peers (mamba-ssm, fla,
causal-conv1d, flash-attn) are imported only when asked for.

Every backend of an op takes the same arguments as the op's reference (`kernels/<op>/reference.py`).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable

# op -> backend -> "module:function"
REGISTRY: dict[str, dict[str, str]] = {
    "ssd": {
        "torch": "kernels.ssd.reference:ssd_ref",
        "triton": "kernels.ssd:ssd",
        "mamba_ssm": "kernels.ssd.peers:ssd_mamba_ssm",
        "fla": "kernels.ssd.peers:ssd_fla",
    },
    "ssd_step": {
        "torch": "kernels.ssd_step.reference:ssd_step_ref",
        "triton": "kernels.step_ops:ssd_step",  # compile-aware (kernels/step_ops.py)
    },
    "selective_scan": {
        "torch": "kernels.selective_scan.reference:selective_scan_ref",
        "triton": "kernels.selective_scan:selective_scan",
        "mamba_ssm": "kernels.selective_scan.peers:selective_scan_mamba_ssm",
    },
    "selective_scan_step": {
        "torch": "kernels.selective_scan.reference:selective_scan_step_ref",
        "triton": "kernels.step_ops:selective_scan_step",
    },
    "conv1d": {
        "torch": "kernels.conv1d.reference:causal_conv1d_ref",
        "triton": "kernels.conv1d:causal_conv1d",
        "causal_conv1d": "kernels.conv1d.peers:causal_conv1d_peer",
    },
    "decode_attention": {
        "torch": "kernels.decode_attention.reference:decode_attention_ref",
        "triton": "kernels.decode_attention:decode_attention",
    },
    "conv1d_step": {
        "torch": "kernels.conv1d.reference:causal_conv1d_step_ref",
        "triton": "kernels.step_ops:conv1d_step",
    },
}

# Backends that live outside this project, with the command that installs them.
PEER_INSTALL = {
    "mamba_ssm": "make peers (builds its CUDA for this GPU alone; needs nvcc)",
    "fla": "make peers, or pip install fla-core",
    "causal_conv1d": "make peers (builds its CUDA for this GPU alone; needs nvcc)",
}


class KernelUnavailable(ValueError):
    """The requested op/backend does not exist or cannot be imported here."""


def ops() -> list[str]:
    return sorted(REGISTRY)


def backends(op: str) -> list[str]:
    if op not in REGISTRY:
        raise KernelUnavailable(f"unknown kernel op {op!r}; valid ops: {', '.join(ops())}")
    return sorted(REGISTRY[op])


def get(op: str, backend: str) -> Callable:
    """The callable implementing `op` on `backend`; raises KernelUnavailable with a reason."""
    valid = backends(op)
    if backend not in valid:
        raise KernelUnavailable(
            f"unknown backend {backend!r} for kernel op {op!r}; valid backends: {', '.join(valid)}"
        )
    module_name, func_name = REGISTRY[op][backend].split(":")
    hint = PEER_INSTALL.get(backend)
    try:
        fn = getattr(importlib.import_module(module_name), func_name)
    except ImportError as exc:
        why = f"install it with: {hint}" if hint else f"import failed: {exc}"
        raise KernelUnavailable(
            f"kernel backend {backend!r} for {op!r} is unavailable: {why}"
        ) from exc
    # Peer adapters import their package only when called; they list it in `requires` so a
    # missing package is reported here, before any work, not halfway through a measurement.
    missing = [
        name for name in getattr(fn, "requires", ()) if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise KernelUnavailable(
            f"kernel backend {backend!r} for {op!r} is unavailable: {', '.join(missing)} not "
            f"installed; install it with: {hint}"
        )
    return fn


def unavailable_reason(op: str, backend: str) -> str | None:
    """None when `get(op, backend)` would succeed, else the reason it would not."""
    try:
        get(op, backend)
    except KernelUnavailable as exc:
        return str(exc)
    return None
