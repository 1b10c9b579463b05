"""Datasheet peaks per GPU, the denominators of MFU and MBU (dense bf16 tensor-core FLOP/s and
HBM bandwidth). Matched on the device name NVML/torch report. A GPU not listed gets null MFU and
MBU with the reason, never a guessed peak.
"""

from __future__ import annotations

# name as reported -> (dense bf16 TFLOP/s, HBM TB/s)
PEAKS = {
    "NVIDIA H100 80GB HBM3": (989.4, 3.35),  # SXM5
    "NVIDIA H100 PCIe": (756.0, 2.0),
    "NVIDIA H100 NVL": (835.0, 3.9),
    "NVIDIA H200": (989.4, 4.8),
    "NVIDIA A100-SXM4-80GB": (312.0, 2.039),
    "NVIDIA A100-SXM4-40GB": (312.0, 1.555),
    "NVIDIA A100 80GB PCIe": (312.0, 1.935),
    "NVIDIA L40S": (362.0, 0.864),
}


def peak(device_name: str) -> tuple[float | None, float | None, str]:
    """(peak FLOP/s, peak bytes/s, note)."""
    if device_name in PEAKS:
        tflops, tbps = PEAKS[device_name]
        return tflops * 1e12, tbps * 1e12, f"datasheet peak for {device_name}"
    return None, None, f"no datasheet peak known for {device_name!r}"
