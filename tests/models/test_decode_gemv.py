"""decode_gemv=triton: the step's one-row products on the Triton GEMV (models/linear.py), through
Triton's interpreter on the CPU; a prefill's many rows and the canary's reference step stay on
F.linear."""

from __future__ import annotations

import os

import pytest
import torch

import models
from models.blocks import MLP
from models.linear import DecodeLinear
from models.reference_step import torch_step_path
from tests.kernels.conftest import assert_close
from tests.models.conftest import TINY

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # before a kernel is first launched

DEV = "cuda" if torch.cuda.is_available() else "cpu"
BACKENDS = {"attention": "math", "ssm": "triton", "conv": "triton"}


@pytest.mark.parametrize("name", ["transformer", "mamba2", "mamba1"])
def test_step_on_the_gemv_equals_the_cublas_step(name, monkeypatch):
    import kernels.gemv as gemv_module

    calls, swiglu = [], []
    real, real_swiglu = gemv_module.gemv, gemv_module.gemv_swiglu
    monkeypatch.setattr(gemv_module, "gemv", lambda x, w: calls.append(w.shape) or real(x, w))
    monkeypatch.setattr(
        gemv_module,
        "gemv_swiglu",
        lambda x, g, u: swiglu.append(g.shape) or real_swiglu(x, g, u),
    )
    torch.manual_seed(0)
    cfg = {**TINY, "n_layer": 4, "chunk_size": 16}
    plain = models.create(name, backends=BACKENDS, **cfg).eval().to(DEV)
    fast = models.create(name, backends=BACKENDS, decode_gemv="triton", **cfg).eval().to(DEV)
    assert set(fast.state_dict()) == set(plain.state_dict())  # same keys: checkpoints load
    fast.load_state_dict(plain.state_dict())
    ids = torch.randint(0, TINY["vocab_size"], (1, 8), device=DEV)
    with torch.no_grad():
        caches = [m.allocate_cache(1, 10) for m in (plain, fast)]
        for m, c in zip((plain, fast), caches, strict=True):
            m.prefill(ids[:, :5], c)
        # a prefill's many rows stay on F.linear; its last-token logits are one row each
        assert calls == [fast.lm_head.weight.shape]
        calls.clear()
        for t in range(5, 8):
            want = plain.step(ids[:, t : t + 1], caches[0])
            got = fast.step(ids[:, t : t + 1], caches[1])
            assert_close(f"{name} step {t}", got, want, 1e-5)
    linears = [m for m in fast.modules() if isinstance(m, DecodeLinear)]
    mlps = [m for m in fast.modules() if isinstance(m, MLP)]
    # every projection, every step: an MLP's gate and up as one SwiGLU kernel
    assert len(calls) == 3 * (len(linears) - 2 * len(mlps)) and linears
    assert len(swiglu) == 3 * len(mlps) and (name != "transformer" or mlps)
    assert fast.kernel_backends()["decode_gemv"] == "triton"
    assert "decode_gemv" not in plain.kernel_backends()
    calls.clear()
    with torch.no_grad(), torch_step_path(fast):  # the canary's reference: F.linear
        fast.step(ids[:, 7:8], caches[1])
    assert not calls and len(swiglu) == 3 * len(mlps)


def test_a_tied_lm_head_stays_tied_and_a_bad_choice_names_the_field():
    m = models.create("mamba2", decode_gemv="triton", tie_embeddings=True, **TINY)
    assert isinstance(m.lm_head, DecodeLinear) and m.lm_head.weight is m.embedding.weight
    with pytest.raises(ValueError, match="decode_gemv: must be one of"):
        models.config("mamba2", decode_gemv="cutlass")
