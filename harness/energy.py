"""Energy of a region from NVML's total-energy counter (millijoules since driver load), or from
sampled power where the counter is missing. Null on CPU, with the reason.

The counter updates at a coarse interval (tens of ms), so suites keep energy regions at least as
long as their minimum timing duration (about a second).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from harness import nvml

SAMPLE_PERIOD_S = 0.01


class EnergyMeter:
    """`with EnergyMeter(device) as e: ...` then `e.result(tokens)`."""

    def __init__(self, device: str):
        self.device = device
        self.handle = nvml.handle() if device == "cuda" else None
        self.source = ""
        self.joules: float | None = None
        self.null_reason = "" if self.handle else f"no NVML energy counter on {device}"
        self._samples: list[tuple[float, float]] = []
        self._stop = threading.Event()

    def __enter__(self) -> EnergyMeter:
        if self.handle is None:
            return self
        import pynvml

        self.t0 = time.perf_counter()
        try:
            self.e0 = pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle)
            self.source = "nvml_total_energy"
        except pynvml.NVMLError:
            self.source = "nvml_power_samples"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        import pynvml

        while not self._stop.is_set():
            watts = pynvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3
            self._samples.append((time.perf_counter(), watts))
            time.sleep(SAMPLE_PERIOD_S)

    def __exit__(self, *exc: object) -> None:
        if self.handle is None:
            return
        import pynvml

        self.region_s = time.perf_counter() - self.t0
        if self.source == "nvml_total_energy":
            self.joules = (pynvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) - self.e0) / 1e3
            return
        self._stop.set()
        self._thread.join()
        pts = self._samples
        pairs = zip(pts, pts[1:], strict=False)  # trapezoids between consecutive samples
        self.joules = sum((t1 - t0) * (w0 + w1) / 2 for (t0, w0), (t1, w1) in pairs)
        if len(pts) < 2:
            self.joules, self.null_reason = None, "region too short for power sampling"

    def result(self, tokens: float) -> dict[str, Any] | None:
        if self.joules is None:
            return None
        return {
            "joules": self.joules,
            "joules_per_token": self.joules / tokens if tokens else None,
            "tokens": tokens,
            "region_s": self.region_s,
            "source": self.source,
        }
