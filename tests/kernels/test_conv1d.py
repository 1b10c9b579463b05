"""Causal conv1d: Triton kernels vs the plain-torch reference (and the reference vs
torch.nn.functional.conv1d), on CPU via Triton's interpreter.

    .venv/bin/python -m pytest tests/kernels/test_conv1d.py -q
"""

from __future__ import annotations

import os

if not __import__("torch").cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before any @triton.jit runs

import pytest
import torch
import torch.nn.functional as F

from kernels.conv1d import ConvConfig, ConvStepConfig, causal_conv1d, causal_conv1d_step
from kernels.conv1d.reference import causal_conv1d_ref, causal_conv1d_step_ref
from kernels.conv1d.triton import CONV_AUTOTUNE_CONFIGS, prune_conv_configs
from tests.kernels.conftest import assert_close

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def make(bsz, seqlen, ch, width, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g).to(DEV)
    return r(bsz, seqlen, ch).to(dtype), r(ch, width), r(ch), r(bsz, ch, width - 1).to(dtype)


def conv1d_torch(x, weight, bias, activation, init):
    """Independent formulation through F.conv1d (grouped, left padding from init)."""
    xt = x.float().transpose(1, 2)  # [B, C, T]
    if init is None:
        init = xt.new_zeros(x.shape[0], x.shape[2], weight.shape[1] - 1)
    xp = torch.cat([init.float(), xt], -1)
    y = F.conv1d(xp, weight.float()[:, None], bias, groups=x.shape[2])
    y = F.silu(y) if activation == "silu" else y
    return y.transpose(1, 2)


@pytest.mark.parametrize(
    "seqlen, width, bias, act, init",
    [
        (1, 4, True, "silu", True),
        (1, 4, False, None, False),
        (63, 4, True, "silu", False),
        (63, 3, False, None, True),
        (257, 2, True, None, True),
        (1000, 4, True, "silu", True),
    ],
)
def test_forward_matches_reference(nan_empty, seqlen, width, bias, act, init):
    x, w, b, h0 = make(2, seqlen, 40, width)  # C=40: a partial channel block
    b = b if bias else None
    h0 = h0 if init else None
    y = causal_conv1d(x, w, b, act, h0, config=ConvConfig(block_t=32, block_c=32))
    y_ref = causal_conv1d_ref(x, w, b, act, h0)
    assert_close("y", y, y_ref, 1e-5)
    assert_close("ref vs F.conv1d", y_ref, conv1d_torch(x, w, b, act, h0), 1e-5)


def test_fp16(nan_empty):
    x, w, b, h0 = make(2, 257, 40, 4, dtype=torch.float16)
    y = causal_conv1d(x, w, b, "silu", h0)
    assert y.dtype == torch.float16
    assert_close("y fp16", y, causal_conv1d_ref(x, w, b, "silu", h0), 2e-3)


@pytest.mark.parametrize("seqlen", [2, 63])
def test_final_state_and_two_segments(nan_empty, seqlen):
    # seqlen 2 < W-1: part of the final state still comes from the initial state
    x, w, b, h0 = make(2, seqlen, 40, 4, seed=1)
    whole, final = causal_conv1d(x, w, b, "silu", h0, return_final_state=True)
    _, final_ref = causal_conv1d_ref(x, w, b, "silu", h0, return_final_state=True)
    assert torch.equal(final, final_ref)
    expect = torch.cat([h0, x.transpose(1, 2)], -1)[..., -3:]
    assert torch.equal(final, expect)
    cut = seqlen // 2
    y1, s1 = causal_conv1d(x[:, :cut], w, b, "silu", h0, return_final_state=True)
    y2 = causal_conv1d(x[:, cut:], w, b, "silu", s1)
    assert_close("segments", torch.cat([y1, y2], 1), whole, 1e-6)


@pytest.mark.parametrize("width", [2, 4])
def test_step_and_decode_reproduce_prefill(nan_empty, width):
    x, w, b, h0 = make(3, 20, 40, width, seed=2)
    whole = causal_conv1d(x, w, b, "silu", h0)
    prompt = 12
    _, state = causal_conv1d(x[:, :prompt], w, b, "silu", h0, return_final_state=True)
    state_ref = state.clone()
    ys = []
    for t in range(prompt, 20):
        ys.append(
            causal_conv1d_step(
                state, x[:, t], w, b, "silu", config=ConvStepConfig(block_c=32, num_warps=1)
            )
        )
        y_ref = causal_conv1d_step_ref(state_ref, x[:, t], w, b, "silu")
        assert_close("step", ys[-1], y_ref, 1e-5)
        assert torch.allclose(state, state_ref)
    assert_close("decode", torch.stack(ys, 1), whole[:, prompt:], 1e-5)
    assert torch.equal(state, x[:, -(width - 1) :].transpose(1, 2))


def test_gradients_match_conv1d():
    x, w, b, h0 = make(2, 63, 40, 4, seed=3)
    dy = torch.randn(2, 63, 40).to(DEV)

    def grads(fn):
        leaves = [t.clone().requires_grad_() for t in (x, w, b, h0)]
        (fn(*leaves[:3], "silu", leaves[3]) * dy).sum().backward()
        return [t.grad for t in leaves]

    pairs = zip("x w bias h0".split(), grads(causal_conv1d), grads(conv1d_torch), strict=True)
    for name, got, want in pairs:
        assert_close(f"d{name}", got, want, 1e-5)


def test_prune_and_checks():
    kept = prune_conv_configs(CONV_AUTOTUNE_CONFIGS, {"seqlen": 20, "ch": 200})
    assert kept and all(c.kwargs["BLOCK_T"] <= 32 and c.kwargs["BLOCK_C"] <= 256 for c in kept)
    assert len(kept) < len(CONV_AUTOTUNE_CONFIGS)
    (tiny,) = prune_conv_configs(CONV_AUTOTUNE_CONFIGS, {"seqlen": 1, "ch": 8})
    assert tiny.kwargs["BLOCK_T"] * tiny.kwargs["BLOCK_C"] == min(
        c.kwargs["BLOCK_T"] * c.kwargs["BLOCK_C"] for c in CONV_AUTOTUNE_CONFIGS
    )
    x, w, b, h0 = make(1, 5, 8, 4)
    with pytest.raises(ValueError, match="activation"):
        causal_conv1d(x, w, b, "relu")
    with pytest.raises(ValueError, match="initial_state"):
        causal_conv1d(x, w, b, None, h0[:, :, :2])
