"""Attention decode step on a real GPU: bf16 at the 1.3B Transformer's shape (4 KV heads x 4
query heads x 128) up to 1M cached tokens against the fp32 reference, and a CUDA-graph replay that
follows a position tensor changed between replays. Skipped without CUDA.

    .venv/bin/python -m pytest tests/kernels/test_decode_attention_gpu.py -q -m gpu
"""

from __future__ import annotations

import pytest
import torch

from kernels.decode_attention import decode_attention, decode_attention_ref
from tests.kernels.conftest import assert_close

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def make(B, S, Hkv=4, G=4, D=128, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *s: torch.randn(*s, device="cuda", generator=g).to(torch.bfloat16)
    return r(B, Hkv, G, D), r(B, Hkv, S, D), r(B, Hkv, S, D)


@pytest.mark.parametrize("B,S", [(1, 4096), (1, 65537), (8, 65536), (1, 1 << 20)])
def test_bf16_vs_fp32_reference(B, S):
    q, k, v = make(B, S)
    for pos in (0, S // 3, S - 1):
        p = torch.tensor([pos], device="cuda")
        out = decode_attention(q, k, v, p)
        assert_close(f"S={S} pos={pos}", out, decode_attention_ref(q, k, v, p), 1e-2)


def test_cuda_graph_replay_follows_pos():
    q, k, v = make(2, 8192)
    pos = torch.tensor([100], device="cuda")
    decode_attention(q, k, v, pos)  # compile outside the capture
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = decode_attention(q, k, v, pos)
    for p in (100, 5000, 8191, 0):
        pos.fill_(p)
        graph.replay()
        assert_close(f"replay pos={p}", out, decode_attention_ref(q, k, v, pos), 1e-2)
