"""The child side: one spawned process measures one point and sends back one result.

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
from harness.errors import classify, short_traceback
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
    if device != "cuda":
        return {
            "device": "cpu",
            "threads": torch.get_num_threads(),
            "triton_cache_autotuning": autotune_cache,
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
    }


def measure(point: Point, hints: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the point's measurement in this process; returns the result message."""
    import suites

    seed_everything(point.seed)
    module = suites.get(point.suite)
    t0 = time.perf_counter()
    metrics = module.run(point, hints=hints) if hints else module.run(point)
    return {"status": "ok", "reason": "", "measure_s": time.perf_counter() - t0, **metrics}


def die_with_parent() -> None:
    """Linux: the kernel kills this process when the one that started it dies. A worker is in its
    own process group, so a killed or timed-out orchestrator (`timeout`, SIGKILL, a SLURM job end)
    would otherwise leave it computing on the GPU, under the next measurement (seen on the H200:
    a 1.3B Transformer's 16K prefill ran 2.4x slower beside an orphaned sweep's workers)."""
    import multiprocessing as mp

    parent = mp.parent_process()
    if not sys.platform.startswith("linux") or parent is None:
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # no prctl here: nothing to arm
        return
    if os.getppid() != parent.pid:  # it died before the call: nothing will signal us now
        os._exit(1)


def main(conn: Any, point_dict: dict[str, Any], hints: dict[str, Any] | None = None) -> None:
    """Spawned process entry: measure, send one message, exit."""
    os.setpgrp()  # our own process group, so a timeout kills helpers we started too
    die_with_parent()
    # before anything imports triton (harness.env.AUTOTUNE_CACHE says why)
    os.environ.setdefault("TRITON_CACHE_AUTOTUNING", AUTOTUNE_CACHE)
    point = Point.from_dict(point_dict)
    try:
        result = measure(point, hints)
        try:
            result["device_facts"] = device_facts(point.device)
        except Exception as exc:  # facts are a bonus; never turn a result into a failure
            result["device_facts"] = {"error": repr(exc)}
    except BaseException as exc:  # noqa: BLE001 - every failure is a result
        status, reason = classify(exc)
        result = {"status": status, "reason": reason, "traceback": short_traceback(exc)}
    conn.send(result)
    conn.close()
