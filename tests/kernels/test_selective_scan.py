"""Selective scan (Mamba-1): Triton kernels vs the plain-torch reference, on CPU via Triton's
interpreter (conftest sets TRITON_INTERPRET=1 when there is no GPU).

    .venv/bin/python -m pytest tests/kernels/test_selective_scan.py -q
"""

from __future__ import annotations

import os

if not __import__("torch").cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # before any @triton.jit runs

import pytest
import torch

from kernels.selective_scan import ScanConfig, StepConfig, selective_scan, selective_scan_step
from kernels.selective_scan.chunked import selective_scan_chunked
from kernels.selective_scan.reference import selective_scan_ref, selective_scan_step_ref
from kernels.selective_scan.triton import (
    AUTOTUNE_CONFIGS,
    pick_chunk_size,
    prune_scan_configs,
)
from tests.kernels.conftest import assert_close

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def make_inputs(bsz, seqlen, dc, n, groups=None, full=True, dtype=torch.float32, seed=0):
    """Random inputs; groups None gives B, C as [B, T, N], else [B, T, G, N]. `full` adds D, z,
    delta_bias, softplus and an initial state."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g)
    bc = (bsz, seqlen, n) if groups is None else (bsz, seqlen, groups, n)
    t = {
        "u": r(bsz, seqlen, dc).to(dtype),
        "delta": (0.5 * r(bsz, seqlen, dc)).to(dtype),
        "A": -(0.5 + torch.rand(dc, n, generator=g)),
        "B": r(*bc).to(dtype),
        "C": r(*bc).to(dtype),
    }
    if full:
        t.update(
            D=r(dc),
            z=r(bsz, seqlen, dc).to(dtype),
            delta_bias=0.2 * r(dc),
            delta_softplus=True,
            initial_state=r(bsz, dc, n),
        )
    else:
        t["delta"] = t["delta"].abs()  # without softplus dt must stay positive to be a decay
    return {k: v.to(DEV) if torch.is_tensor(v) else v for k, v in t.items()}


@pytest.mark.parametrize(
    "seqlen, full, groups, chunk, prefetch",
    [
        (1, False, None, None, True),
        (1, True, 2, None, True),
        (63, False, None, None, True),
        (63, True, 2, 16, True),  # 4 chunks: passes 1-2-3, last chunk partial
        (63, True, 2, 16, False),
        (63, True, 1, None, True),  # [B, T, 1, N] grouped layout
        (257, True, None, 64, True),
        (1000, True, None, None, True),
    ],
)
def test_forward_matches_reference(nan_empty, seqlen, full, groups, chunk, prefetch):
    bsz = 1 if seqlen == 1000 else 2
    x = make_inputs(bsz, seqlen, 8, 4, groups, full)
    cfg = ScanConfig(chunk_size=chunk, prefetch=prefetch)
    y, last = selective_scan(**x, return_last_state=True, config=cfg)
    y_ref, last_ref = selective_scan_ref(**x, return_last_state=True)
    assert_close("y", y, y_ref, 1e-5)
    assert_close("last_state", last, last_ref, 1e-5)


def test_fp16_inputs(nan_empty):
    x = make_inputs(2, 63, 8, 4, 2, True, dtype=torch.float16)
    y = selective_scan(**x, config=ScanConfig(chunk_size=32))
    assert y.dtype == torch.float16
    assert_close("y fp16", y, selective_scan_ref(**x), 2e-3)


def test_channel_blocks_padded_state_and_many_groups(nan_empty):
    # Dc=40: two channel blocks, the second masked; N=3 pads to 4; G=5 groups of 8 channels
    # make blocks span groups (the per-channel gather path).
    x = make_inputs(2, 63, 40, 3, 5, True)
    y, last = selective_scan(**x, return_last_state=True, config=ScanConfig(chunk_size=32))
    y_ref, last_ref = selective_scan_ref(**x, return_last_state=True)
    assert_close("y", y, y_ref, 1e-5)
    assert_close("last_state", last, last_ref, 1e-5)


def test_one_group_per_block_path(nan_empty):
    # Dc=64 in 2 groups of 32 = block_d: every block inside one group (the [N]-vector load path)
    x = make_inputs(1, 63, 64, 4, 2, True)
    y = selective_scan(**x, config=ScanConfig(block_d=32, chunk_size=20))
    assert_close("y", y, selective_scan_ref(**x), 1e-5)


@pytest.mark.parametrize("seqlen, chunk", [(257, 16), (1000, None)])
def test_chunked_torch_matches_reference(seqlen, chunk):
    x = make_inputs(2, seqlen, 8, 4, 2, True, seed=3)
    y, last = selective_scan_chunked(**x, return_last_state=True, chunk_size=chunk)
    y_ref, last_ref = selective_scan_ref(**x, return_last_state=True)
    assert_close("y", y, y_ref, 1e-5)
    assert_close("last_state", last, last_ref, 1e-5)


def test_state_passing_two_segments_equal_one(nan_empty):
    x = make_inputs(2, 63, 8, 4, None, True, seed=4)
    whole, last = selective_scan(**x, return_last_state=True)
    cut = 40
    first = {
        k: (v[:, :cut] if torch.is_tensor(v) and v.dim() >= 3 and k != "initial_state" else v)
        for k, v in x.items()
    }
    second = {
        k: (v[:, cut:] if torch.is_tensor(v) and v.dim() >= 3 and k != "initial_state" else v)
        for k, v in x.items()
    }
    y1, h1 = selective_scan(**first, return_last_state=True)
    second["initial_state"] = h1
    y2, h2 = selective_scan(**second, return_last_state=True)
    assert_close("y", torch.cat([y1, y2], 1), whole, 1e-5)
    assert_close("last_state", h2, last, 1e-5)


GRAD_NAMES = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state"]


@pytest.mark.parametrize("full, segment", [(True, 24), (False, None)])
def test_gradients_match_reference(full, segment):
    # segment 24 of T=63: the backward walks 3 segments, carrying the state gradient
    x = make_inputs(2, 63, 8, 4, 2 if full else None, full, seed=5)
    names = [k for k in GRAD_NAMES if k in x]
    g = torch.Generator().manual_seed(6)
    dy = torch.randn(2, 63, 8, generator=g).to(DEV)
    dlast = torch.randn(2, 8, 4, generator=g).to(DEV)

    def grads(fn, **kw):
        leaves = {k: x[k].clone().requires_grad_() for k in names}
        y, last = fn(**{**x, **leaves}, return_last_state=True, **kw)
        ((y * dy).sum() + (last * dlast).sum()).backward()
        return {k: leaves[k].grad for k in names}

    got = grads(
        selective_scan, config=ScanConfig(chunk_size=16, bwd_segment=segment, backward="recompute")
    )
    want = grads(selective_scan_ref)
    for k in names:
        assert got[k] is not None, k
        assert_close(f"d{k}", got[k], want[k], 1e-4)


@pytest.mark.parametrize("groups, full", [(None, False), (2, True)])
def test_step_matches_reference(nan_empty, groups, full):
    x = make_inputs(3, 1, 40, 4, groups, full, seed=7)
    state = x.pop("initial_state", None)
    state = torch.randn(3, 40, 4).to(DEV) if state is None else state
    step_args = {
        k: (v[:, 0] if k in ("u", "delta", "B", "C", "z") else v)
        for k, v in x.items()
        if k != "initial_state"
    }
    s_ref = state.clone()
    y = selective_scan_step(state, **step_args, config=StepConfig(block_d=32, num_warps=1))
    y_ref = selective_scan_step_ref(s_ref, **step_args)
    assert_close("y", y, y_ref, 1e-5)
    assert_close("state", state, s_ref, 1e-5)


def test_decode_steps_reproduce_full_scan(nan_empty):
    x = make_inputs(2, 63, 8, 4, 2, True, seed=8)
    whole, last = selective_scan(**x, return_last_state=True)
    prompt = 50
    pre = {k: (v[:, :prompt] if k in ("u", "delta", "B", "C", "z") else v) for k, v in x.items()}
    y_pre, state = selective_scan(**pre, return_last_state=True)
    ys = [y_pre]
    for t in range(prompt, 63):
        step = {
            k: (v[:, t] if k in ("u", "delta", "B", "C", "z") else v)
            for k, v in x.items()
            if k != "initial_state"
        }
        ys.append(selective_scan_step(state, **step)[:, None])
    assert_close("y", torch.cat(ys, 1), whole, 1e-5)
    assert_close("state", state, last, 1e-5)


def test_prune_and_chunk_choice():
    kept = prune_scan_configs(AUTOTUNE_CONFIGS, {"dc": 40})
    assert kept and all(c.kwargs["BLOCK_D"] <= 64 for c in kept)
    assert all(c.kwargs["BLOCK_D"] >= 32 * c.num_warps for c in kept)
    assert len(prune_scan_configs(AUTOTUNE_CONFIGS, {"dc": 4096})) == len(AUTOTUNE_CONFIGS)
    # batch 1 x 4096 channels on a 132-SM GPU: split 16K tokens into ~66 chunks
    assert pick_chunk_size(1, 16384, 4096, 132 * 2048) == 256
    assert pick_chunk_size(64, 16384, 4096, 132 * 2048) == 16384  # enough rows: one pass
    assert pick_chunk_size(16, 16384, 4096, 132 * 2048) == 3280  # 65K rows: 5 chunks
    assert pick_chunk_size(1, 100, 4096, 132 * 2048) == 64  # never below 64 steps


def test_bad_shapes_raise():
    x = make_inputs(1, 5, 8, 4, None, False)
    with pytest.raises(ValueError, match="A must be"):
        selective_scan(**{**x, "A": x["A"][:4]})
    with pytest.raises(ValueError, match="not divisible"):
        selective_scan(**{**x, "B": torch.randn(1, 5, 3, 4), "C": torch.randn(1, 5, 3, 4)})


@pytest.mark.parametrize(
    "seqlen, dc, groups, full",
    [
        (150, 32, 2, True),  # 3 checkpoint segments, the last partial; 2 groups of 16 channels
        (63, 40, None, False),  # one segment; a channel block wider than Dc (padded)
        (1, 16, 1, True),  # [B, T, 1, N] grouped layout, a single step
    ],
)
def test_triton_backward_matches_reference(nan_empty, monkeypatch, seqlen, dc, groups, full):
    """backward="triton" (kernels/selective_scan/backward.py) against autograd through the
    step-by-step reference: every input's gradient, the initial state's and the last state's
    included; NaN-filled buffers catch an element the kernel does not write."""
    import kernels.selective_scan.autograd as autograd_mod

    calls = []
    kernel = autograd_mod.selective_scan_bwd
    monkeypatch.setattr(
        autograd_mod, "selective_scan_bwd", lambda *a: calls.append(1) or kernel(*a)
    )
    x = make_inputs(2, seqlen, dc, 4, groups, full, seed=7)
    names = [k for k in GRAD_NAMES if k in x]
    g = torch.Generator().manual_seed(8)
    dy = torch.randn(2, seqlen, dc, generator=g).to(DEV)
    dlast = torch.randn(2, dc, 4, generator=g).to(DEV)

    def grads(fn, **kw):
        leaves = {k: x[k].clone().requires_grad_() for k in names}
        y, last = fn(**{**x, **leaves}, return_last_state=True, **kw)
        ((y * dy).sum() + (last * dlast).sum()).backward()
        return {k: leaves[k].grad for k in names}

    got = grads(selective_scan, config=ScanConfig(chunk_size=16, backward="triton"))
    assert calls == [1]  # the kernel ran, not the recomputation
    want = grads(selective_scan_ref)
    for k in names:
        assert got[k] is not None, k
        assert_close(f"d{k}", got[k], want[k], 1e-4)


def test_triton_backward_choice_and_its_limits():
    from kernels.selective_scan.backward import block_for

    assert block_for(512, 1) == 64 and block_for(24, 1) == 32
    assert block_for(256, 2) == 64 and block_for(96, 2) == 16  # 48 a group: 16 divides it
    assert block_for(8, 2) is None  # 4 channels a group: the recomputation takes it
    with pytest.raises(ValueError, match="valid choices: recompute, triton"):
        ScanConfig(backward="cuda")
