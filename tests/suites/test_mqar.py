"""MQAR data (Zoology protocol), its cache, and one tiny measurement end to end on CPU."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.point import Point
from suites import mqar as suite
from suites.quality import synthetic as S
from suites.quality.cache import cache_key
from tests.suites.cpu_point import cpu_point

SPEC = S.MQARSpec(num_examples=64, seq_len=64, kv_pairs=8, vocab_size=256, seed=5)


def test_same_seed_same_data_other_seed_other_data():
    a, b = S.mqar(SPEC), S.mqar(SPEC)
    c = S.mqar(dataclasses.replace(SPEC, seed=6))
    assert np.array_equal(a["inputs"], b["inputs"]) and np.array_equal(a["labels"], b["labels"])
    assert not np.array_equal(a["inputs"], c["inputs"])


def test_keys_values_from_disjoint_halves_and_answers_at_query_positions():
    d = S.mqar(SPEC)
    x, y = d["inputs"], d["labels"]
    half, k = SPEC.vocab_size // 2, SPEC.kv_pairs
    assert x.shape == y.shape == (64, 64)
    keys, values = x[:, 0 : 2 * k : 2], x[:, 1 : 2 * k : 2]
    assert ((keys >= 1) & (keys < half)).all() and ((values >= half) & (values < 256)).all()
    assert all(len(set(row)) == k for row in keys)  # distinct keys per example
    for row in range(x.shape[0]):
        pos = np.flatnonzero(y[row] != S.IGNORE)
        assert len(pos) == k  # every key is queried once
        assert (pos >= 2 * k).all() and ((pos - 2 * k) % 2 == 0).all()  # even slots after the pairs
        for p in pos:
            i = list(keys[row]).index(x[row, p])  # the token at a scored position is a key ...
            assert y[row, p] == values[row, i]  # ... and its label is that key's value
    assert (y[:, : 2 * k] == S.IGNORE).all()  # nothing scored inside the key-value block


def test_query_distances_follow_a_power_law():
    d = S.mqar(dataclasses.replace(SPEC, num_examples=2000, kv_pairs=4, seq_len=128))
    gaps = (np.nonzero(d["labels"] != S.IGNORE)[1] - 8) // 2
    near, far = (gaps < 10).mean(), (gaps >= 50).mean()
    assert near > 2 * far  # most queries near the pairs, some far
    assert far > 0


def test_bad_parameters_are_reported():
    assert "kv_pairs" in S.MQARSpec(1, 16, 8).check()
    assert "even" in S.MQARSpec(1, 63, 4).check()
    with pytest.raises(ValueError, match="mqar"):
        S.mqar(S.MQARSpec(1, 16, 8))


def test_cache_is_reused_and_invalidated_by_any_parameter(tmp_path):
    arrays, info = S.load_mqar(SPEC, str(tmp_path))
    again, info2 = S.load_mqar(SPEC, str(tmp_path))
    assert not info["from_cache"] and info2["from_cache"]
    assert info["cache_key"] == info2["cache_key"]
    assert np.array_equal(arrays["inputs"], again["inputs"])
    assert again["inputs"].shape == (64, 64)
    keys = {info["cache_key"]}
    for change in (
        {"power_a": 0.02},
        {"random_non_queries": False},
        {"seed": 9},
        {"vocab_size": 512},
    ):
        _, other = S.load_mqar(dataclasses.replace(SPEC, **change), str(tmp_path))
        assert not other["from_cache"], change
        keys.add(other["cache_key"])
    assert len(keys) == 5
    assert cache_key("mqar", {"a": 1}) != cache_key("niah", {"a": 1})


def _point(tmp_path, model="transformer", **over) -> Point:
    cfg = suite.MQARConfig(
        vocab_size=64,
        lrs=[1e-3, 1e9],  # the second diverges: the sweep must survive it and keep the first
        steps=30,
        batch_size=16,
        test_examples=64,
        cache_dir=str(tmp_path),
    )
    params = {k: getattr(cfg, k) for k in vars(cfg) if k not in ("models", "model_overrides")}
    params.update({"width": 32, "seq_len": 32, "kv_pairs": 4, "overrides": {}, **over})
    for k in ("widths", "seq_lens"):
        params.pop(k)
    return cpu_point("mqar", model, 32, 16, params)


def test_run_trains_sweeps_and_records(tmp_path):
    out = suite.run(_point(tmp_path))
    m = out["metrics"]
    assert 0.0 <= m["accuracy"] <= 1.0
    assert m["train_step_mode"] == "eager"  # CUDA graphs only on a GPU
    assert m["lr"] == 1e-3 and m["accuracy_by_lr"]["1000000000.0"] == 0.0
    assert "diverged" in out["samples"]["sweep"]["1000000000.0"]
    assert len(m["loss_curve"]) > 1 and m["loss_curve"][-1][1] < m["loss_curve"][0][1]
    assert m["params"] > 0 and m["scored_positions"] == 64 * 4
    assert out["model"]["pattern"] == "A-A-"


def test_preflight_names_a_hybrid_without_attention(tmp_path):
    reason = suite.preflight(_point(tmp_path, model="hybrid_1_7"), None)
    assert reason and "not a hybrid" in reason and "n_layer" in reason
    assert suite.preflight(_point(tmp_path, model="hybrid_30"), None) is None
    assert "kv_pairs" in suite.preflight(_point(tmp_path, kv_pairs=16), None)
