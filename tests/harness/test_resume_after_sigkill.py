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


def _children(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (Linux /proc)."""
    out = set()
    for stat in os.listdir("/proc"):
        if stat.isdigit():
            try:
                fields = open(f"/proc/{stat}/stat").read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(stat))
    return out


def _descendants(pid: int) -> set[int]:
    found, todo = set(), [pid]
    while todo:
        kids = _children(todo.pop())
        found |= kids
        todo.extend(kids)
    return found


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG)")
def test_a_killed_orchestrator_takes_its_workers_with_it(tmp_path):
    """Workers run in their own process group: without the parent-death signal, a killed
    orchestrator would leave a worker measuring on the GPU under whatever runs next. The worker's
    parent is the forkserver, which must see the orchestrator go (the worker drops the end of
    the forkserver's liveness pipe that it inherits: kept, both outlived the orchestrator)."""
    args = ["suite=selftest", "suite.selftest.behaviours=[slow]", "suite.selftest.slow_s=120",
            "sweep.context=[1k]", "run.report=false", f"run.results_dir={tmp_path}"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args], cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    from harness.isolate import start_method

    # the forkserver and the worker it forked (isolate.py); with spawn, the worker alone
    expected = 2 if start_method() == "forkserver" else 1
    deadline, workers = time.time() + 60, set()
    while time.time() < deadline and len(workers) < expected:
        workers = {p for p in _descendants(proc.pid) if "resource_tracker" not in _cmdline(p)}
        time.sleep(0.2)
    assert len(workers) == expected, "no worker started"
    time.sleep(3)  # past the worker's start-up, into the measurement
    proc.kill()
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(_alive(p) for p in workers)


def _cmdline(pid: int) -> str:
    try:
        return open(f"/proc/{pid}/cmdline").read().replace("\0", " ")
    except OSError:
        return ""
