from __future__ import annotations

import pytest

from harness import config as C
from harness import plan as P
from harness.env import detect
from harness.point import Point

from .test_config import _compose


def _ctx(*overrides: str) -> P.PlanContext:
    cfg = C.to_object(_compose(*overrides))
    return P.context(cfg, detect("cpu"), "1.3b")


def test_points_are_frozen_hashable_and_round_trip():
    planned = P.plan(_ctx("suite=smoke"))
    p = planned[0].point
    assert Point.from_dict(p.to_dict()) == p
    assert Point.from_dict(p.to_dict()).hash == p.hash
    with pytest.raises(AttributeError):
        p.context = 5  # frozen
    assert len({x.point for x in planned}) == len(planned)


def test_within_a_group_lengths_ascend():
    planned = P.plan(_ctx("suite=kernels", "sweep.context=[64k,1k,4k]", "hardware.device=cpu"))
    groups: dict = {}
    for item in planned:
        groups.setdefault(item.point.group(), []).append(item.point.context)
    assert groups and all(v == sorted(v) for v in groups.values())


def test_preflight_skips_what_cannot_run_here_with_a_reason():
    planned = P.plan(_ctx("suite=kernels", "sweep.context=[1k]", "hardware.device=cpu"))
    reasons = {(x.point.model, x.point.backend_map.popitem()[1]): x.skip_reason for x in planned}
    assert "CUDA GPU" in reasons[("attention", "cudnn")]
    assert "Triton" in reasons[("ssd", "triton")]
    assert reasons[("attention", "math")] is None


def test_max_context_caps_attention_only():
    planned = P.plan(
        _ctx(
            "suite=kernels",
            "sweep.context=[1m]",
            "hardware.device=cpu",
            "suite.kernels.backends.attention=[math]",
            "suite.kernels.backends.conv1d=[torch]",
            "suite.kernels.ops=[attention,conv1d]",
            "suite.kernels.conv_channels=8",
        )
    )
    by_op = {x.point.model: x.skip_reason for x in planned}
    assert "max_context" in by_op["attention"]
    assert by_op["conv1d"] is None


def test_points_predicted_too_big_for_the_device_are_skipped():
    planned = P.plan(
        _ctx(
            "suite=kernels",
            "sweep.context=[1g]",
            "hardware.device=cpu",
            "suite.kernels.ops=[conv1d]",
            "suite.kernels.backends.conv1d=[torch]",
        )
    )
    assert "GB usable" in planned[0].skip_reason


def test_hash_changes_with_what_is_measured():
    a = P.plan(_ctx("suite=smoke"))[0].point
    b = P.plan(_ctx("suite=smoke", "suite.timing.min_reps=7"))[0].point
    assert a.model == b.model and a.context == b.context and a.hash != b.hash
