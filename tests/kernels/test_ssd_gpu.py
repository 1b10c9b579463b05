"""SSD scan and decode step on a real GPU: bf16 against the fp32 spec, up to 2M tokens.

Run on a CUDA machine: pytest tests/kernels/test_ssd_gpu.py -q -m gpu
Long-context cases check sampled chunks: each sampled chunk's output and its carried state are
recomputed by `ssd_ref` from the state the kernel carried into that chunk, so every sampled step of
the recurrence is verified where 32-bit offsets would already have overflowed.
"""

from __future__ import annotations

import pytest
import torch

from kernels.ssd import ssd, ssd_ref, tuning
from kernels.ssd.triton import ssd_fwd
from kernels.ssd_step import ssd_step, ssd_step_ref
from tests.kernels.conftest import assert_close, rel_err

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.fixture
def fixed_configs():
    """Fixed configs: deterministic, and no autotune pass on 40 GB inputs."""
    previous = tuning.set_autotune(False)
    yield
    tuning.set_autotune(previous)


def inputs(
    b, t, h, p, n, g=1, dtype=torch.bfloat16, seed=0, D=False, z=False, init=False, device="cuda"
):
    """Mamba-2-like inputs: dt = softplus(raw + bias) around 0.01-0.1, A from -0.02 (remembers
    over many chunks) to -4 (forgets within a few steps)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    r = lambda *s, dt=dtype: torch.randn(*s, generator=gen, device=device, dtype=dt)
    kw = dict(
        x=r(b, t, h, p),
        dt=r(b, t, h, dt=torch.float32) * 0.5,
        A=-torch.logspace(-1.7, 0.6, h, device=device),
        B=r(b, t, g, n) * n**-0.5,
        C=r(b, t, g, n) * n**-0.5,
        dt_bias=torch.linspace(-4.5, -2.3, h, device=device),
        dt_softplus=True,
    )
    if D:
        kw["D"] = r(h, dt=torch.float32)
    if z:
        kw["z"] = r(b, t, h, p)
    if init:
        kw["initial_states"] = r(b, h, p, n, dt=torch.float32)
    return kw


def _fp32(kw):
    return {k: v.float() if torch.is_tensor(v) else v for k, v in kw.items()}


@pytest.mark.parametrize("t", [4096, 65536 + 77, 262144])
def test_bf16_matches_fp32_reference(t, fixed_configs):
    kw = inputs(1, t, 8, 64, 128, g=2, D=True, init=True)
    y, final = ssd(**kw, chunk_size=256, return_final_states=True)
    y_ref, final_ref = ssd_ref(**_fp32(kw), chunk_size=256, return_final_states=True)
    assert_close("y", y, y_ref, 1e-2)
    assert_close("final state", final, final_ref, 1e-2)


def test_autotuned_with_poisoned_buffers():
    """Autotuned tiles differ between kernels, so unwritten (NaN) CB blocks are really read."""
    kw = inputs(2, 8192 + 37, 8, 64, 128, g=2, D=True, z=True, init=True, dtype=torch.float16)
    y, final, _ = ssd_fwd(**kw, chunk_size=256, return_final_states=True, poison=True)
    y_ref, final_ref = ssd_ref(**_fp32(kw), chunk_size=256, return_final_states=True)
    assert_close("y", y, y_ref, 1e-2)
    assert_close("final state", final, final_ref, 1e-2)


def test_fp32_is_tight(fixed_configs):
    kw = inputs(2, 2000, 4, 64, 64, g=1, dtype=torch.float32, D=True, z=True)
    assert_close("y", ssd(**kw, chunk_size=128), ssd_ref(**kw, chunk_size=128), 1e-4)


def test_state_passing_two_segments(fixed_configs):
    kw = inputs(2, 65536 + 123, 8, 64, 128, g=1, D=True)
    y, final = ssd(**kw, chunk_size=256, return_final_states=True)
    cut = 40000 + 5
    seq = ("x", "dt", "B", "C")
    y1, s1 = ssd(
        **{k: v[:, :cut] if k in seq else v for k, v in kw.items()}, return_final_states=True
    )
    rest = {k: v[:, cut:] if k in seq else v for k, v in kw.items()}
    y2, s2 = ssd(**rest, initial_states=s1, return_final_states=True)
    assert_close("y", torch.cat([y1, y2], dim=1), y, 1e-2)
    assert_close("final state", s2, final, 1e-2)


def sampled_chunks(nchunks: int, seed: int, extra=()) -> list[int]:
    """First, middle and last chunks, `extra` ones, and three random ones."""
    picks = {0, 1, nchunks // 2, nchunks - 2, nchunks - 1} | {c for c in extra if c < nchunks}
    picks |= set(torch.randint(0, nchunks, (3,), generator=torch.Generator().manual_seed(seed)))
    return sorted(int(c) for c in picks if 0 <= c < nchunks)


def check_sampled_chunks(kw, L, chunks, tol=1e-2) -> float:
    """Run the kernel over the whole sequence, then for each sampled chunk c recompute, with
    `ssd_ref` started from the state the kernel carried into c, chunk c's output and the state it
    carries out (the next chunk's entering state, or the final state). Returns the worst error."""
    y, final, states = ssd_fwd(
        **kw, chunk_size=L, return_final_states=True, return_chunk_states=True
    )
    nchunks = states.shape[1]
    worst = 0.0
    for c in chunks:
        sl = slice(c * L, (c + 1) * L)
        seg = {k: (v[:, sl] if k in ("x", "dt", "B", "C", "z") else v) for k, v in kw.items()}
        seg = {k: v.float() if torch.is_tensor(v) else v for k, v in seg.items()}
        seg["initial_states"] = states[:, c].float()
        y_ref, s_next = ssd_ref(**seg, chunk_size=L, return_final_states=True)
        carried = final if c == nchunks - 1 else states[:, c + 1]
        for name, out, ref in (("y", y[:, sl], y_ref), ("state", carried, s_next)):
            err = rel_err(out, ref)
            worst = max(worst, err)
            assert err <= tol, f"chunk {c}/{nchunks} {name}: relative error {err:.2e}"
    # The last batch element's last chunk lives at the highest addresses.
    assert torch.isfinite(y[-1, -L:]).all() and torch.isfinite(final).all()
    return worst


@pytest.mark.parametrize("b, t", [(1, 2**20), (1, 2**21), (8, 2**18)], ids=["1M", "2M", "256Kx8"])
def test_long_context_sampled_chunks(b, t, fixed_configs):
    L = 256
    kw = inputs(b, t, 64, 64, 128, D=True, seed=t)
    assert kw["x"].numel() > 2**31  # the point of the test: offsets past 32 bits
    tokens_2g31 = 2**31 // (64 * 64)  # where x's element offset passes 2^31 in batch 0
    chunks = sampled_chunks(t // L, t, extra=(tokens_2g31 // L - 1, tokens_2g31 // L))
    assert check_sampled_chunks(kw, L, chunks) > 0.0  # comparisons ran on real data


def test_decode_step_bf16_batch_64():
    gen = torch.Generator(device="cuda").manual_seed(5)
    b, h, p, n, g = 64, 64, 64, 128, 1
    r = lambda *s, dt=torch.bfloat16: torch.randn(*s, generator=gen, device="cuda", dtype=dt)
    state = r(b, h, p, n, dt=torch.float32)
    state_ref = state.clone()
    args = (r(b, h, p), r(b, h, dt=torch.float32), -torch.rand(h, device="cuda"))
    args += (r(b, g, n), r(b, g, n))
    kw = dict(D=r(h, dt=torch.float32), z=r(b, h, p), dt_bias=r(h, dt=torch.float32))
    y = ssd_step(state, *args, **kw, dt_softplus=True)
    y_ref = ssd_step_ref(state_ref, *args, **kw, dt_softplus=True)
    assert_close("y", y, y_ref, 1e-2)
    assert_close("state", state, state_ref, 1e-5)


def test_gradients_on_gpu(fixed_configs):
    kw = inputs(1, 700, 4, 32, 32, g=2, dtype=torch.float32, D=True, z=True, init=True)
    names = ("x", "dt", "B", "C", "z", "initial_states")
    grads = []
    for fn in (ssd, ssd_ref):
        leaves = {k: kw[k].detach().clone().requires_grad_(True) for k in names}
        y = fn(**{**kw, **leaves}, chunk_size=64)
        y.float().square().sum().backward()
        grads.append({k: leaves[k].grad for k in names})
    for k in names:
        assert_close(f"d{k}", grads[0][k], grads[1][k], 1e-4)


@pytest.mark.parametrize("peer", ["ssd_mamba_ssm", "ssd_fla"])
def test_peers_match_reference(peer):
    from kernels.ssd import peers

    fn = getattr(peers, peer)
    if not peers.peer_available(fn):
        pytest.skip(f"{fn.requires[0]} not installed")
    kw = inputs(1, 4096, 8, 64, 128, g=1, D=True, z=True, init=True)
    y, final = fn(**kw, chunk_size=256, return_final_states=True)
    y_ref, final_ref = ssd_ref(**_fp32(kw), chunk_size=256, return_final_states=True)
    assert_close("y", y, y_ref, 2e-2)
    assert_close("final state", final, final_ref, 2e-2)
