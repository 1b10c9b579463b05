"""The one number the progress line prints for a finished point, per kind of measurement."""

from __future__ import annotations

import pytest

from harness.progress import headline


@pytest.mark.parametrize(
    "metrics, expected",
    [
        ({"time_ms": 12.3456}, "12.346 ms"),
        ({"accuracy": 0.9375, "lr": 1e-3}, "accuracy 93.8%"),
        ({"bpb": 2.41234, "bpb_by_bucket": {}}, "2.412 bits per byte"),
        (
            {"passkey_by_length": {256: 1.0, 1024: 0.25}, "rolling_bpb": 3.5},
            "passkey 256 100%, 1024 25%; 3.500 bpb",
        ),
        ({"accuracy": 0.0}, "accuracy 0.0%"),  # zero is a result, not a missing number
        (
            {
                "max_context": 1 << 20,
                "first_failure": 1 << 21,
                "limited_by": "time",
                "failure_status": "not_run",
                "probes_run": 0,
            },
            "runs up to 1M; 2M: time limit, 0 probes",
        ),
        (
            {
                "max_context": 3 << 19,
                "first_failure": 1 << 21,
                "limited_by": "failure",
                "failure_status": "oom",
                "probes_run": 4,
            },
            "runs up to 1536K; 2M: oom, 4 probes",
        ),
        ({"max_context": 1 << 22, "first_failure": None}, "runs up to 4M (the search's maximum)"),
    ],
)
def test_headline_names_the_measurement_result(metrics, expected):
    assert headline({"metrics": metrics}) == expected


def test_headline_of_a_failed_point_is_its_reason():
    assert headline({"metrics": None, "reason": "CUDA out of memory\ntraceback"}) == (
        "CUDA out of memory"
    )


def test_point_label_names_the_trained_width_not_the_base_preset():
    from harness.point import Point, freeze

    common = dict(
        suite="mqar",
        model="transformer",
        size="1.3b",
        context=64,
        batch=32,
        dtype="float32",
        device="cpu",
    )
    trained = Point(**common, params=freeze({"width": 64, "overrides": {"d_state": 16}}))
    preset = Point(**{**common, "suite": "prefill"})
    assert trained.label().startswith("mqar:transformer w64 ")
    assert preset.label().startswith("prefill:transformer 1.3b ")


def test_point_label_tells_the_frontier_searches_apart():
    from harness.point import Point, freeze

    labels = {
        Point(
            "frontier", "mamba2", "1.3b", 65536, 1, "bfloat16", "cuda", params=freeze({"phase": ph})
        ).label()
        for ph in ("prefill", "decode")
    }
    assert labels == {
        "frontier:mamba2 1.3b (prefill) L=64K B=1",
        "frontier:mamba2 1.3b (decode) L=64K B=1",
    }
