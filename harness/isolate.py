"""Run one point in a fresh spawned process with a wall-clock limit; classify how it ended."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from typing import Any

from harness import worker
from harness.point import Point

# After the result arrives the worker only has to exit; CUDA teardown can take a few seconds.
EXIT_GRACE_S = 30.0


def _kill_group(proc: mp.process.BaseProcess) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.kill()
    proc.join(5)


def _death_reason(exitcode: int | None) -> str:
    if exitcode is None:
        return "worker did not exit"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = str(-exitcode)
        return f"worker killed by signal {name} before sending a result"
    return f"worker exited with code {exitcode} before sending a result"


def _child(conn: Any, point_dict: dict[str, Any], env: dict[str, str], hints: Any) -> None:
    """Spawned entry: apply the slot's environment before anything can initialise CUDA (the
    driver reads CUDA_VISIBLE_DEVICES once, at its first call), then measure."""
    os.environ.update(env)
    worker.main(conn, point_dict, hints)


def run_isolated(
    point: Point,
    timeout_s: float,
    env: dict[str, str] | None = None,
    hints: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure `point` in a spawned worker. Always returns a result dict with a status.
    `env` is added to the worker's environment only: the orchestrator's own is never changed,
    so slot threads can start workers pinned to different GPUs at the same time. `hints`: what
    the orchestrator knows that the suite may use (its `hints` function), outside the point's
    hash."""
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    args = (sender, point.to_dict(), dict(env or {}), hints)
    proc = ctx.Process(target=_child, args=args, daemon=True)
    t0 = time.perf_counter()
    proc.start()
    sender.close()  # so that the worker's death shows as EOF here
    result: dict[str, Any]
    try:
        if receiver.poll(timeout_s):
            try:
                result = receiver.recv()
            except (EOFError, OSError):
                proc.join(EXIT_GRACE_S)
                result = {"status": "crashed", "reason": _death_reason(proc.exitcode)}
        else:
            _kill_group(proc)
            result = {"status": "timeout", "reason": f"no result within {timeout_s:g} s; killed"}
    finally:
        receiver.close()
    proc.join(EXIT_GRACE_S)
    if proc.is_alive():
        _kill_group(proc)
        result.setdefault("notes", []).append("worker hung on exit after sending its result")
    result["wall_s"] = time.perf_counter() - t0
    result["exitcode"] = proc.exitcode
    return result
