"""What machine this is, read without initialising CUDA (the orchestrator must never do that).

GPU facts come from NVML; package versions from installed metadata; the git state from git.
Workers add what only an initialised CUDA context can tell (SM count, capability) to records.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OPTIONAL_PACKAGES = (
    "flash-attn",
    "mamba-ssm",
    "causal-conv1d",
    "fla-core",
    "transformers",
    "lm-eval",
)
CORE_PACKAGES = (
    "torch",
    "triton",
    "hydra-core",
    "omegaconf",
    "pandas",
    "matplotlib",
    "nvidia-ml-py",
)


# Triton autotune results kept on disk (TRITON_CACHE_AUTOTUNING), as its compiled kernels are:
# each point is a fresh process, and re-tuning the SSM kernels cost 10-15 s of every cold start
# on the H200. "Cold" is then what a restarted server sees; a fresh TRITON_CACHE_DIR gives a
# first-ever start (harness.compare_stores --fresh-triton-cache).
AUTOTUNE_CACHE = "1"


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_bytes: int
    capability: tuple[int, int]
    uuid: str = ""


@dataclass(frozen=True)
class Hardware:
    device: str  # cuda | cpu
    gpus: tuple[Gpu, ...] = ()
    memory_bytes: int = 0  # of one device: the first selected GPU, or host RAM on CPU
    name: str = "cpu"
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def capability(self) -> tuple[int, int]:
        return self.gpus[0].capability if self.gpus else (0, 0)


def nvml_gpus() -> tuple[list[Gpu], str | None]:
    """GPUs seen by NVML, or ([], why not)."""
    try:
        import pynvml
    except ImportError:
        return [], "nvidia-ml-py is not installed"
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no driver: a CPU machine
        return [], f"NVML unavailable ({exc.__class__.__name__})"
    try:
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            name = name.decode() if isinstance(name, bytes) else name
            uuid = pynvml.nvmlDeviceGetUUID(h)
            gpus.append(
                Gpu(
                    index=i,
                    name=name,
                    memory_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(h).total),
                    capability=tuple(pynvml.nvmlDeviceGetCudaComputeCapability(h)),
                    uuid=uuid.decode() if isinstance(uuid, bytes) else uuid,
                )
            )
        return gpus, None
    finally:
        pynvml.nvmlShutdown()


def torch_has_cuda() -> bool:
    """Whether the installed torch is a CUDA build (no CUDA initialisation)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.version.cuda is not None


def host_memory_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def detect(device: str = "auto", gpus: object = "all") -> Hardware:
    """Resolve hardware.device / hardware.gpus into a Hardware description."""
    found, why = nvml_gpus()
    notes = []
    if device == "auto":
        device = "cuda" if found and torch_has_cuda() else "cpu"
        if found and not torch_has_cuda():
            notes.append("GPU present but torch is a CPU build: running on CPU")
        elif not found:
            notes.append(f"no CUDA GPU ({why})")
    if device == "cpu":
        return Hardware("cpu", (), host_memory_bytes(), platform.processor() or "cpu", tuple(notes))
    if device != "cuda":
        raise ValueError(
            f"hardware.device: unknown value {device!r}; valid choices: auto, cuda, cpu"
        )
    if not found:
        raise ValueError(f"hardware.device=cuda but no GPU is usable: {why}")
    if gpus not in ("all", None):
        wanted = [int(g) for g in (gpus if isinstance(gpus, list | tuple) else [gpus])]
        missing = [g for g in wanted if g >= len(found)]
        if missing:
            raise ValueError(f"hardware.gpus: no GPU {missing}; valid indices 0..{len(found) - 1}")
        found = [found[g] for g in wanted]
    first = found[0]
    return Hardware("cuda", tuple(found), first.memory_bytes, first.name, tuple(notes))


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state() -> dict[str, object]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    if os.environ.get("CTXBENCH_GIT_SHA"):
        # a copy of the tree shipped to a GPU box: the sender says which commit. It wins over a
        # .git found there, which can be a stale one left by an earlier copy (seen on the lent
        # H200: an earlier commit of the day, "dirty")
        return {"sha": os.environ["CTXBENCH_GIT_SHA"], "dirty": None, "from": "CTXBENCH_GIT_SHA"}
    sha = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"sha": sha, "dirty": bool(status) if status is not None else None}


def driver_version() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            v = pynvml.nvmlSystemGetDriverVersion()
            return v.decode() if isinstance(v, bytes) else v
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return None


def environment(hw: Hardware) -> dict[str, object]:
    """The environment record of a run (the one place machine paths may appear)."""
    import torch

    return {
        "device": hw.device,
        "device_name": hw.name,
        "device_memory_bytes": hw.memory_bytes,
        "gpus": [
            {
                "index": g.index,
                "name": g.name,
                "memory_bytes": g.memory_bytes,
                "capability": list(g.capability),
                "uuid": g.uuid,
            }
            for g in hw.gpus
        ],
        "driver": driver_version(),
        "cuda": torch.version.cuda,
        "cudnn": None,  # filled by a worker: reading it initialises CUDA
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "host_memory_bytes": host_memory_bytes(),
        "packages": {p: _version(p) for p in CORE_PACKAGES},
        "optional_packages": {p: _version(p) for p in OPTIONAL_PACKAGES},
        "allocator": os.environ.get("PYTORCH_CUDA_ALLOC_CONF", ""),
        # workers keep Triton's autotune results on disk unless told otherwise (harness.worker)
        "triton_cache_autotuning": os.environ.get("TRITON_CACHE_AUTOTUNING", AUTOTUNE_CACHE),
        "git": git_state(),
        "notes": list(hw.notes),
    }
