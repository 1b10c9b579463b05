"""On a GPU the training step is captured in a CUDA graph: same losses as the eager loop from the
same weights and batches, and faster for the tiny models the quality suites train."""

from __future__ import annotations

import copy
import time

import pytest
import torch

import models
from suites.training import IGNORE, TrainConfig, shuffled_batches, train

pytestmark = pytest.mark.gpu

SHAPE = dict(d_model=64, vocab_size=128, heads=4, kv_heads=2, d_ff=128, headdim=16, d_state=16,
             ngroups=1, chunk_size=16, d_state_m1=8)  # fmt: skip
STEPS = 150  # at 60 the 2-layer Transformer had only gone from 4.84 to 4.35 (H200)
LAYERS = {"transformer": 2, "mamba2": 2, "mamba1": 2, "hybrid_30": 6}  # 6: one attention layer


def _data(n=512, T=64, vocab=128):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (n, T), generator=g)
    y = torch.roll(x, 1, dims=1)  # copy the previous token: learnable by every architecture
    y[:, 0] = IGNORE
    return x, y


def _train(model, graph: bool, steps: int = STEPS):
    x, y = _data()
    cfg = TrainConfig(steps=steps, lr=3e-3, log_every=10, cuda_graph=graph)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = train(model, shuffled_batches(x, y, 32, seed=0), cfg, device="cuda")
    torch.cuda.synchronize()
    return out, time.perf_counter() - t0


@pytest.mark.parametrize("name", LAYERS)
def test_graph_training_matches_the_eager_loop_and_is_faster(name):
    torch.manual_seed(0)
    base = models.create(name, n_layer=LAYERS[name], **SHAPE).cuda()
    _train(copy.deepcopy(base), graph=False, steps=8)  # JIT and autotune out of the timings
    eager, t_eager = _train(copy.deepcopy(base), graph=False)
    graphed, t_graph = _train(copy.deepcopy(base), graph=True)
    assert eager["step_mode"] == "eager" and graphed["step_mode"] == "cuda_graph", graphed
    first, last = eager["loss_curve"][0][1], eager["loss_curve"][-1][1]
    assert last < 0.9 * first, (first, last)  # it learns, so the comparison below means something
    for (s1, a), (s2, b) in zip(eager["loss_curve"], graphed["loss_curve"], strict=True):
        assert s1 == s2 and abs(a - b) <= 0.03 * abs(a) + 0.02, (s1, a, b)  # bf16 reorderings
    print(f"{name}: eager {t_eager * 1e3 / STEPS:.1f} ms/step, graph {t_graph * 1e3 / STEPS:.1f}")
    assert t_graph < t_eager
