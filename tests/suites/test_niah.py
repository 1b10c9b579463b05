"""Needle-in-a-haystack data and the trained-model cache shared by a model's points."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness.point import Point, freeze
from suites import niah as suite
from suites.quality import synthetic as S
from tests.suites.cpu_point import cpu_point

SPEC = S.NIAHSpec(num_examples=32, length=96, vocab_size=64, needles=3, seed=1)


def _needles(row_inputs: np.ndarray) -> dict[int, tuple[int, int]]:
    """key -> (start, value) of every needle in one example."""
    starts = np.flatnonzero(row_inputs == S.NEEDLE)
    return {int(row_inputs[s + 1]): (int(s), int(row_inputs[s + 2])) for s in starts}


def test_deterministic_for_a_seed():
    a, b = S.niah(SPEC), S.niah(SPEC)
    c = S.niah(dataclasses.replace(SPEC, seed=2))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["inputs"], c["inputs"])


def test_every_query_is_answered_by_its_needle():
    d = S.niah(SPEC)
    hay = SPEC.haystack
    for x, y in zip(d["inputs"], d["labels"], strict=True):
        needles = _needles(x[:hay])
        assert len(needles) == SPEC.needles  # distinct keys, no overlap
        assert (x[hay::2] == S.QUERY).all()
        scored = np.flatnonzero(y != S.IGNORE)
        assert list(scored) == list(range(hay + 1, SPEC.length, 2))  # label_all: every query
        for p in scored:
            assert y[p] == needles[int(x[p])][1]  # the label is the value of the queried key
        filler = np.delete(x[:hay], [s + i for s, _ in needles.values() for i in range(3)])
        assert (filler >= S.FIRST + 2 * SPEC.n_keys).all()  # filler never looks like a needle


@pytest.mark.parametrize("depth", [0.0, 0.5, 1.0])
def test_target_sits_at_depth_and_only_it_is_scored(depth):
    d = S.niah(dataclasses.replace(SPEC, depth=depth, label_all=False))
    slots = SPEC.haystack // S.NEEDLE_LEN
    expect = round(depth * (slots - 1)) * S.NEEDLE_LEN
    assert (d["target_pos"] == expect).all()
    for x, y in zip(d["inputs"], d["labels"], strict=True):
        assert x[expect] == S.NEEDLE
        scored = np.flatnonzero(y != S.IGNORE)
        assert len(scored) == 1
        assert x[scored[0]] == x[expect + 1] and y[scored[0]] == x[expect + 2]
        assert len(_needles(x[: SPEC.haystack])) == SPEC.needles  # distractors moved, not lost


def test_bad_specs_are_reported():
    assert "too short" in S.NIAHSpec(1, 10, needles=4).check()
    assert "depth" in S.NIAHSpec(1, 64, depth=1.5).check()


def _point(tmp_path, L: int, depth: float) -> Point:
    cfg = suite.NIAHConfig(
        train_length=32,
        width=32,
        vocab_size=64,
        needles=2,
        steps=20,
        batch_size=8,
        val_examples=16,
        eval_examples=16,
        cache_dir=str(tmp_path),
    )
    params = {k: getattr(cfg, k) for k in suite.TRAIN_KEYS}
    params.update(eval_examples=16, eval_tokens=4096, cache_dir=str(tmp_path))
    params.update(depth=depth, overrides={})
    return cpu_point("niah", "transformer", L, 8, params)


def test_points_of_a_model_train_once_and_all_carry_the_curve(tmp_path):
    first = suite.run(_point(tmp_path, 32, 0.0))
    second = suite.run(_point(tmp_path, 64, 1.0))  # beyond the training length
    m1, m2 = first["metrics"], second["metrics"]
    assert m1["trained_here"] and not m2["trained_here"]
    assert m1["loss_curve"] == m2["loss_curve"] and len(m1["loss_curve"]) > 1
    assert not m1["beyond_training"] and m2["beyond_training"]
    assert m2["train_length"] == 32 and m2["depth"] == 1.0
    assert 0.0 <= m2["accuracy"] <= 1.0 and m2["scored"] == 16
    # another training setting is another model
    other = _point(tmp_path, 32, 0.0)
    params = dict(other.params)
    params["steps"] = 21
    changed = dataclasses.replace(other, params=freeze(params))
    assert suite.run(changed)["metrics"]["trained_here"]
