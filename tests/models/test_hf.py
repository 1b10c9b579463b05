"""transformers interop: tiny random checkpoints load into the native model with the same logits;
unsupported checkpoints fail naming what is supported; model=hf runs any causal LM as it is."""

from __future__ import annotations

import pytest
import torch

import models
from tests.models.conftest import rel_err

transformers = pytest.importorskip("transformers")

V = 96


def _configs():
    t = transformers
    return {
        "llama": (
            t.LlamaConfig(
                vocab_size=V,
                hidden_size=64,
                intermediate_size=80,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=2,
            ),
            t.LlamaForCausalLM,
        ),
        "mistral": (
            t.MistralConfig(
                vocab_size=V,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                num_key_value_heads=1,
                sliding_window=None,
                tie_word_embeddings=True,
            ),
            t.MistralForCausalLM,
        ),
        "mamba": (
            t.MambaConfig(vocab_size=V, hidden_size=32, state_size=8, num_hidden_layers=2),
            t.MambaForCausalLM,
        ),
        "mamba2": (
            t.Mamba2Config(
                vocab_size=V,
                hidden_size=32,
                state_size=16,
                num_hidden_layers=2,
                num_heads=8,
                head_dim=8,
                n_groups=2,
                chunk_size=8,
            ),
            t.Mamba2ForCausalLM,
        ),
    }


def _save(tmp_path, kind):
    config, cls = _configs()[kind]
    hf = cls(config).eval()
    with torch.no_grad():  # random, non-trivial norms so that a swapped weight shows
        for name, p in hf.named_parameters():
            if (
                name.endswith("norm.weight")
                or "layernorm" in name
                or name.endswith("norm_f.weight")
            ):
                p.uniform_(0.5, 1.5)
    hf.save_pretrained(tmp_path)
    return hf


@pytest.mark.parametrize("kind", ["llama", "mistral", "mamba", "mamba2"])
def test_load_hf_matches_transformers(tmp_path, kind):
    hf = _save(tmp_path, kind)
    native = models.load_hf(tmp_path)
    ids = torch.randint(0, V, (2, 19))
    with torch.no_grad():
        expected = hf(ids).logits
        got = native(ids)
        cache = native.allocate_cache(2, 19)
        native.prefill(ids[:, :10], cache)
        steps = torch.cat([native.step(ids[:, t : t + 1], cache) for t in range(10, 19)], dim=1)
    assert rel_err(got, expected) < 1e-4
    assert rel_err(steps, expected[:, 10:]) < 1e-4
    assert native.num_params() == sum(p.numel() for p in hf.parameters())
    assert native.cfg.cost().params()["total"] == native.num_params()


def test_unsupported_checkpoint_names_what_is_supported(tmp_path):
    config = transformers.GPT2Config(vocab_size=V, n_embd=32, n_layer=1, n_head=2)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="model_type 'gpt2'.*LlamaForCausalLM.*Mamba2ForCausalLM"):
        models.load_hf(tmp_path)


def test_unsupported_variant_is_named(tmp_path):
    config, cls = _configs()["llama"]
    config.attention_bias = True
    cls(config).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="attention_bias"):
        models.load_hf(tmp_path)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(ValueError, match="not a transformers checkpoint"):
        models.load_hf(tmp_path)


def test_model_hf_runs_transformers_as_it_is(tmp_path):
    hf = _save(tmp_path, "mamba2")
    model = models.create("hf", hf_source=str(tmp_path), hf_weights="pretrained")
    ids = torch.randint(0, V, (1, 12))
    with torch.no_grad():
        expected = hf(ids).logits
        assert rel_err(model(ids), expected) < 1e-6
        assert rel_err(model(ids, last_only=True), expected[:, -1:]) < 1e-6
        cache = model.allocate_cache(1, 12)
        model.prefill(ids[:, :8], cache)
        steps = torch.cat([model.step(ids[:, t : t + 1], cache) for t in range(8, 12)], dim=1)
    assert rel_err(steps, expected[:, 8:]) < 1e-4
    assert model.cost().params()["total"] == model.num_params()
    assert "attention" in model.kernel_backends()
    random = models.create("hf", hf_source=str(tmp_path))
    assert random.num_params() == model.num_params()
