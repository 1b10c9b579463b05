"""Causal conv1d on a real GPU: bf16 at 4K-256K and 1M tokens against the fp32 reference,
state passing and the decode step. Skipped without CUDA.

    .venv/bin/python -m pytest tests/kernels/test_conv1d_gpu.py -q -m gpu
"""

from __future__ import annotations

import pytest
import torch

from kernels.conv1d import causal_conv1d, causal_conv1d_step
from kernels.conv1d.reference import causal_conv1d_ref, causal_conv1d_step_ref
from tests.kernels.conftest import assert_close

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def make(bsz, seqlen, ch, width=4, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)
    x = r(bsz, seqlen, ch).to(torch.bfloat16)
    return x, r(ch, width) * 0.5, r(ch), r(bsz, ch, width - 1).to(torch.bfloat16)


@pytest.mark.parametrize("seqlen", [4096, 65536, 262144])
def test_bf16_vs_fp32_reference(seqlen):
    x, w, b, h0 = make(1, seqlen, 1024)
    y = causal_conv1d(x, w, b, "silu", h0)
    assert_close("y", y, causal_conv1d_ref(x.float(), w, b, "silu", h0.float()), 1e-2)


def test_one_million_tokens_windows():
    # 2^20 x 4096 = 2^32 elements: windows near the end check the 64-bit offsets
    x, w, b, h0 = make(1, 1 << 20, 4096, seed=1)
    y = causal_conv1d(x, w, b, "silu", h0)
    for start in (0, (1 << 19) + 7, (1 << 20) - 1000):
        end = min(start + 1000, x.shape[1])
        init = h0 if start == 0 else x[:, start - 3 : start].transpose(1, 2)
        ref = causal_conv1d_ref(x[:, start:end].float(), w, b, "silu", init.float())
        assert_close(f"y[{start}:{end}]", y[:, start:end], ref, 1e-2)


def test_state_passing():
    x, w, b, h0 = make(2, 8192, 1024, seed=2)
    whole = causal_conv1d(x, w, b, "silu", h0)
    y1, s1 = causal_conv1d(x[:, :5001], w, b, "silu", h0, return_final_state=True)
    y2 = causal_conv1d(x[:, 5001:], w, b, "silu", s1)
    assert torch.equal(torch.cat([y1, y2], 1), whole)


def test_decode_step():
    x, w, b, h0 = make(64, 1, 4096, seed=3)
    state, ref_state = h0.clone(), h0.clone()
    y = causal_conv1d_step(state, x[:, 0], w, b, "silu")
    y_ref = causal_conv1d_step_ref(ref_state, x[:, 0], w, b, "silu")
    assert_close("y", y, y_ref, 1e-2)
    assert torch.equal(state, ref_state)
