"""SIGKILL the orchestrator mid-sweep; the restart completes the rest, nothing twice or torn."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from .conftest import REPO

ARGS = [
    "suite=selftest",
    "suite.selftest.behaviours=[slow]",
    "suite.selftest.slow_s=0.5",
    "sweep.context=[1k,2k,3k,4k,5k,6k]",
    "run.id=killed",
    "run.report=false",
]


@pytest.mark.slow
def test_sigkill_mid_sweep_then_resume(tmp_path):
    results = tmp_path / "results"
    args = [*ARGS, f"run.results_dir={results}"]
    records = results / "killed" / "records.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        if records.exists() and len(records.read_text().splitlines()) >= 2:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # orchestrator and its worker, mid-sweep
    proc.wait()
    before = [json.loads(x) for x in records.read_text().splitlines()]
    assert 2 <= len(before) < 6

    done = subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert f"resuming: {len(before)} of 6" in done.stdout
    lines = records.read_text().splitlines()
    after = [json.loads(x) for x in lines]  # every line parses: nothing torn
    hashes = [r["hash"] for r in after]
    assert len(after) == 6 and len(set(hashes)) == 6
    assert sorted(r["point"]["context"] for r in after) == [1024 * i for i in range(1, 7)]
    assert all(r["status"] == "ok" for r in after)
    assert hashes[: len(before)] == [r["hash"] for r in before]
