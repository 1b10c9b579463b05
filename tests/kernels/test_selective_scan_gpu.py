"""Selective scan on a real GPU: bf16 at 4K-256K and 1M tokens against an fp32 reference,
state passing, decode step, gradients. Skipped without CUDA.

    .venv/bin/python -m pytest tests/kernels/test_selective_scan_gpu.py -q -m gpu
"""

from __future__ import annotations

import pytest
import torch

from kernels.selective_scan import ScanConfig, selective_scan, selective_scan_step
from kernels.selective_scan.chunked import selective_scan_chunked
from kernels.selective_scan.reference import selective_scan_ref, selective_scan_step_ref
from tests.kernels.conftest import assert_close

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def make(bsz, seqlen, dc, n=16, dtype=torch.bfloat16, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)
    return {
        "u": r(bsz, seqlen, dc).to(dtype),
        "delta": (r(bsz, seqlen, dc) - 2.0).to(dtype),  # softplus(-2 + bias) ~ 0.13: Mamba-like
        "A": -torch.rand(dc, n, device="cuda", generator=g) * 4 - 0.1,
        "B": r(bsz, seqlen, n).to(dtype),
        "C": r(bsz, seqlen, n).to(dtype),
        "D": r(dc),
        "z": r(bsz, seqlen, dc).to(dtype),
        "delta_bias": 0.5 * r(dc),
        "delta_softplus": True,
        "initial_state": r(bsz, dc, n),
    }


def channel_slice(x, sel):
    """The inputs restricted to channels `sel`: channels are independent in the scan."""
    per_channel = {"u", "delta", "z"}
    out = {}
    for k, v in x.items():
        if k in per_channel:
            out[k] = v[..., sel]
        elif k in ("A", "D", "delta_bias"):
            out[k] = v[sel]
        elif k == "initial_state":
            out[k] = v[:, sel]
        else:
            out[k] = v
    return out


def check_sampled(x, y, last, n_sample=24, tol=1e-2):
    dc = x["u"].shape[-1]
    sel = torch.linspace(0, dc - 1, n_sample, device="cuda").long()  # includes the last channel
    with torch.no_grad():
        fp32 = {
            k: (v.float() if torch.is_tensor(v) else v) for k, v in channel_slice(x, sel).items()
        }
        y_ref, last_ref = selective_scan_chunked(**fp32, return_last_state=True, chunk_size=1024)
    assert_close("y (sampled channels)", y[..., sel], y_ref, tol)
    assert_close("last state (sampled channels)", last[:, sel], last_ref, 1e-3)
    tail = slice(y.shape[1] - 2048, y.shape[1])  # the far end, where 32-bit offsets would wrap
    assert_close("y tail", y[:, tail][..., sel], y_ref[:, tail], tol)


@pytest.mark.parametrize("seqlen", [4096, 65536, 262144])
def test_bf16_long_vs_fp32_reference(seqlen):
    x = make(1, seqlen, 1024)
    y, last = selective_scan(**x, return_last_state=True)
    assert torch.isfinite(y).all()
    check_sampled(x, y, last)


def test_batch_4_at_256k():
    x = make(4, 262144, 512, seed=2)
    y, last = selective_scan(**x, return_last_state=True)
    check_sampled(x, y, last, n_sample=8)


def test_one_million_tokens():
    # 2^20 tokens x 4096 channels = 2^32 elements per tensor: past every 32-bit offset
    x = make(1, 1 << 20, 4096, seed=1)
    y, last = selective_scan(**x, return_last_state=True)
    check_sampled(x, y, last, n_sample=16)


def test_state_passing_two_segments():
    x = make(2, 8192, 1024, seed=3)
    whole, last = selective_scan(**x, return_last_state=True)
    cut = 5000
    seg = lambda sl: {
        k: (v[:, sl] if k in ("u", "delta", "z", "B", "C") else v) for k, v in x.items()
    }
    y1, h1 = selective_scan(**seg(slice(0, cut)), return_last_state=True)
    y2, h2 = selective_scan(
        **{**seg(slice(cut, None)), "initial_state": h1}, return_last_state=True
    )
    assert_close("y", torch.cat([y1, y2], 1), whole, 5e-3)
    assert_close("last", h2, last, 1e-4)


def test_decode_step_vs_reference():
    x = make(64, 1, 4096, seed=4)
    state = x.pop("initial_state")
    ref_state = state.clone()
    step = {k: (v[:, 0] if k in ("u", "delta", "z", "B", "C") else v) for k, v in x.items()}
    y = selective_scan_step(state, **step)
    y_ref = selective_scan_step_ref(ref_state, **step)
    assert_close("y", y, y_ref, 1e-2)
    assert_close("state", state, ref_state, 1e-5)


@pytest.mark.parametrize("backward", ["recompute", "triton"])
def test_gradients_vs_reference(backward):
    x = make(2, 1024, 64, dtype=torch.float32, seed=5)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state"]
    dy = torch.randn(2, 1024, 64, device="cuda")

    def grads(fn, **kw):
        leaves = {k: x[k].clone().requires_grad_() for k in names}
        (fn(**{**x, **leaves}, **kw) * dy).sum().backward()
        return leaves

    got = grads(selective_scan, config=ScanConfig(backward=backward))
    want = grads(selective_scan_ref)
    for k in names:
        assert_close(f"d{k}", got[k].grad, want[k].grad, 1e-3)
