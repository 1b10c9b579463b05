"""The fused residual add + RMSNorm against its reference (through Triton's interpreter on the
CPU): odd widths, several rows, with and without a residual, fp32 and fp16, unwritten outputs
caught as NaN, the residual updated in place."""

from __future__ import annotations

import pytest
import torch

from kernels.norm import add_rmsnorm, add_rmsnorm_ref, gated_rmsnorm, gated_rmsnorm_ref

from .conftest import assert_close

DEV = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float16, 2e-3)])
@pytest.mark.parametrize("shape", [(1, 1, 64), (3, 1, 100), (2, 5, 257)])
@pytest.mark.parametrize("with_residual", [True, False])
def test_matches_reference(nan_empty, dtype, tol, shape, with_residual):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=g).to(DEV, dtype)
    res = torch.randn(*shape, generator=g).to(DEV, dtype) if with_residual else None
    w = (1 + 0.1 * torch.randn(shape[-1], generator=g)).to(DEV, dtype)
    want_y, want_s = add_rmsnorm_ref(x, None if res is None else res.clone(), w, 1e-5)
    y, s = add_rmsnorm(x, res, w, 1e-5)
    assert y.dtype == dtype and y.shape == x.shape
    assert_close("normed", y, want_y, tol)
    assert_close("sum", s, want_s, tol)
    if with_residual:
        assert s.data_ptr() == res.data_ptr()  # the residual stream, updated in place
    else:
        assert s is x


def test_shapes_are_checked():
    x = torch.randn(2, 1, 8, device=DEV)
    with pytest.raises(ValueError, match="weight: shape"):
        add_rmsnorm(x, None, torch.ones(9, device=DEV), 1e-5)
    with pytest.raises(ValueError, match="residual: shape"):
        add_rmsnorm(x, torch.randn(2, 2, 8, device=DEV), torch.ones(8, device=DEV), 1e-5)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float16, 2e-3)])
@pytest.mark.parametrize("rows, D, group", [(1, 64, 64), (3, 96, 32), (2, 40, 20)])
def test_gated_norm_matches_reference(nan_empty, dtype, tol, rows, D, group):
    g = torch.Generator().manual_seed(D + group)
    y, z = (torch.randn(rows, 1, D, generator=g).to(DEV, dtype) for _ in range(2))
    w = (1 + 0.1 * torch.randn(D, generator=g)).to(DEV, dtype)
    got = gated_rmsnorm(y, z, w, group, 1e-5)
    assert got.dtype == dtype and got.shape == y.shape
    assert_close("gated norm", got, gated_rmsnorm_ref(y, z, w, group, 1e-5), tol)
    with pytest.raises(ValueError, match="multiple of group_size"):
        gated_rmsnorm(y, z, w, 7, 1e-5)


def test_gated_norm_reference_is_the_models_norm():
    """The spec equals the module the unfused step runs (models/blocks.GatedRMSNorm)."""
    from models.blocks import GatedRMSNorm

    norm = GatedRMSNorm(48, 16)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        y, z = torch.randn(2, 3, 48), torch.randn(2, 3, 48)
        assert_close("spec", gated_rmsnorm_ref(y, z, norm.weight, 16, norm.eps), norm(y, z), 1e-6)
