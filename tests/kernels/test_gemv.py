"""The decode step's GEMV (kernels.gemv) against its spec through Triton's interpreter: sizes that
are not multiples of the blocks, fp32 and fp16, a weight with padded rows, one row in any shape."""

from __future__ import annotations

import pytest
import torch

from kernels.gemv import gemv, gemv_ref, gemv_swiglu, gemv_swiglu_ref
from tests.kernels.conftest import assert_close


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float16, 2e-3)])
@pytest.mark.parametrize("N, K", [(1, 1), (7, 100), (33, 257), (64, 64)])
def test_matches_reference(N, K, dtype, tol):
    g = torch.Generator().manual_seed(N * 1000 + K)
    x = torch.randn(1, 1, K, generator=g).to(dtype)
    w = torch.randn(N, K, generator=g).to(dtype)
    out = gemv(x, w)
    assert out.shape == (1, 1, N) and out.dtype == dtype
    assert_close("gemv", out, gemv_ref(x, w), tol)


def test_rows_with_a_stride_past_k_are_read_as_rows():
    # a weight that is a slice of a wider one (rows padded): only each row's first K count
    wide = torch.randn(9, 80)
    wide[:, 70:] = float("nan")  # read past K: NaN in the output
    w = wide[:, :70]
    x = torch.randn(70)
    assert_close("strided weight", gemv(x, w), gemv_ref(x, w), 1e-5)


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="one row"):
        gemv(torch.randn(2, 8), torch.randn(4, 8))
    with pytest.raises(ValueError, match="unit stride along K"):
        gemv(torch.randn(8), torch.randn(8, 4).t())


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float16, 2e-3)])
@pytest.mark.parametrize("N, K", [(7, 100), (48, 32)])
def test_swiglu_matches_reference(N, K, dtype, tol):
    g = torch.Generator().manual_seed(N + K)
    x = torch.randn(1, 1, K, generator=g).to(dtype)
    wg, wu = (torch.randn(N, K, generator=g).to(dtype) for _ in range(2))
    out = gemv_swiglu(x, wg, wu)
    assert_close("gemv_swiglu", out, gemv_swiglu_ref(x, wg, wu), tol)
    with pytest.raises(ValueError, match="must match w_gate"):
        gemv_swiglu(x, wg, wu[:-1])
