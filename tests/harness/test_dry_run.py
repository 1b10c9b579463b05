"""run.dry_run=true prints the plan, says what a previous session recorded, and runs nothing."""

from __future__ import annotations

from tests.harness.conftest import run_cli

ARGS = ("suite=selftest", "suite.selftest.behaviours=[ok]", "sweep.context=[1k,8k]", "run.id=dr")


def test_dry_run_plans_without_running_then_sees_what_was_recorded(tmp_path, out_dirs):
    first = run_cli(*ARGS, "run.dry_run=true", *out_dirs, timeout=120)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "2 would run; nothing was run" in first.stdout
    assert first.stdout.count("would run (~") == 2  # each point with its predicted time
    assert "predicted (cost model, round figures): selftest" in first.stdout
    assert not (tmp_path / "results").exists()

    real = run_cli(*ARGS, "run.report=false", *out_dirs, timeout=300)
    assert real.returncode == 0, real.stderr[-2000:]
    again = run_cli(*ARGS, "run.dry_run=true", *out_dirs, timeout=120)
    assert again.stdout.count("recorded: ok") == 2 and "would run" not in again.stdout
    assert "predicted" not in again.stdout  # nothing left to run


def test_dry_run_shows_preflight_skips_with_their_reason(out_dirs):
    res = run_cli(
        "suite=kernels",
        "suite.kernels.ops=[attention]",
        "suite.kernels.backends.attention=[cudnn,math]",
        "sweep.context=[1k]",
        "hardware.device=cpu",
        "run.dry_run=true",
        *out_dirs,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "would skip: attention backend 'cudnn' needs a CUDA GPU" in res.stdout
    assert "1 would run; 1 would skip" in res.stdout
