"""The decode-step kernels as torch operators: what a compiled decode step calls. Each equals its
launcher and updates its state in place, and a Mamba step compiled with them (dynamo + AOT
functionalisation, the part that failed on the GPU) gives the eager step's logits and states."""

from __future__ import annotations

import copy

import pytest
import torch

import models
from kernels import step_ops
from tests.kernels.conftest import assert_close
from tests.models.conftest import TINY

TRITON = {"attention": "math", "ssm": "triton", "conv": "triton"}


def test_each_operator_equals_its_launcher_and_updates_the_state():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    B, C, W, H, P, N = 2, 24, 4, 4, 8, 8
    conv_state, x, w, b = r(B, C, W - 1), r(B, C), r(C, W), r(C)
    s1, s2 = conv_state.clone(), conv_state.clone()
    y_op = torch.ops.ctxbench.conv1d_step(s1, x, w, b, "silu")
    y = step_ops.conv1d_step(s2, x, w, b, "silu")
    assert torch.equal(y_op, y) and torch.equal(s1, s2) and not torch.equal(s1, conv_state)

    state = r(B, H, P, N)
    args = (r(B, H, P), r(B, H), -r(H).abs(), r(B, 1, N), r(B, 1, N), r(H), None, r(H), True)
    s1, s2 = state.clone(), state.clone()
    assert_close(
        "ssd_step op", torch.ops.ctxbench.ssd_step(s1, *args), step_ops.ssd_step(s2, *args), 1e-6
    )
    assert torch.equal(s1, s2) and not torch.equal(s1, state)

    Dc, Nm = 16, 4
    state = r(B, Dc, Nm)
    args = (r(B, Dc), r(B, Dc), -r(Dc, Nm).abs(), r(B, Nm), r(B, Nm), r(Dc), r(B, Dc), r(Dc), True)
    s1, s2 = state.clone(), state.clone()
    out = torch.ops.ctxbench.selective_scan_step(s1, *args)
    assert_close("selective_scan_step op", out, step_ops.selective_scan_step(s2, *args), 1e-6)
    assert torch.equal(s1, s2) and not torch.equal(s1, state)


@pytest.mark.parametrize("name", ["mamba2", "mamba1"])
def test_a_compiled_mamba_step_equals_the_eager_one(name):
    torch.manual_seed(0)
    model = models.create(name, backends=TRITON, **{**TINY, "n_layer": 2, "chunk_size": 16}).eval()
    ids = torch.randint(0, TINY["vocab_size"], (2, 6))
    with torch.no_grad():
        cache = model.allocate_cache(2, 8)
        model.prefill(ids[:, :5], cache)
        other = copy.deepcopy(cache)
        eager = model.step(ids[:, 5:], cache)
        compiled = torch.compile(model.step, backend="aot_eager", fullgraph=True)
        got = compiled(ids[:, 5:], other)
    assert_close(f"{name} compiled step", got, eager, 1e-5)
    for a, b in zip(cache.layers, other.layers, strict=True):  # states updated alike
        if a is not None:
            assert_close("ssm state", b.ssm, a.ssm, 1e-5)
            assert_close("conv state", b.conv, a.conv, 1e-5)
    assert int(other.pos) == int(cache.pos) == 6
