"""The training loop: it learns, it is deterministic for a seed on CPU, its schedule is right."""

from __future__ import annotations

import math

import pytest
import torch

from suites.training import IGNORE, TrainConfig, lr_at, masked_loss, shuffled_batches, train


class Bigram(torch.nn.Module):
    """Smallest model with the ctxbench interface: ids [B, T] -> logits [B, T, V]."""

    def __init__(self, vocab: int = 16):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, 32)
        self.out = torch.nn.Linear(32, vocab)

    def forward(self, ids):
        return self.out(self.emb(ids))


def _data(n=256, T=12, vocab=16, seed=0):
    """Next token = (token + 3) mod vocab: learnable by a bigram model."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, vocab, (n, T), generator=g)
    y = (x + 3) % vocab
    y[:, ::2] = IGNORE  # half the positions carry no loss
    return x, y


def _run(seed: int, steps: int = 60):
    torch.manual_seed(seed)
    model = Bigram()
    x, y = _data()
    cfg = TrainConfig(steps=steps, lr=1e-2, log_every=10)
    return model, train(model, shuffled_batches(x, y, 32, seed), cfg)


def test_training_reduces_loss():
    _, result = _run(0)
    curve = result["loss_curve"]
    assert curve[0][1] > 2.0  # ~ln 16 at the start
    assert curve[-1][1] < 0.5 * curve[0][1]
    assert [s for s, _ in curve] == [10, 20, 30, 40, 50, 60]
    assert result["supervised_tokens"] == 60 * 32 * 6
    assert result["step_mode"] == "eager"  # no CUDA graph on a CPU, whatever the config says


def test_training_is_deterministic_for_a_seed_on_cpu():
    m1, r1 = _run(3)
    m2, r2 = _run(3)
    _, r3 = _run(4)
    assert r1["loss_curve"] == r2["loss_curve"]
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)
    assert r1["loss_curve"] != r3["loss_curve"]


def test_lr_schedule_warmup_then_cosine_to_floor():
    cfg = TrainConfig(steps=100, lr=1.0, warmup=0.1, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1)
    assert lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == pytest.approx(1.0)
    mid = 10 + 45
    assert lr_at(mid, cfg) == pytest.approx(0.1 + 0.9 * 0.5, abs=1e-2)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3)
    assert all(lr_at(s, cfg) >= lr_at(s + 1, cfg) for s in range(10, 99))


def test_masked_loss_ignores_unlabelled_positions():
    logits = torch.zeros(1, 3, 4)
    logits[0, 0, 1] = 100.0  # confidently right at position 0
    labels = torch.tensor([[1, IGNORE, IGNORE]])
    assert masked_loss(logits, labels).item() == pytest.approx(0.0, abs=1e-6)
    labels = torch.tensor([[1, 2, IGNORE]])  # position 1 is uniform: ln 4 / 2 on average
    assert masked_loss(logits, labels).item() == pytest.approx(math.log(4) / 2, abs=1e-5)


def test_divergence_is_an_error_not_a_number():
    model = Bigram()
    x, y = _data()
    with torch.no_grad():
        model.out.weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss is nan"):
        train(model, shuffled_batches(x, y, 32, 0), TrainConfig(steps=5, log_every=5))


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="warmup"):
        TrainConfig(warmup=1.5)
    with pytest.raises(ValueError, match="fewer than one batch"):
        next(shuffled_batches(torch.zeros(3, 4), torch.zeros(3, 4), 8, 0))
