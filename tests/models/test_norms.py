"""The norms train in bf16 (autocast hands them bf16 activations on a GPU): their fast paths
must not modify anything autograd keeps for the backward pass."""

from __future__ import annotations

import pytest
import torch

from models.blocks import GatedRMSNorm, RMSNorm


def _ref_rms(x: torch.Tensor, w: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    x32 = x.float()
    return w.float() * x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rmsnorm_backward_matches_reference(dtype):
    torch.manual_seed(0)
    norm = RMSNorm(32)
    x = torch.randn(2, 5, 32, dtype=dtype, requires_grad=True)
    norm(x).float().square().sum().backward()  # raised for bf16 before the fix
    x_ref = x.detach().clone().requires_grad_(True)
    _ref_rms(x_ref, norm.weight.detach()).square().sum().backward()
    tol = 1e-4 if dtype == torch.float32 else 5e-2
    torch.testing.assert_close(x.grad.float(), x_ref.grad.float(), rtol=tol, atol=tol)


def test_gated_rmsnorm_backward_in_bf16_and_inference_path_agrees():
    torch.manual_seed(0)
    norm = GatedRMSNorm(32, group_size=16)
    y = torch.randn(2, 5, 32, dtype=torch.bfloat16, requires_grad=True)
    z = torch.randn(2, 5, 32, dtype=torch.bfloat16, requires_grad=True)
    out = norm(y, z)
    out.float().sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad.float()).all()
    with torch.no_grad():  # the in-place inference path gives the same numbers
        fast = norm(y.detach(), z.detach())
    torch.testing.assert_close(fast.float(), out.detach().float(), rtol=2e-2, atol=2e-2)
