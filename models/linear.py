"""nn.Linear layers whose one-row calls (the batch-1 decode step; a batch-1 prefill's last-token
logits) run the Triton GEMV (kernels/gemv) when the model's `decode_gemv` is "triton"; every other
call (a prefill's many rows, training) stays on F.linear (cuBLAS)."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn


def _on_kernel_device(x: torch.Tensor) -> bool:
    # a GPU, or Triton's CPU interpreter (the tests)
    return x.is_cuda or os.environ.get("TRITON_INTERPRET") == "1"


class DecodeLinear(nn.Linear):
    """An nn.Linear without bias holding the same weight Parameter (same state_dict key, a tied
    lm_head stays tied); a single row without autograd or torch.compile takes the GEMV."""

    use_gemv = True  # the canary's torch reference step turns it off (models/reference_step.py)

    def takes_gemv(self, x: torch.Tensor) -> bool:
        """One row, no autograd, compile or autocast (which would change the output dtype), the
        weight's dtype and unit stride along K: anything else is F.linear's."""
        return (
            self.use_gemv
            and x.numel() == self.in_features
            and x.dtype == self.weight.dtype
            and self.weight.stride(1) == 1
            and _on_kernel_device(x)
            and not torch.is_grad_enabled()
            and not torch.compiler.is_compiling()
            and not torch.is_autocast_enabled(x.device.type)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.takes_gemv(x):
            from kernels.gemv import gemv

            return gemv(x, self.weight)
        return F.linear(x, self.weight)


def swiglu_gemv(gate: nn.Module, up: nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """silu(gate(x)) * up(x) as one kernel where both take the GEMV for x (a SwiGLU MLP in the
    decode step: one launch instead of two GEMVs and two elementwise kernels); None otherwise."""
    if isinstance(gate, DecodeLinear) and isinstance(up, DecodeLinear) and gate.takes_gemv(x):
        from kernels.gemv import gemv_swiglu

        return gemv_swiglu(x, gate.weight, up.weight)
    return None


def use_decode_gemv(model: nn.Module) -> None:
    """Swap every bias-free nn.Linear under `model` for a DecodeLinear on the same weight."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear and child.bias is None:
                new = DecodeLinear(child.in_features, child.out_features, bias=False, device="meta")
                new.weight = child.weight
                setattr(parent, name, new)
