"""Token-by-token decode and prefill + decode reproduce the full forward, for every architecture;
the cache's bytes match the cost model; chunked and last-only forwards agree with the plain one."""

from __future__ import annotations

import pytest
import torch

import models
from tests.models.conftest import TINY, rel_err

ARCHS = {  # name -> overrides giving a tiny model with every layer kind of the preset
    "transformer": dict(n_layer=4),
    "transformer_mha": dict(n_layer=4),
    "mamba2": dict(n_layer=3),
    "mamba1": dict(n_layer=3),
    "hybrid_1_7": dict(n_layer=16),  # 8 mixers, one attention
    "nemotron_h_like": dict(n_layer=12),  # 6 mixers, one attention
    "all_letters": dict(pattern="MA-S-A"),
}


def tiny(name: str, **extra):
    over = {**TINY, **ARCHS[name], **extra}
    preset = "hybrid_30" if name == "all_letters" else name
    if preset == "transformer_mha":
        over.pop("kv_heads")
    return models.create(preset, **over).eval()


@pytest.mark.parametrize("name", ARCHS)
def test_step_decode_and_prefill_match_forward(name):
    model = tiny(name)
    B, T, P = 2, 11, 5
    ids = torch.randint(0, TINY["vocab_size"], (B, T))
    with torch.no_grad():
        full = model(ids)  # [B, T, V]
        cache = model.allocate_cache(B, T)
        steps = torch.cat([model.step(ids[:, t : t + 1], cache) for t in range(T)], dim=1)
        assert int(cache.pos) == T
        last = model.prefill(ids[:, :P], cache)
        rest = [model.step(ids[:, t : t + 1], cache) for t in range(P, T)]
    assert full.shape == (B, T, TINY["vocab_size"])
    assert rel_err(steps, full) < 1e-5
    assert rel_err(torch.cat([last, *rest], dim=1), full[:, P - 1 :]) < 1e-5


@pytest.mark.parametrize("name", ["transformer", "hybrid_1_7", "mamba1"])
def test_last_only_and_chunked_forward(name):
    model = tiny(name)
    ids = torch.randint(0, TINY["vocab_size"], (1, 9))
    with torch.no_grad():
        full = model(ids)
        assert rel_err(model(ids, last_only=True), full[:, -1:]) < 1e-6
    chunked = tiny(name, seq_chunk=4)
    chunked.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert rel_err(chunked(ids), full) < 1e-6


@pytest.mark.parametrize("name", ARCHS)
def test_cost_model_counts_parameters_exactly(name):
    model = tiny(name)
    assert model.cfg.cost().params()["total"] == model.num_params()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("name", ["transformer", "mamba2", "mamba1", "hybrid_1_7"])
def test_cache_bytes_match_cost_model(name, dtype):
    model = tiny(name)
    cache = model.allocate_cache(3, 40, dtype)
    measured = cache.nbytes()
    predicted = model.cfg.cost().memory(3, 40, dtype, phase="decode")
    for key in ("kv_cache", "ssm_state", "conv_state"):
        assert abs(predicted[key] - measured[key]) <= 0.02 * max(measured[key], 1), key
    assert measured["total"] > 0


def test_cache_at_full_size_on_meta():
    model = models.config("hybrid_1_7", "1.3b").build(meta=True)
    cache = model.allocate_cache(1, 2**20, torch.bfloat16)
    predicted = model.cfg.cost().memory(1, 2**20, torch.bfloat16, phase="decode")
    assert cache.nbytes()["kv_cache"] == predicted["kv_cache"] == 3 * 2 * 2**20 * 4 * 128 * 2


def test_kernel_backends_and_bad_backend_key():
    model = tiny("all_letters")
    assert model.kernel_backends() == {
        "attention": "math",
        "attention_decode": "matmul",
        "ssm": "torch",
        "conv": "torch",
    }
    with pytest.raises(ValueError, match="backends"):
        models.create("mamba2", backends={"scan": "torch"}, **TINY, n_layer=1)


def test_trains():
    model = tiny("all_letters").train()
    ids = torch.randint(0, TINY["vocab_size"], (2, 8))
    loss = torch.nn.functional.cross_entropy(model(ids)[:, :-1].flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
