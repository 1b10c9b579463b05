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


@pytest.mark.parametrize("swiglu", [False, True])
def test_every_autotune_config_computes_the_same(swiglu):
    """The GPU picks among CONFIGS; each must be right (K past one slice for the narrow ones, N
    not a multiple of any BLOCK_N), so the tuner can only choose speed, never a wrong answer."""
    import triton

    from kernels.gemv import triton as kt

    N, K = 19, 300
    g = torch.Generator().manual_seed(5)
    x = torch.randn(K, generator=g)
    w, w2 = torch.randn(N, K, generator=g), torch.randn(N, K, generator=g)
    ref = gemv_swiglu_ref(x, w, w2) if swiglu else gemv_ref(x, w)
    for c in kt.CONFIGS:
        y = torch.full((N,), float("nan"))  # an unwritten output row shows
        grid = (triton.cdiv(N, c.kwargs["BLOCK_N"]),)
        kt._gemv[grid](x, w, w2, y, N, K, K, K, SWIGLU=swiglu, num_warps=c.num_warps, **c.kwargs)
        assert_close(f"{c}", y, ref, 1e-5)


def test_prune_keeps_slices_within_k_and_accumulators_within_registers():
    from kernels.gemv import triton as kt

    kept = kt._prune(kt.CONFIGS, {"K": 300, "SWIGLU": False})
    assert kept and all(c.kwargs["BLOCK_K"] <= 512 for c in kept)
    wide = kt._prune(kt.CONFIGS, {"K": 8192, "SWIGLU": False})
    per_thread = lambda c: c.kwargs["BLOCK_N"] * c.kwargs["BLOCK_K"] // (32 * c.num_warps)
    assert max(map(per_thread, wide)) == 64
    both = kt._prune(kt.CONFIGS, {"K": 8192, "SWIGLU": True})
    assert both and max(map(per_thread, both)) == 32 and len(both) < len(wide)
