"""fused_decode: the decode step with its residual adds fused into the next RMSNorm and Mamba-2's
gated norm as one kernel (kernels.norm), and RoPE fused with the KV-cache write
(kernels.rope_step), through Triton's interpreter on the
CPU. Same logits as the plain step over several steps, for every layer kind, and the fused
kernels really run (a count per step)."""

from __future__ import annotations

import os

import pytest
import torch

import models
from tests.kernels.conftest import assert_close
from tests.models.conftest import TINY

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"  # before a kernel is first launched

DEV = "cuda" if torch.cuda.is_available() else "cpu"
BACKENDS = {"attention": "math", "ssm": "triton", "conv": "triton"}


@pytest.mark.parametrize("name", ["transformer", "mamba2", "mamba1", "hybrid_30"])
def test_fused_step_equals_the_plain_step(name, monkeypatch):
    import kernels.norm as norm
    import kernels.rope_step as rope_step

    calls = {"norm": 0, "rope": 0, "gated": 0}

    def counted(key, fn):
        def wrapper(*a, **k):
            calls[key] += 1
            return fn(*a, **k)

        return wrapper

    monkeypatch.setattr(norm, "add_rmsnorm", counted("norm", norm.add_rmsnorm))
    monkeypatch.setattr(rope_step, "rope_qkv_step", counted("rope", rope_step.rope_qkv_step))
    monkeypatch.setattr(norm, "gated_rmsnorm", counted("gated", norm.gated_rmsnorm))
    torch.manual_seed(0)
    cfg = {**TINY, "n_layer": 4, "chunk_size": 16}
    plain = models.create(name, backends=BACKENDS, **cfg).eval().to(DEV)
    fused = models.create(name, backends=BACKENDS, fused_decode=True, **cfg).eval().to(DEV)
    fused.load_state_dict(plain.state_dict())
    ids = torch.randint(0, TINY["vocab_size"], (2, 9), device=DEV)
    with torch.no_grad():
        caches = [m.allocate_cache(2, 12) for m in (plain, fused)]
        for m, c in zip((plain, fused), caches, strict=True):
            m.prefill(ids[:, :5], c)
        for t in range(5, 9):
            want = plain.step(ids[:, t : t + 1], caches[0])
            got = fused.step(ids[:, t : t + 1], caches[1])
            assert_close(f"{name} step {t}", got, want, 1e-5)
    layers = fused.cfg.pattern
    assert calls["norm"] == 4 * (len(layers) + 1)  # one per layer and the final norm, 4 steps
    assert calls["rope"] == 4 * layers.count("A")
    assert calls["gated"] == 4 * layers.count("M")  # Mamba-2's output norm
    assert fused.kernel_backends()["decode_fused"] == "triton"
    assert "decode_fused" not in plain.kernel_backends()
