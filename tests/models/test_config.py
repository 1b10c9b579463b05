"""Presets, sizes and validation: every YAML composes, counts match, bad shapes name the field."""

from __future__ import annotations

import pytest
import torch

import models
from models.config import make_pattern

NATIVE = [n for n in models.preset_names() if n != "hf"]


def test_names():
    assert {
        "transformer",
        "transformer_mha",
        "mamba2",
        "mamba1",
        "hybrid_1_7",
        "hybrid_30",
        "nemotron_h_like",
        "hf",
    } <= set(models.preset_names())
    assert models.size_names() == ["130m", "370m", "780m", "1.3b", "2.7b", "7b", "70b"]


@pytest.mark.parametrize("size", models.size_names())
@pytest.mark.parametrize("name", NATIVE)
def test_every_preset_matches_its_size(name, size):
    cfg = models.config(name, size)
    total = cfg.cost().params()["total"]
    assert abs(total / cfg.target_params - 1) < 0.05, (name, size, total)
    published = models.size_info(size).get("published", {})
    if name in published:
        assert abs(total / float(published[name]) - 1) < 0.05, (name, size, total)


@pytest.mark.parametrize("name", NATIVE)
def test_cost_params_equal_built_params_on_meta(name):
    for size in ("1.3b", "70b"):
        cfg = models.config(name, size)
        model = cfg.build(meta=True)
        assert next(model.parameters()).device.type == "meta"
        assert cfg.cost().params()["total"] == model.num_params()


def test_published_shapes():
    m2 = models.config("mamba2", "1.3b")
    assert (m2.d_model, m2.n_layer, m2.d_state, m2.headdim, m2.nheads_ssm) == (
        2048,
        48,
        128,
        64,
        64,
    )
    assert (models.config("mamba2", "2.7b").d_model, models.config("mamba2", "2.7b").n_layer) == (
        2560,
        64,
    )
    t = models.config("transformer", "1.3b")  # PEERS.md's Llama
    assert (t.pattern, t.heads, t.kv_heads, t.d_ff) == ("A-" * 24, 16, 4, 5632)
    assert models.config("transformer_mha", "1.3b").kv_heads == 16
    assert models.config("mamba1", "1.3b").dt_rank == 128


def test_hybrid_patterns():
    assert make_pattern(16, 0.125, "M", True) == "M-M-M-M-A-M-M-M-"
    h = models.config("hybrid_1_7", "1.3b")
    assert h.count("A") == 3 and h.count("M") == 21 and h.count("-") == 24
    n = models.config("nemotron_h_like", "1.3b")
    assert 0.06 < n.count("A") / n.n_layer < 0.1
    assert models.config("hybrid_30", "1.3b").count("A") == 7  # 30% of 24 mixers


def test_overrides_and_explicit_pattern():
    cfg = models.config("mamba2", pattern="MA-S-", d_model=64, vocab_size=128)
    assert cfg.n_layer == 5 and cfg.target_params == 0 and cfg.d_ff == 192  # 8/3 d_model
    assert models.config("transformer", n_layer=4, d_model=64).pattern == "A-A-"


def test_unknown_names_list_valid_ones():
    with pytest.raises(ValueError, match="valid names: .*mamba2"):
        models.config("mamba3")
    with pytest.raises(ValueError, match="valid names: .*1.3b"):
        models.config("mamba2", "5b")
    with pytest.raises(ValueError, match="d_modle"):
        models.config("mamba2", d_modle=64)


@pytest.mark.parametrize(
    ("overrides", "field_name"),
    [
        (dict(heads=16, kv_heads=3), "kv_heads"),
        (dict(headdim=48), "headdim"),
        (dict(pattern="MAX-"), "pattern"),
        (dict(pattern="MA", n_layer=3), "n_layer"),
        (dict(heads=6, kv_heads=2, d_model=64), "heads"),
        (dict(mixer="Q"), "mixer"),
    ],
)
def test_invalid_shapes_name_the_field(overrides, field_name):
    with pytest.raises(ValueError, match=f"^{field_name}:"):
        models.config("hybrid_1_7", **overrides)


def test_hf_preset_needs_a_source():
    with pytest.raises(ValueError, match="^hf_source:"):
        models.config("hf")


def test_cost_model_shape():
    c = models.config("transformer", "1.3b").cost()
    p = c.params()
    assert set(p) == {
        "embedding",
        "attention",
        "mamba2",
        "mamba1",
        "mlp",
        "norm",
        "lm_head",
        "total",
    }
    # prefill grows quadratically for attention, linearly for Mamba-2
    t4, t64 = c.prefill_flops(1, 4096), c.prefill_flops(1, 65536)
    assert t64 / t4 > 20
    m = models.config("mamba2", "1.3b").cost()
    assert 15 < m.prefill_flops(1, 65536) / m.prefill_flops(1, 4096) < 17
    # about 2 FLOPs per parameter per token, the attention term on top
    assert 0.999 < c.decode_flops(1, 0) / (2 * (p["total"] - p["embedding"])) < 1.01
    mem = c.memory(1, 131072, torch.bfloat16, phase="decode")
    assert mem["kv_cache"] == 24 * 2 * 131072 * 4 * 128 * 2
    assert mem["total"] == sum(v for k, v in mem.items() if k != "total")
    assert m.memory(1, 131072, "bfloat16", phase="decode")["kv_cache"] == 0
    assert m.decode_bytes(1, 10**6, "bfloat16") == m.decode_bytes(1, 10, "bfloat16")
    assert c.decode_bytes(1, 10**6, "bfloat16") > c.decode_bytes(1, 10, "bfloat16")
    pre, with_cache = m.memory(1, 2**20, "bf16"), m.memory(1, 2**20, "bf16", phase="prefill_cache")
    assert pre["ssm_state"] == 0 < with_cache["ssm_state"]
    assert pre["activations"] == with_cache["activations"] > pre["weights"]  # 1M tokens
    with pytest.raises(ValueError, match="phase"):
        c.memory(1, 1024, "bfloat16", phase="train")
