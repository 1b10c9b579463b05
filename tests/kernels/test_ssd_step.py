"""SSD decode step: Triton (CPU interpreter here) against the torch spec, and against the scan.

Run: .venv/bin/pytest tests/kernels/test_ssd_step.py -q
"""

from __future__ import annotations

import pytest
import torch

import kernels
from kernels.ssd import ssd_ref
from kernels.ssd_step import ssd_step, ssd_step_ref
from tests.kernels.conftest import assert_close

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def make_step(
    b=3,
    h=4,
    p=20,
    g=1,
    n=24,
    dtype=torch.float32,
    state_dtype=torch.float32,
    seed=0,
    D=None,
    z=False,
    dt_bias=False,
    softplus=False,
):
    gen = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=gen)
    kw = dict(
        x=r(b, h, p).to(dtype),
        dt=(r(b, h) - 1.0) if softplus else torch.rand(b, h, generator=gen) * 0.3 + 0.01,
        A=-torch.logspace(-2, 0.5, h),
        B=r(b, g, n).to(dtype),
        C=r(b, g, n).to(dtype),
        dt_softplus=softplus,
    )
    if D is not None:
        kw["D"] = r(h) if D == "h" else r(h, p)
    if z:
        kw["z"] = r(b, h, p).to(dtype)
    if dt_bias:
        kw["dt_bias"] = r(h) * 0.5
    state = r(b, h, p, n).to(state_dtype)
    to = lambda v: v.to(DEV) if torch.is_tensor(v) else v
    return to(state), {k: to(v) for k, v in kw.items()}


CASES = [
    dict(g=1),
    dict(g=2, D="h", z=True),
    dict(g=2, D="hp", dt_bias=True, softplus=True),
    dict(g=4, p=64, n=128, D="h", z=True, dt_bias=True, softplus=True),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("case", CASES, ids=[str(i) for i in range(len(CASES))])
def test_step_matches_ref(case, dtype):
    tol = 1e-5 if dtype == torch.float32 else 2e-3
    state, kw = make_step(dtype=dtype, **case)
    state_ref = state.clone()
    out = torch.full_like(kw["x"], float("nan"))
    y = ssd_step(state, **kw, out=out)
    y_ref = ssd_step_ref(state_ref, **kw)
    assert y.data_ptr() == out.data_ptr()
    assert_close("y", y, y_ref, tol)
    assert_close("state (in place)", state, state_ref, 1e-6)
    assert not torch.equal(state, make_step(dtype=dtype, **case)[0]), "state was not updated"


def test_half_precision_state():
    state, kw = make_step(state_dtype=torch.float16, g=2, D="h")
    state_ref = state.clone()
    y = ssd_step(state, **kw)
    y_ref = ssd_step_ref(state_ref, **kw)
    assert state.dtype == torch.float16
    assert_close("y", y, y_ref, 1e-5)
    assert_close("state", state, state_ref, 1e-3)


def test_steps_reproduce_the_scan():
    """Decoding token by token from a prefix's final state equals scanning the whole sequence."""
    gen = torch.Generator().manual_seed(3)
    b, t, h, p, g, n, prefix = 2, 40, 4, 16, 2, 16, 29
    x = torch.randn(b, t, h, p, generator=gen, device="cpu").to(DEV)
    dt = torch.randn(b, t, h, generator=gen).to(DEV)
    A = -torch.logspace(-2, 0.5, h, device=DEV)
    B = torch.randn(b, t, g, n, generator=gen).to(DEV)
    C = torch.randn(b, t, g, n, generator=gen).to(DEV)
    D = torch.randn(h, device=DEV)
    z = torch.randn(b, t, h, p, generator=gen).to(DEV)
    bias = torch.randn(h, device=DEV)
    opts = dict(D=D, dt_bias=bias, dt_softplus=True)
    y_all = ssd_ref(x, dt, A, B, C, 16, z=z, **opts)
    _, state = ssd_ref(
        x[:, :prefix],
        dt[:, :prefix],
        A,
        B[:, :prefix],
        C[:, :prefix],
        16,
        z=z[:, :prefix],
        return_final_states=True,
        **opts,
    )
    ys = [
        ssd_step(state, x[:, i], dt[:, i], A, B[:, i], C[:, i], z=z[:, i], **opts)
        for i in range(prefix, t)
    ]
    assert_close("decoded tail", torch.stack(ys, dim=1), y_all[:, prefix:], 1e-5)


def test_registry_serves_step():
    from kernels import step_ops

    # the compile-aware entry (kernels/step_ops.py): this launcher when eager
    assert kernels.get("ssd_step", "triton") is step_ops.ssd_step
    assert step_ops._ssd_step is ssd_step
    assert kernels.get("ssd_step", "torch") is ssd_step_ref
