"""The child side: one fresh process measures one point and sends back one result.

Everything that can fail (CUDA init, kernels, allocation) happens here, never in the
orchestrator; a hard crash or a hang costs one point, not the sweep.
"""

from __future__ import annotations

import ctypes
import os
import random
import signal
import sys
import time
from typing import Any

from harness.env import AUTOTUNE_CACHE
from harness.errors import classify, scrub_paths, short_traceback
from harness.point import Point

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    torch.manual_seed(seed)


def device_facts(device: str) -> dict[str, Any]:
    """What only an initialised device can tell; goes into the record."""
    import torch

    autotune_cache = os.environ.get("TRITON_CACHE_AUTOTUNING")
    started = os.environ.get("CTXBENCH_WORKER_START")  # forkserver or spawn (isolate.py)
    if device != "cuda":
        return {
            "device": "cpu",
            "threads": torch.get_num_threads(),
            "triton_cache_autotuning": autotune_cache,
            "worker_start": started,
        }
    props = torch.cuda.get_device_properties(0)
    return {
        "device": "cuda",
        "name": props.name,
        "capability": [props.major, props.minor],
        "sm_count": props.multi_processor_count,
        "memory_bytes": props.total_memory,
        "cudnn": torch.backends.cudnn.version(),
        "visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "triton_cache_autotuning": autotune_cache,
        "worker_start": started,
    }


def measure(point: Point, hints: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the point's measurement in this process; returns the result message."""
    import suites

    seed_everything(point.seed)
    module = suites.get(point.suite)
    t0 = time.perf_counter()
    metrics = module.run(point, hints=hints) if hints else module.run(point)
    return {"status": "ok", "reason": "", "measure_s": time.perf_counter() - t0, **metrics}


def die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this process when the one that started it dies. A worker is in its
    own process group, so a killed or timed-out orchestrator (`timeout`, SIGKILL, a SLURM job end)
    would otherwise leave it computing on the GPU, under the next measurement (seen on the H200:
    a 1.3B Transformer's 16K prefill ran 2.4x slower beside an orphaned sweep's workers).
    `parent`: the pid this process was started by, known before anything could have died (the
    orchestrator's for a spawned worker; the forkserver's, read first thing, for a forked one:
    the forkserver exits when the orchestrator does, isolate.py)."""
    import multiprocessing as mp

    if not sys.platform.startswith("linux") or mp.parent_process() is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl here: nothing to arm
        return
    if os.getppid() != parent:  # it died before the call: nothing will signal us now
        os._exit(1)
    try:  # and the orchestrator itself, when the parent is its forkserver
        os.kill(mp.parent_process().pid, 0)
    except ProcessLookupError:
        os._exit(1)
    except PermissionError:  # alive, someone else's: not ours to judge
        pass


def refuse_inherited_cuda() -> None:
    """A worker forked from a process that had initialised CUDA cannot use it (the driver's state
    does not survive fork): say so plainly rather than as a CUDA error inside a suite."""
    if "torch" not in sys.modules:  # spawned, or a forkserver without the preload
        return
    import torch

    if torch.cuda._is_in_bad_fork():
        raise RuntimeError(
            "this worker was forked from a process with CUDA initialised; a module in "
            "harness.isolate.PRELOAD must not touch CUDA at import (CTXBENCH_WORKER_START=spawn "
            "avoids the fork)"
        )


def main(conn: Any, point_dict: dict[str, Any], hints: dict[str, Any] | None = None) -> None:
    """Worker process entry: measure, send one message, exit."""
    os.setpgrp()  # our own process group, so a timeout kills helpers we started too
    # before anything imports triton (harness.env.AUTOTUNE_CACHE says why)
    os.environ.setdefault("TRITON_CACHE_AUTOTUNING", AUTOTUNE_CACHE)
    point = Point.from_dict(point_dict)
    try:
        refuse_inherited_cuda()
        result = measure(point, hints)
        try:
            result["device_facts"] = device_facts(point.device)
        except Exception as exc:  # facts are a bonus; never turn a result into a failure
            result["device_facts"] = {"error": scrub_paths(repr(exc))}
    except BaseException as exc:  # noqa: BLE001 - every failure is a result
        status, reason = classify(exc)
        result = {"status": status, "reason": reason, "traceback": short_traceback(exc)}
    conn.send(result)
    conn.close()
