"""The fused add + RMSNorm on a GPU: bf16 at the 1.3B presets' width against the fp32 reference,
and a model's fused decode step captured in a CUDA graph (as the decode suite runs it)."""

from __future__ import annotations

import pytest
import torch

from kernels.norm import add_rmsnorm, add_rmsnorm_ref
from tests.kernels.conftest import assert_close

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("rows", [1, 64])
def test_bf16_against_the_fp32_reference(rows):
    g = torch.Generator(device="cuda").manual_seed(rows)
    x, res = (torch.randn(rows, 1, 2048, generator=g, device="cuda") for _ in range(2))
    w = 1 + 0.1 * torch.randn(2048, generator=g, device="cuda")
    want, _ = add_rmsnorm_ref(x, res.clone(), w, 1e-5)
    got, s = add_rmsnorm(x.bfloat16(), res.bfloat16(), w.bfloat16(), 1e-5)
    assert_close("normed", got, want, 1e-2)
    assert_close("sum", s, x + res, 1e-2)


def test_fused_decode_step_in_a_cuda_graph():
    """The decode suite's Stepper (warm-up, capture, replay) over the fused and the plain step of
    one model's weights: the same logits in bf16."""
    import models
    from suites.decode import Stepper
    from tests.models.conftest import TINY

    torch.manual_seed(0)
    # the Triton kernels want an SSD chunk and an attention head dim of 16 or more
    cfg = {**TINY, "n_layer": 4, "chunk_size": 16, "heads": 2, "kv_heads": 1}
    make = lambda **kw: models.create(  # noqa: E731
        "hybrid_30", device="cuda", dtype=torch.bfloat16, **cfg, **kw
    ).eval()
    plain, fused = make(), make(fused_decode=True)
    fused.load_state_dict(plain.state_dict())
    ids = torch.randint(0, TINY["vocab_size"], (2, 8), device="cuda")
    out = []
    for m in (plain, fused):
        cache = m.allocate_cache(2, 16)
        with torch.inference_mode():
            m.prefill(ids[:, :6], cache)
        out.append(Stepper(m, cache, ids[:, 6:7].clone(), graphs=True)().float().clone())
    assert_close("fused vs plain, graph replay", out[1], out[0], 2e-2)
