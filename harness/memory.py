"""Peak memory of a region, per MEASUREMENT.md.

GPU: the caching allocator's peak allocated and reserved bytes (peak stats reset on entry) and
NVML's device-wide used memory at exit. CPU (tests, smoke runs): the process's resident-set peak,
whose high-water mark Linux lets us reset by writing 5 to /proc/self/clear_refs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness import nvml

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _proc_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


@dataclass
class PeakMemory:
    """Context manager: `with PeakMemory(device) as m: ...; m.result()`."""

    device: str
    baseline: int = 0
    peak_allocated: int | None = None
    peak_reserved: int | None = None
    device_used: int | None = None
    source: str = ""

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.baseline = torch.cuda.memory_allocated()
            self.source = "torch.cuda"
        else:
            self.source = "rss"
            try:
                _CLEAR_REFS.write_text("5")  # resets VmHWM to the current RSS
            except OSError:
                self.source = "rss-unreset"  # peak since process start
            self.baseline = _proc_kb("VmRSS") or 0
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()
            self.peak_allocated = torch.cuda.max_memory_allocated()
            self.peak_reserved = torch.cuda.max_memory_reserved()
            self.device_used = nvml.used_bytes(torch.cuda.current_device())
        else:
            peak = _proc_kb("VmHWM")
            self.peak_allocated = peak
            self.peak_reserved = peak

    def result(self) -> dict[str, Any]:
        """Bytes; `peak_allocated` includes what was allocated before the region (`baseline`)."""
        return {
            "peak_allocated_bytes": self.peak_allocated,
            "peak_reserved_bytes": self.peak_reserved,
            "device_used_bytes": self.device_used,
            "baseline_allocated_bytes": self.baseline,
            "source": self.source,
        }
