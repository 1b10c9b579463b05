"""The split-S decode product equals the plain one, and a model decoding with it reproduces its
forward (the option exists to be measured against `matmul` on a GPU: models/README.md)."""

from __future__ import annotations

import pytest
import torch

import models
import models.attention
from models.attention import split_s_pv
from tests.models.conftest import TINY, rel_err


@pytest.mark.parametrize("S, chunk", [(3000, 1024), (2048, 1024), (700, 1024), (96, 16)])
def test_split_s_product_matches_one_matmul(S, chunk):
    probs = torch.rand(2, 3, 4, S).softmax(-1)
    v = torch.randn(2, 3, S, 8)
    got = split_s_pv(probs, v, chunk=chunk)
    assert got.shape == (2, 3, 4, 8)
    assert rel_err(got, torch.matmul(probs, v)) < 1e-5


def test_split_s_decode_reproduces_the_forward_and_is_recorded(monkeypatch):
    monkeypatch.setattr(models.attention, "SPLIT_CHUNK", 4)  # 11 cache slots: 2 pieces + 3
    model = models.create("transformer", **{**TINY, "n_layer": 4, "decode_attention": "split_s"})
    model.eval()
    ids = torch.randint(0, TINY["vocab_size"], (2, 11))
    with torch.no_grad():
        full = model(ids)
        cache = model.allocate_cache(2, 11)
        steps = torch.cat([model.step(ids[:, t : t + 1], cache) for t in range(11)], dim=1)
    assert rel_err(steps, full) < 1e-5
    assert model.kernel_backends()["attention_decode"] == "split_s"


def test_unknown_decode_attention_names_the_choices():
    with pytest.raises(ValueError, match="decode_attention: must be one of .*split_s"):
        models.config("transformer", decode_attention="flash_decoding")
