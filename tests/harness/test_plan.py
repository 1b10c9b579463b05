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


def _gpu_ctx(*overrides: str) -> P.PlanContext:
    from harness.env import Gpu, Hardware

    hw = Hardware("cuda", (Gpu(0, "H200", 141 * 10**9, (9, 0), "GPU-fake"),), 141 * 10**9, "H200")
    return P.context(C.to_object(_compose(*overrides)), hw, "1.3b")


@pytest.mark.parametrize(
    "extra, fused",
    [
        ((), True),  # the default on a GPU, named in the point
        (("suite.decode.fused=false",), False),
        (("suite.decode.compile=true",), False),  # inductor fuses the torch ops instead
        (("+suite.model_overrides.fused_decode=false",), False),  # the explicit override decides
    ],
)
def test_the_gpu_decode_step_is_fused_unless_asked_otherwise(extra, fused):
    from suites.modelbench import model_config

    args = ("suite=standard", "models=[mamba2]", "sweep.context=[4k]", "suite.measure=[decode]")
    (point,) = [p.point for p in P.plan(_gpu_ctx(*args, *extra))]
    assert point.param("fused_decode", False) is fused
    assert model_config(point).fused_decode is fused


@pytest.mark.parametrize(
    "extra, gemv",
    [
        ((), None),  # off by default: points keep their identity
        (("suite.decode.gemv=true",), "triton"),
        (("suite.decode.gemv=true", "suite.decode.compile=true"), None),
        (("suite.decode.gemv=true", "+suite.model_overrides.decode_gemv=cublas"), None),
    ],
)
def test_the_gpu_decode_step_takes_the_gemv_only_when_asked(extra, gemv):
    from suites.modelbench import model_config

    args = ("suite=standard", "models=[mamba2]", "sweep.context=[4k]", "suite.measure=[decode]")
    (point,) = [p.point for p in P.plan(_gpu_ctx(*args, *extra))]
    assert point.param("decode_gemv") == gemv
    overridden = "+suite.model_overrides.decode_gemv=cublas" in extra
    assert model_config(point).decode_gemv == (gemv or "cublas")
    assert not overridden or dict(point.param("overrides"))["decode_gemv"] == "cublas"


def test_cpu_points_keep_the_plain_step_and_their_identity():
    args = ("suite=smoke", "suite.measure=[decode,throughput]")
    points = [p.point for p in P.plan(_ctx(*args))]
    assert points and all(p.param("fused_decode") is None for p in points)
