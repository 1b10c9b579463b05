"""Run one point in a fresh process with a wall-clock limit; classify how it ended.

Workers start from a forkserver that has imported torch (and nothing else: importing torch does
not initialise CUDA, so each forked worker still creates its own CUDA context, after its slot's
CUDA_VISIBLE_DEVICES is set). That saves the ~2-3 s import of every point. The forkserver is a
fresh interpreter, not a copy of the orchestrator. CTXBENCH_WORKER_START=spawn starts each
worker as a fresh interpreter instead; the record's device facts say which ran.
"""

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
START_METHODS = ("forkserver", "spawn")
PRELOAD = ["torch"]  # never a module that touches CUDA at import (worker.py checks)


def start_method() -> str:
    method = os.environ.get("CTXBENCH_WORKER_START", "forkserver")
    if method not in START_METHODS:
        raise ValueError(
            f"CTXBENCH_WORKER_START: {method!r}; valid choices: {', '.join(START_METHODS)}"
        )
    if method == "forkserver" and "forkserver" not in mp.get_all_start_methods():
        return "spawn"  # Windows: every worker is a fresh interpreter, as with spawn anyway
    return method


# Variables a worker may receive after torch is imported: read later (CUDA's at its first call,
# Triton's at its import) or by ctxbench itself. Any other difference from the forkserver's own
# environment (OMP_NUM_THREADS, which torch reads at import, say) makes that worker a spawn.
LATE_READ_PREFIXES = ("CUDA_", "CTXBENCH_", "TRITON_")
NEVER_READ = {"PYTEST_CURRENT_TEST"}  # pytest sets it per test
_server_env: dict[str, str] | None = None


def _context(env: dict[str, str]) -> tuple[mp.context.BaseContext, str]:
    """The context for a worker whose environment is `env` (the orchestrator's own plus the
    slot's): the forkserver's unless `env` differs from the forkserver's in a variable read at
    import."""
    global _server_env
    method = start_method()
    if method == "forkserver":
        # not started yet: it will start now, from the orchestrator's environment of now
        base = _server_env if _server_env is not None else dict(os.environ)
        changed = {k for k in env.keys() | base.keys() if env.get(k) != base.get(k)}
        if any(not k.startswith(LATE_READ_PREFIXES) and k not in NEVER_READ for k in changed):
            method = "spawn"
        elif _server_env is None:  # the forkserver starts with this worker: preload it once
            _server_env = base
            mp.get_context(method).set_forkserver_preload(PRELOAD)
    return mp.get_context(method), method


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
    """Worker entry: apply the slot's environment before anything can initialise CUDA (the
    driver reads CUDA_VISIBLE_DEVICES once, at its first call), then measure."""
    forked = env.get("CTXBENCH_WORKER_START") == "forkserver"
    orchestrator = mp.parent_process()
    parent = os.getppid() if forked or orchestrator is None else orchestrator.pid
    worker.die_with_parent(parent)  # armed before the forkserver can learn of a death below
    _drop_forkserver_liveness()
    os.environ.clear()
    os.environ.update(env)
    # A worker may start workers of its own (the frontier's probes): multiprocessing refuses
    # children to a daemonic process. The orchestrator's side keeps daemon=True, so that its exit
    # still ends workers left running.
    mp.current_process().daemon = False
    worker.main(conn, point_dict, hints)


def _drop_forkserver_liveness() -> None:
    """A forkserver's child inherits the orchestrator's end of the pipe by which the forkserver
    knows that the orchestrator lives. Held here, it would keep the forkserver alive after the
    orchestrator is killed, and with it this worker (whose parent-death signal waits for the
    forkserver's death, worker.die_with_parent). A nested run_isolated (the frontier's probes)
    starts a forkserver of its own."""
    from multiprocessing import forkserver

    server = forkserver._forkserver
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        os.close(fd)
        server._forkserver_alive_fd = None


def run_isolated(
    point: Point,
    timeout_s: float,
    env: dict[str, str] | None = None,
    hints: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Measure `point` in a fresh worker process. Always returns a result dict with a status.
    `env` is added to the worker's environment only: the orchestrator's own is never changed,
    so slot threads can start workers pinned to different GPUs at the same time. `hints`: what
    the orchestrator knows that the suite may use (its `hints` function), outside the point's
    hash."""
    # the whole environment travels, as a spawned worker would see it now (a forkserver's is
    # from its start)
    env = {**os.environ, **(env or {})}
    ctx, method = _context(env)
    receiver, sender = ctx.Pipe(duplex=False)
    env["CTXBENCH_WORKER_START"] = method  # the worker records it
    args = (sender, point.to_dict(), env, hints)
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
