"""SSD scan: Triton (CPU interpreter here, the GPU when there is one) against the torch spec.

Run: .venv/bin/pytest tests/kernels/test_ssd.py -q
"""

from __future__ import annotations

import pytest
import torch

import kernels
from kernels.ssd import ssd, ssd_recurrent_ref, ssd_ref
from kernels.ssd.triton import ssd_fwd
from tests.kernels.conftest import assert_close

DEV = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float32: 1e-5, torch.float16: 5e-3}


def make_inputs(
    b=2,
    t=63,
    h=4,
    p=16,
    g=1,
    n=16,
    dtype=torch.float32,
    seed=0,
    D=None,
    z=False,
    dt_bias=False,
    init=False,
    softplus=False,
):
    """Random SSD inputs as a kwargs dict. A spans fast (-3) to slow (-0.01) decay so some heads
    remember across chunk boundaries; dt is positive unless softplus makes it so."""
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen)
    kw = dict(
        x=r(b, t, h, p).to(dtype),
        dt=(r(b, t, h) - 1.5) if softplus else torch.rand(b, t, h, generator=gen) * 0.2 + 0.01,
        A=-torch.logspace(-2, 0.5, h),
        B=r(b, t, g, n).to(dtype),
        C=r(b, t, g, n).to(dtype),
        dt_softplus=softplus,
    )
    if D == "h":
        kw["D"] = r(h)
    elif D == "hp":
        kw["D"] = r(h, p)
    if z:
        kw["z"] = r(b, t, h, p).to(dtype)
    if dt_bias:
        kw["dt_bias"] = r(h) * 0.5
    if init:
        kw["initial_states"] = r(b, h, p, n)
    return {k: v.to(DEV) if torch.is_tensor(v) else v for k, v in kw.items()}


def _fp32(kw):
    return {k: v.float() if torch.is_tensor(v) else v for k, v in kw.items()}


@pytest.mark.parametrize("t", [1, 63, 257])
@pytest.mark.parametrize("g", [1, 2])
def test_chunked_ref_matches_recurrent_ref(t, g):
    kw = make_inputs(t=t, g=g, D="hp", z=True, dt_bias=True, init=True, softplus=True)
    y, s = ssd_ref(**kw, chunk_size=16, return_final_states=True)
    y_rec, s_rec = ssd_recurrent_ref(**kw, return_final_states=True)
    assert_close("y", y, y_rec, 1e-5)
    assert_close("final state", s, s_rec, 1e-5)


CASES = [  # (t, g, chunk, options)
    (1, 1, 16, dict()),
    (63, 2, 16, dict(D="h", z=True)),
    (64, 1, 64, dict(dt_bias=True, softplus=True)),
    (257, 1, 32, dict(D="hp", init=True)),
    (257, 2, 64, dict(D="h", z=True, dt_bias=True, softplus=True, init=True)),
    (1000, 2, 64, dict(D="hp", z=True, init=True)),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("case", CASES, ids=[f"T{c[0]}-G{c[1]}-L{c[2]}" for c in CASES])
def test_forward_matches_ref(case, dtype):
    t, g, chunk, opts = case
    kw = make_inputs(t=t, g=g, dtype=dtype, seed=t, **opts)
    y, final, _ = ssd_fwd(**kw, chunk_size=chunk, return_final_states=True, poison=True)
    y_ref, final_ref = ssd_ref(**_fp32(kw), chunk_size=chunk, return_final_states=True)
    assert y.dtype == dtype
    assert_close("y", y, y_ref, TOL[dtype])
    assert_close("final state", final, final_ref, TOL[dtype])


def test_chunk_states_are_the_states_entering_each_chunk():
    kw = make_inputs(t=100, g=2, init=True)
    _, _, states = ssd_fwd(**kw, chunk_size=32, return_chunk_states=True, poison=True)
    assert states.shape == (2, 4, 4, 16, 16)  # [B, C, H, P, N]
    assert_close("chunk 0", states[:, 0], kw["initial_states"], 1e-6)
    for c in (1, 3):
        sub = {k: v[:, : 32 * c] if k in ("x", "dt", "B", "C") else v for k, v in kw.items()}
        _, s = ssd_ref(**sub, chunk_size=32, return_final_states=True)
        assert_close(f"chunk {c}", states[:, c], s, 1e-5)


def test_output_does_not_depend_on_chunk_size():
    kw = make_inputs(t=200, g=2, D="h", z=True, init=True)
    y16 = ssd(**kw, chunk_size=16)
    y64 = ssd(**kw, chunk_size=64)
    assert_close("chunk 16 vs 64", y16, y64, 1e-5)


def test_two_segments_with_initial_states_equal_whole():
    kw = make_inputs(t=150, g=2, D="h", dt_bias=True, softplus=True, init=True)
    y, s = ssd(**kw, chunk_size=32, return_final_states=True)
    cut = 70  # not a chunk boundary
    seq = ("x", "dt", "B", "C")
    first = {k: (v[:, :cut] if k in seq else v) for k, v in kw.items()}
    y1, s1 = ssd(**first, chunk_size=32, return_final_states=True)
    second = {k: (v[:, cut:] if k in seq else v) for k, v in kw.items()}
    second["initial_states"] = s1
    y2, s2 = ssd(**second, chunk_size=32, return_final_states=True)
    assert_close("y", torch.cat([y1, y2], dim=1), y, 1e-5)
    assert_close("final state", s2, s, 1e-5)


def test_strided_inputs():
    """x, z, B, C as slices of one projection, as a Mamba-2 block produces them."""
    b, t, h, p, n = 2, 70, 4, 16, 16
    proj = torch.randn(b, t, 2 * h * p + 2 * n + h, device=DEV)
    x = proj[..., : h * p].view(b, t, h, p)
    z = proj[..., h * p : 2 * h * p].view(b, t, h, p)
    B = proj[..., 2 * h * p : 2 * h * p + n].view(b, t, 1, n)
    C = proj[..., 2 * h * p + n : 2 * h * p + 2 * n].view(b, t, 1, n)
    dt = proj[..., -h:]
    A = -torch.rand(h, device=DEV)
    args = (x, dt, A, B, C, 32)
    y = ssd(*args, z=z, dt_softplus=True)
    y_ref = ssd_ref(*args, z=z, dt_softplus=True)
    assert not x.is_contiguous()
    assert_close("y", y, y_ref, 1e-5)


def _grads(fn, kw, names, chunk):
    leaves = {k: kw[k].detach().clone().requires_grad_(True) for k in names}
    y, s = fn(**{**kw, **leaves}, chunk_size=chunk, return_final_states=True)
    gen = torch.Generator().manual_seed(1)
    gy = torch.randn(y.shape, generator=gen).to(y)
    gs = torch.randn(s.shape, generator=gen).to(s)
    torch.autograd.backward([y, s], [gy, gs])
    return y, {k: leaves[k].grad for k in names}


GRAD_NAMES = ("x", "dt", "A", "B", "C", "D", "z", "dt_bias", "initial_states")


def test_gradients_match_reference():
    kw = make_inputs(t=70, g=2, D="hp", z=True, dt_bias=True, softplus=True, init=True)
    y, grads = _grads(ssd, kw, GRAD_NAMES, 32)
    y_ref, grads_ref = _grads(ssd_ref, kw, GRAD_NAMES, 32)
    assert_close("y", y, y_ref, 1e-5)
    for k in GRAD_NAMES:
        assert_close(f"d{k}", grads[k], grads_ref[k], 1e-5)


def test_reference_gradients_match_recurrence():
    kw = make_inputs(t=45, g=2, D="h", z=True, dt_bias=True, softplus=True, init=True)
    _, grads = _grads(ssd_ref, kw, GRAD_NAMES, 16)
    _, grads_rec = _grads(ssd_recurrent_ref, kw, GRAD_NAMES, 16)
    for k in GRAD_NAMES:
        assert_close(f"d{k}", grads[k], grads_rec[k], 1e-4)


def test_gradient_of_some_inputs_only():
    kw = make_inputs(t=40, g=1, D="h")
    x = kw.pop("x").requires_grad_(True)
    y = ssd(x, **kw, chunk_size=16)
    y.square().sum().backward()
    x_ref = x.detach().clone().requires_grad_(True)
    ssd_ref(x_ref, **kw, chunk_size=16).square().sum().backward()
    assert_close("dx", x.grad, x_ref.grad, 1e-5)


def test_registry_serves_triton_and_torch():
    assert kernels.get("ssd", "triton") is ssd
    assert kernels.get("ssd", "torch") is ssd_ref


@pytest.mark.parametrize("name", ["ssd_mamba_ssm", "ssd_fla"])
def test_missing_peer_raises_import_error_with_install_command(name):
    from kernels.ssd import peers

    fn = getattr(peers, name)
    if peers.peer_available(fn):
        pytest.skip(f"{fn.requires[0]} is installed")
    with pytest.raises(ImportError, match="pip install"):
        fn(**make_inputs(t=8))


def test_fla_mapping_is_the_ssd():
    """The q/k/v/g mapping handed to fla, run through plain GLA math, reproduces ssd_ref."""
    from kernels.ssd.peers import fla_inputs

    kw = make_inputs(t=30, g=2, dt_bias=True, softplus=True)
    q, k, v, g = fla_inputs(**kw)
    gc = torch.cumsum(g, dim=1)  # [B, T, H]
    diff = gc[:, :, None, :] - gc[:, None, :, :]  # [B, T(l), T(s), H]
    mask = torch.ones(30, 30, dtype=torch.bool, device=DEV).tril()[None, :, :, None]
    w = torch.exp(torch.where(mask, diff, float("-inf")))
    y = torch.einsum("blhn,bshn,blsh,bshp->blhp", q, k, w, v)
    assert_close("y", y, ssd_ref(**kw), 1e-5)


def test_rejects_bad_chunk_size():
    kw = make_inputs(t=10)
    with pytest.raises(AssertionError, match="power of 2"):
        ssd(**kw, chunk_size=48)


def test_sampled_chunk_checker_passes_and_catches_a_broken_state(monkeypatch):
    """The long-context GPU check, on tiny CPU shapes: it passes on the kernel's states and fails
    when one carried state is corrupted."""
    from tests.kernels import test_ssd_gpu as gpu

    kw = gpu.inputs(2, 300, 4, 16, 16, g=2, dtype=torch.float32, D=True, z=True, device=DEV)
    chunks = gpu.sampled_chunks(300 // 32 + 1, seed=0, extra=(4,))
    assert 4 in chunks and len(chunks) >= 5
    assert 0.0 < gpu.check_sampled_chunks(kw, 32, chunks, tol=1e-4) <= 1e-4

    def corrupted(*args, **kwargs):
        y, final, states = ssd_fwd(*args, **kwargs)
        states[:, 5] *= 1.05
        return y, final, states

    monkeypatch.setattr(gpu, "ssd_fwd", corrupted)
    with pytest.raises(AssertionError, match="chunk 4/10 state"):
        gpu.check_sampled_chunks(kw, 32, chunks, tol=1e-4)


def test_prune_predicates_clip_and_filter_configs():
    from kernels.ssd import tuning

    big = tuning.prune_state_configs(tuning.STATE_CONFIGS, {"P": 64, "N": 128}, L=256)
    assert len(big) == len(tuning.STATE_CONFIGS)
    small = tuning.prune_state_configs(tuning.STATE_CONFIGS, {"P": 16, "N": 16}, L=32)
    assert 0 < len(small) < len(big)
    assert all(c.kwargs["BLOCK_P"] == 16 and c.kwargs["BLOCK_L"] <= 32 for c in small)
    scan = tuning.prune_scan_configs(tuning.SCAN_CONFIGS, {"P": 64, "N": 128}, L=64)
    assert scan and all(c.kwargs["BLOCK_K"] <= c.kwargs["BLOCK_M"] <= 64 for c in scan)
