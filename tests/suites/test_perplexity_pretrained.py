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


@pytest.fixture(scope="module", params=[False, True], ids=["offsets", "trimmed-offsets"])
def checkpoint(tmp_path_factory, request):
    """A tiny Llama with a byte-level BPE tokenizer of its own, saved as a folder; with trimmed
    offsets (GPT-2 style: a token's leading space is outside its span, a lone space's is empty)
    as well, which must not lose a byte or a loss."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    path = tmp_path_factory.mktemp("ckpt")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    if request.param:
        tok.post_processor = processors.ByteLevel(trim_offsets=True)
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


# ---- mqar and niah on a checkpoint, zero-shot -----------------------------------------------


class InductionOracle:
    """A stand-in checkpoint that solves associative recall exactly: at each position it
    predicts the token that followed the first occurrence of the current token (the key-value
    pairs come first; later random filler may repeat a key)."""

    def __init__(self, vocab: int):
        import types

        text = types.SimpleNamespace(vocab_size=vocab, max_position_embeddings=4096)
        self.hf = types.SimpleNamespace(config=types.SimpleNamespace(get_text_config=lambda: text))
        self.vocab = vocab

    def eval(self):
        return self

    def __call__(self, x):
        import torch

        B, T = x.shape
        logits = torch.zeros(B, T, self.vocab)
        for b in range(B):
            first: dict[int, int] = {}
            for t in range(T):
                k = int(x[b, t])
                if k in first:
                    logits[b, t, int(x[b, first[k] + 1])] = 1.0
                else:
                    first[k] = t
        return logits


def _oracle(monkeypatch, vocab=300):
    notes = lambda src: {"params": 0, "kernel_backends": {}, "hf_source": src}  # noqa: E731
    monkeypatch.setattr(
        pretrained, "load_model", lambda src, dev: (InductionOracle(vocab), notes(src))
    )


def test_shift_keeps_unscored_positions_and_refuses_a_too_small_vocabulary():
    import torch

    x, y = torch.tensor([[1, 2, 3]]), torch.tensor([[-100, 5, -100]])
    xs, ys = pretrained.shift_tokens(x, y, 10)
    assert xs.tolist() == [[11, 12, 13]] and ys.tolist() == [[-100, 15, -100]]
    assert pretrained.token_offset(300, 64) == 118
    with pytest.raises(ValueError, match="larger than the checkpoint"):
        pretrained.token_offset(50, 64)


def test_mqar_on_a_checkpoint_scores_the_test_set_zero_shot(tmp_path, monkeypatch):
    from suites import mqar
    from tests.suites.test_mqar import _point as mqar_point

    _oracle(monkeypatch)
    p = mqar_point(tmp_path, model="hf", overrides={"hf_source": "ckpt"})
    assert mqar.preflight(p, None) is None
    m = mqar.run(p)["metrics"]
    assert m["zero_shot"] and not m["trained_here"] and m["token_offset"] == (300 - 64) // 2
    assert m["accuracy"] == 1.0 and m["scored_positions"] == 64 * 4  # exact induction: all


def test_niah_on_a_checkpoint_scores_each_cell_zero_shot(tmp_path, monkeypatch):
    from suites import niah
    from tests.suites.test_niah import _point as niah_point

    _oracle(monkeypatch)
    p = niah_point(tmp_path, 64, 0.5)
    p = replace(p, model="hf", params=freeze({**dict(p.params), "overrides": {"hf_source": "c"}}))
    m = niah.run(p)["metrics"]
    assert m["zero_shot"] and m["depth"] == 0.5 and m["accuracy"] == 1.0 and m["scored"] == 16


def test_a_real_tiny_checkpoint_runs_the_recall_tasks(tmp_path, checkpoint):
    from suites import mqar
    from tests.suites.test_mqar import _point as mqar_point

    m = mqar.run(mqar_point(tmp_path, model="hf", overrides={"hf_source": checkpoint}))
    assert 0.0 <= m["metrics"]["accuracy"] <= 1.0 and m["model"]["hf_source"] == checkpoint


def test_preflight_skips_lengths_past_the_checkpoints_positions(tmp_path, checkpoint):
    from suites import mqar, niah
    from tests.suites.test_mqar import _point as mqar_point
    from tests.suites.test_niah import _point as niah_point

    ok = mqar_point(tmp_path, model="hf", overrides={"hf_source": checkpoint})
    assert mqar.preflight(ok, None) is None
    long = niah_point(tmp_path, 512, 0.5)  # the tiny checkpoint has 256 positions
    hf = {"overrides": {"hf_source": checkpoint}}
    long = replace(long, model="hf", params=freeze({**dict(long.params), **hf}))
    assert "past the checkpoint's 256 positions" in niah.preflight(long, None)
    gone = replace(
        ok, params=freeze({**dict(ok.params), "overrides": {"hf_source": str(tmp_path)}})
    )
    assert "cannot be read" in mqar.preflight(gone, None)


def test_mqar_plans_one_checkpoint_point_per_task_setting_not_per_width():
    from harness import config as C_
    from harness import plan as P
    from harness.env import detect
    from tests.harness.test_config import _compose

    args = ("suite=recall", "models=[hf,transformer]", "+suite.model_overrides.hf_source=x",
            "suite.measure=[mqar]", "suite.mqar.widths=[64,128]")  # fmt: skip
    ctx = P.context(C_.to_object(_compose(*args)), detect("cpu"), "1.3b")
    points = [p.point for p in P.plan(ctx)]
    by_model = {m: sum(p.model == m for p in points) for m in ("hf", "transformer")}
    assert by_model == {"hf": by_model["transformer"] // 2, "transformer": by_model["transformer"]}
