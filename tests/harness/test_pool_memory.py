"""Models bigger than one GPU: a point the cost model says cannot fit on one GPU is skipped before
any work, with the predicted requirement as the reason (no tensor or context parallelism)."""

from __future__ import annotations

import re

from harness import config as C
from harness import plan as P

from .test_config import _compose
from .test_pool import fake_hw


def _plan(size: str, models: str, contexts: str, *extra: str) -> dict:
    cfg = C.to_object(
        _compose("suite=scaling", f"size={size}", f"models={models}", f"sweep.context={contexts}")
    )
    planned = P.plan(P.context(cfg, fake_hw(2, "NVIDIA H100 80GB HBM3"), size))
    return {(x.point.suite, x.point.model, x.point.context): x.skip_reason for x in planned}


def _gb(reason: str) -> float:
    return float(re.search(r"predicted \w+ memory ([\d.]+) GB", reason).group(1))


def test_7b_presets_at_long_context_are_skipped_with_the_predicted_need():
    got = _plan("7b", "[transformer,mamba2]", "[4k,1m]")
    for suite in ("prefill", "decode", "memory"):
        assert got[suite, "transformer", 4096] is None  # 14 GB of weights fit
        reason = got[suite, "transformer", 1 << 20]
        assert "GB usable" in reason and "NVIDIA H100" in reason
        assert _gb(reason) > 76.0  # more than one GPU's usable share
    assert _gb(got["prefill", "transformer", 1 << 20]) > 200  # the 1M-token KV cache alone
    assert got["decode", "mamba2", 1 << 20] is None  # a constant-size state fits at any length
    assert "GB usable" in got["prefill", "mamba2", 1 << 20]  # its prefill activations do not


def test_70b_does_not_fit_one_gpu_at_any_length():
    got = _plan("70b", "[transformer]", "[1k]")
    assert all(r is not None and _gb(r) > 100 for r in got.values())
