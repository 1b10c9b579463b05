"""On a GPU, points measured in workers forked from the forkserver (harness/isolate.py): each
makes its own CUDA context on the GPU its slot names, runs the Triton kernels, and says how it
started. Run before a session's measurements (scripts/gpu_session.sh step testgpu)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.isolate import run_isolated
from harness.point import freeze
from tests.suites.cpu_point import cpu_point
from tests.suites.test_speed_suites import TIMING, TINY

pytestmark = pytest.mark.gpu

GPU_BACKENDS = freeze({"attention": "cudnn", "ssm": "triton", "conv": "triton"})


def _gpu_point(suite: str, model: str, **params):
    point = cpu_point(suite, model, 1024, 1, {"overrides": TINY, **params})
    return replace(point, device="cuda", dtype="bfloat16", backends=GPU_BACKENDS, timing=TIMING)


@pytest.mark.parametrize("model", ["transformer", "mamba2", "mamba1"])
def test_forked_workers_measure_on_the_gpu(model):
    env = {"CUDA_VISIBLE_DEVICES": "0", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    for point in (
        _gpu_point("prefill", model, canary=True),
        _gpu_point("decode", model, gen_tokens=16, min_samples=32, cuda_graphs=True, compile=False),
    ):
        res = run_isolated(point, 300, env=env)
        assert res["status"] == "ok", (res.get("reason"), res.get("traceback"))
        facts = res["device_facts"]
        assert facts["worker_start"] == "forkserver" and facts["visible_devices"] == "0"
        assert res["metrics"]["time_ms"] > 0
