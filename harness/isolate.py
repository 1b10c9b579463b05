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


def run_isolated(
    point: Point, timeout_s: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Measure `point` in a spawned worker. Always returns a result dict with a status."""
    ctx = mp.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})  # spawn copies the parent's environment at start()
    try:
        proc = ctx.Process(target=worker.main, args=(sender, point.to_dict()), daemon=True)
        t0 = time.perf_counter()
        proc.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
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
