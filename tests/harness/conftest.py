"""Helpers for harness tests: build points and run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness.point import Point, freeze
from harness.timing import TimingConfig

REPO = Path(__file__).resolve().parents[2]
FAST_TIMING = freeze(vars(TimingConfig(warmup=0, min_reps=2, min_time_s=0.0, max_time_s=1.0)))


def selftest_point(behaviour: str, context: int = 1024, batch: int = 1, **params) -> Point:
    return Point(
        suite="selftest",
        model=behaviour,
        size="",
        context=context,
        batch=batch,
        dtype="float32",
        device="cpu",
        params=freeze({"oom_above": 4096, "slow_s": 0.2, **params}),
        timing=FAST_TIMING,
    )


def run_cli(
    *args: str, cwd: Path = REPO, timeout: float = 300, **popen
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **popen,
    )
