"""Tiny shapes shared by the model tests (CPU, float32)."""

from __future__ import annotations

import pytest
import torch

# Small enough that the plain-torch kernels run in milliseconds, large enough to have 2 groups,
# GQA and several SSD chunks.
TINY = dict(
    d_model=32,
    vocab_size=64,
    heads=4,
    kv_heads=2,
    d_ff=48,
    headdim=8,
    d_state=8,
    ngroups=2,
    chunk_size=4,
    d_state_m1=4,
)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()
