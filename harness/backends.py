"""Resolve `backend.*` (attention / ssm / conv) to concrete kernel backends for this hardware.

`auto` picks the fastest correct backend known for the device and the record says which ran;
an explicit choice that cannot run here is a config error, never a silent fallback.
"""

from __future__ import annotations

import kernels
from harness.config import BackendConfig, ConfigError
from harness.env import Hardware
from kernels import attention

AUTO = {
    # cuDNN attention is ~1.8x FlashAttention-2 on Hopper (PEERS.md); older GPUs get FLASH.
    "attention": lambda hw: (
        ("cudnn" if hw.capability >= (9, 0) else "flash") if hw.device == "cuda" else "math"
    ),
    "ssm": lambda hw: "triton" if hw.device == "cuda" else "torch",
    "conv": lambda hw: "triton" if hw.device == "cuda" else "torch",
}
# The op whose registry entry decides whether an ssm / conv backend exists.
REPRESENTATIVE_OP = {"ssm": "ssd", "conv": "conv1d"}


def valid_choices(kind: str) -> list[str]:
    if kind == "attention":
        return [*attention.BACKENDS, "auto"]
    return [*kernels.backends(REPRESENTATIVE_OP[kind]), "auto"]


def check_names(cfg: BackendConfig) -> None:
    """Reject unknown backend names, whether or not this run's measurements use them."""
    for kind in ("attention", "ssm", "conv"):
        value = getattr(cfg, kind)
        if value not in valid_choices(kind):
            raise ConfigError(
                f"backend.{kind}: unknown value {value!r}; valid choices: "
                f"{', '.join(valid_choices(kind))}"
            )


def resolve(cfg: BackendConfig, hw: Hardware) -> dict[str, str]:
    """{"attention": ..., "ssm": ..., "conv": ...} with `auto` replaced; validated."""
    check_names(cfg)
    out = {}
    for kind in ("attention", "ssm", "conv"):
        value = getattr(cfg, kind)
        out[kind] = AUTO[kind](hw) if value == "auto" else value
        reason = unavailable_reason(kind, out[kind], hw.device)
        if reason:
            raise ConfigError(f"backend.{kind}={out[kind]}: {reason}")
    return out


def unavailable_reason(kind: str, backend: str, device: str) -> str | None:
    if kind == "attention":
        return attention.unavailable_reason(backend, device)
    if backend == "triton" and device != "cuda":
        return "Triton kernels need a CUDA GPU (the tests run them on CPU through the interpreter)"
    if backend in kernels.PEER_INSTALL and device != "cuda":
        return f"backend {backend!r} needs a CUDA GPU"
    return kernels.unavailable_reason(REPRESENTATIVE_OP[kind], backend)
