"""The kernels suite on CPU: real measurements at tiny shapes, and the correctness gate."""

from __future__ import annotations

import json

import pytest
import torch

import kernels
from harness.errors import InvalidOutput
from harness.point import Point, freeze
from harness.timing import TimingConfig
from suites import kernels as suite
from tests.harness.conftest import run_cli

TINY = suite.KernelsConfig(
    attn_heads=2,
    attn_kv_heads=1,
    attn_headdim=16,
    ssd_heads=2,
    ssd_headdim=8,
    ssd_d_state=8,
    ssd_chunk=16,
    scan_channels=16,
    scan_d_state=4,
    conv_channels=16,
    check_full_tokens=64,
    check_window=32,
)
TIMING = freeze(
    vars(TimingConfig(warmup=0, min_reps=3, min_time_s=0.0, max_time_s=1.0, flush_l2=False))
)


def _point(op: str, backend: str, context: int = 100) -> Point:
    return Point(
        suite="kernels",
        model=op,
        size="",
        context=context,
        batch=2,
        dtype="float32",
        device="cpu",
        backends=((suite.OP_KINDS[op], backend),),
        params=freeze(suite.shape_params(TINY, op)),
        timing=TIMING,
    )


@pytest.mark.parametrize(
    "op, backend",
    [("attention", "math"), ("ssd", "torch"), ("selective_scan", "torch"), ("conv1d", "torch")],
)
@pytest.mark.parametrize("context", [100, 150])  # 150 > check_full_tokens: windowed check
def test_each_op_measures_on_cpu(op, backend, context):
    out = suite.run(_point(op, backend, context))
    m = out["metrics"]
    assert m["time_ms"] > 0 and m["tflops"] > 0 and m["gbps"] > 0
    assert m["rel_err"] < 1e-3
    assert len(out["samples"]["time_ms"]) >= 3
    assert out["cold"]["time_ms"] > 0


def wrong_conv(x, weight, bias=None, activation=None, initial_state=None):
    """A planted kernel that is 5% off: plausible, wrong."""
    return kernels.get("conv1d", "torch")(x, weight, bias, activation=activation) * 1.05


def test_planted_wrong_kernel_is_invalid_output(monkeypatch):
    monkeypatch.setitem(kernels.REGISTRY["conv1d"], "wrong", f"{__name__}:wrong_conv")
    with pytest.raises(InvalidOutput, match="relative error"):
        suite.run(_point("conv1d", "wrong", 150))


def test_attention_flops_formula_is_causal_half():
    from types import SimpleNamespace

    from suites.kernel_ops import OPS

    cfg = SimpleNamespace(**suite.shape_params(TINY, "attention"))
    # 4 T^2 H D / 2 per sequence (QK^T and PV, causal half), batch 2, H=2, D=16
    assert OPS["attention"].flops(cfg, 2, 1024) == pytest.approx(2 * 4 * 1024**2 * 2 * 16 / 2)


@pytest.mark.slow
def test_smoke_suite_end_to_end(tmp_path, out_dirs):
    # two of the smoke suite's four models: every stage still runs, in half the CI time
    res = run_cli("suite=smoke", "models=[transformer,mamba2]", *out_dirs, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    run_dirs = list((tmp_path / "results").iterdir())
    assert len(run_dirs) == 1
    records = [json.loads(x) for x in (run_dirs[0] / "records.jsonl").read_text().splitlines()]
    manifest = json.loads((run_dirs[0] / "manifest.json").read_text())
    assert len(records) == manifest["plan"]["points"]
    status = {
        (r["point"]["model"], r["point"]["backends"][suite.OP_KINDS[r["point"]["model"]]]): r[
            "status"
        ]
        for r in records
        if r["point"]["suite"] == "kernels"
    }
    assert status[("attention", "math")] == "ok"
    assert status[("ssd", "torch")] == "ok"
    assert status[("attention", "cudnn")] == "skipped"
    models_ok = {
        r["point"]["model"]
        for r in records
        if r["point"]["suite"] == "prefill" and r["status"] == "ok"
    }
    assert models_ok == {"transformer", "mamba2"}
    assert (tmp_path / "reports" / run_dirs[0].name / "index.html").exists()
    assert torch.__version__  # the run used this torch


def test_reference_checks_copy_only_the_window_to_fp32():
    """At 1M tokens a whole-length fp32 copy of a [B, T, 4096] input is 16 GiB: the check must
    copy the tokens it compares and nothing more (the selective scan's 1M point ran out of memory
    on the H100 before this)."""
    from suites import kernel_ops

    x = kernel_ops._scan_inputs(TINY, 1, 300, torch.float16, "cpu")
    win = kernel_ops._fp32_window(x, 250, 300)
    assert win["u"].shape == (1, 50, TINY.scan_channels) and win["u"].dtype == torch.float32
    assert win["B"].shape == (1, 50, TINY.scan_d_state)
    assert win["A"].shape == x["A"].shape and win["D"].shape == x["D"].shape
    torch.testing.assert_close(win["z"], x["z"][:, 250:].float())
