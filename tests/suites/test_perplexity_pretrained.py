"""A transformers checkpoint in the perplexity suite (model=hf): scored as it is with its own
tokenizer, bits per byte by byte position, and never silently truncated."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

from harness.point import freeze
from suites import perplexity as suite
from suites.quality import corpus as C
from suites.quality import pretrained
from tests.suites.cpu_point import cpu_point

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

TEXT = "The needle sits in the haystack; the haystack is long. Ünïcode bytes count too. " * 40


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny Llama with a byte-level BPE tokenizer of its own, saved as a folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    path = tmp_path_factory.mktemp("ckpt")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<s>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator([TEXT], trainer)
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>")
    fast.save_pretrained(path)
    cfg = transformers.LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=48,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=256)  # fmt: skip
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    return str(path)


def _point(tmp_path, L, src):
    (tmp_path / "docs").mkdir(exist_ok=True)
    for i in range(3):
        (tmp_path / "docs" / f"d{i}.txt").write_text(TEXT)
    corpus = {**vars(C.CorpusConfig(source="folder", path=str(tmp_path / "docs"), eval_docs=1))}
    params = {"corpus": corpus, "eval_windows": 3, "buckets": None, "eval_tokens": 4096,
              "cache_dir": str(tmp_path), "overrides": {"hf_source": src}}  # fmt: skip
    return cpu_point("perplexity", "hf", L, 1, params)


def test_a_checkpoint_is_scored_in_bits_per_byte_by_byte_position(tmp_path, checkpoint):
    import torch

    out = suite.run(_point(tmp_path, 300, checkpoint))["metrics"]
    assert not out["trained_here"] and list(out["bpb_by_bucket"]) == ["0-64", "64-256", "256-300"]
    # the same number, by hand: every window's token losses over its UTF-8 bytes
    model, tok, _ = pretrained.load(checkpoint, "cpu")
    windows = suite.eval_windows(C.load(C.CorpusConfig(source="folder",
                                 path=str(tmp_path / "docs"), eval_docs=1)), 300, 3)  # fmt: skip
    nats = nbytes = tokens = 0
    for w in windows:
        text = bytes(w[:300]).decode("utf-8", errors="ignore")
        ids = torch.tensor([[tok.bos_token_id, *tok(text, add_special_tokens=False)["input_ids"]]])
        with torch.no_grad():
            logits = model(ids).float()
        nats += torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:], reduction="sum")
        nbytes, tokens = nbytes + len(text.encode()), tokens + ids.shape[1] - 1
    assert out["bpb"] == pytest.approx(float(nats) / math.log(2) / nbytes, rel=1e-4)
    assert out["tokens"] == tokens and out["tokens_per_byte"] < 1  # BPE merges bytes
    assert out["bytes"] == nbytes


def test_a_window_past_the_checkpoints_positions_is_an_error(tmp_path, checkpoint):
    with pytest.raises(ValueError, match="positions.*no silent truncation"):
        suite.run(_point(tmp_path, 2000, checkpoint))


def test_model_hf_needs_a_checkpoint_named():
    point = cpu_point("perplexity", "hf", 64, 1, {"overrides": {}})
    assert "hf_source" in suite.preflight(point, None)
    named = replace(point, params=freeze({"overrides": {"hf_source": "/some/ckpt"}}))
    assert suite.preflight(named, None) is None
