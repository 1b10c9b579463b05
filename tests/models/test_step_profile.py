"""The decode-step profile's arithmetic (the trace itself needs a GPU: models/step_profile.py)."""

import pytest

from models.step_profile import is_gemm, per_step


def test_per_step_averages_kernels_over_steps_and_splits_out_the_gemms():
    events = [
        ("sm90_xmma_gemm_bf16bf16_bf16f32", 10.0),
        ("sm90_xmma_gemm_bf16bf16_bf16f32", 12.0),
        ("_add_rmsnorm_kernel", 2.0),
        ("_add_rmsnorm_kernel", 2.0),
        ("_ssd_step_kernel", 4.0),
        ("_ssd_step_kernel", 6.0),
    ]
    s = per_step(events, steps=2)
    assert s["kernel_us"] == pytest.approx(18.0)
    assert s["gemm_us"] == pytest.approx(11.0)
    assert s["launches"] == pytest.approx(3.0)
    assert [r["kernel"] for r in s["top"]][0].startswith("sm90_xmma_gemm")


@pytest.mark.parametrize(
    "name, gemm",
    [
        ("nvjet_tst_64x8_64x16_4x1_v_bz_TNT", True),
        ("cutlass_80_wmma_tensorop_bf16_s161616gemm", True),
        ("gemv2T_kernel_val<int, int, __nv_bfloat16>", True),
        ("_scan_step_kernel", False),
        ("vectorized_elementwise_kernel", False),
    ],
)
def test_gemm_kernels_are_recognised_by_name(name, gemm):
    assert is_gemm(name) is gemm


@pytest.mark.parametrize("name", ["transformer", "mamba2", "hybrid_1_7"])
def test_timed_step_generates_past_the_context_within_the_cache(name):
    # the profile's timed generations run GEN tokens past L: a cache of L + 8 made the GPU
    # profile write K/V out of bounds (device-side assert, 2026-12-01)
    from models.step_profile import GEN, timed_step
    from tests.models.conftest import TINY

    model, cache, ids, ms = timed_step(name, "130m", 16, False, "cpu", n_layer=2, **TINY)
    assert ms > 0
    assert cache.max_len >= 16 + GEN


@pytest.mark.parametrize("tied", [True, False])
def test_gemm_bytes_count_linear_weights_once_and_not_an_untied_embedding(tied):
    import models
    from models.step_profile import gemm_weight_bytes

    m = models.config("transformer", "1.3b", tie_embeddings=tied).build(meta=True)
    embedding = m.embedding.weight.numel() * m.embedding.weight.element_size()
    matrices = sum(p.numel() * p.element_size() for p in m.parameters() if p.dim() == 2)
    assert gemm_weight_bytes(m) == matrices - (0 if tied else embedding)  # norms are vectors
