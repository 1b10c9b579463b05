"""The decode GEMV on a real GPU: bf16 at the 1.3B models' projection shapes against the fp32
reference, autotuned, and inside a CUDA-graph replay. Skipped without CUDA.

    .venv/bin/python -m pytest tests/kernels/test_gemv_gpu.py -q -m gpu
"""

from __future__ import annotations

import pytest
import torch

from kernels.gemv import gemv, gemv_ref, gemv_swiglu, gemv_swiglu_ref
from tests.kernels.conftest import assert_close

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("N, K", [(8512, 2048), (2048, 4096), (160, 4096), (50280, 2048)])
def test_bf16_vs_fp32_reference(N, K):
    g = torch.Generator(device="cuda").manual_seed(N + K)
    x = torch.randn(1, 1, K, device="cuda", generator=g).to(torch.bfloat16)
    w = (torch.randn(N, K, device="cuda", generator=g) * K**-0.5).to(torch.bfloat16)
    assert_close(f"{N}x{K}", gemv(x, w), gemv_ref(x, w), 1e-2)


def test_cuda_graph_replay_reads_the_new_input():
    x = torch.randn(1, 2048, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(4096, 2048, device="cuda", dtype=torch.bfloat16)
    gemv(x, w)  # autotune outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = gemv(x, w)
    x.copy_(torch.randn_like(x))
    graph.replay()
    assert_close("replay", y, gemv_ref(x, w), 1e-2)


def test_swiglu_bf16_at_the_mlp_shape():
    g = torch.Generator(device="cuda").manual_seed(1)
    x = torch.randn(1, 1, 2048, device="cuda", generator=g).to(torch.bfloat16)
    wg, wu = ((torch.randn(5632, 2048, device="cuda", generator=g) * 2048**-0.5).to(torch.bfloat16)
              for _ in range(2))  # fmt: skip
    assert_close("swiglu", gemv_swiglu(x, wg, wu), gemv_swiglu_ref(x, wg, wu), 1e-2)
