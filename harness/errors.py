"""Exceptions that map to a point's status, and the mapping itself."""

from __future__ import annotations

import os
import re
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# where installed packages and the interpreter's own modules live, whatever the machine
SITE_PACKAGES = re.compile(r"""[^\s"'(:=]*/(?:site|dist)-packages/""")
STDLIB = re.compile(r"""[^\s"'(:=]*/lib/python3\.\d+/""")
START = r"(?<![\w./~-])"  # a path begins here, not inside a longer one


class InvalidOutput(RuntimeError):
    """The fast path's output disagrees with the reference: the point is not a speed result."""


OOM_MARKERS = ("out of memory", "can't allocate memory", "cannot allocate memory")
CUDA_ERROR_MARKERS = (
    "cuda error",
    "illegal memory access",
    "device-side assert",
    "cudnn_status",
    "cublas_status",
    "unspecified launch failure",
    "misaligned address",
)


def scrub_paths(text: str) -> str:
    """The machine's paths out of a message or traceback (records and reports never carry them,
    DESIGN.md): the checkout becomes repository-relative, installed packages `<site-packages>/`,
    the standard library `<python>/`, the home directory `~`."""
    text = re.sub(START + re.escape(f"{ROOT}/"), "", text)
    text = SITE_PACKAGES.sub("<site-packages>/", text)
    text = STDLIB.sub("<python>/", text)
    home = os.path.expanduser("~")
    if home in ("", "/"):
        return text
    return re.sub(START + re.escape(f"{home}/"), "~/", text)


def classify(exc: BaseException) -> tuple[str, str]:
    """(status, reason) for an exception raised while measuring a point."""
    import torch

    message = scrub_paths(f"{type(exc).__name__}: {exc}".strip())
    lowered = message.lower()
    if isinstance(exc, InvalidOutput):
        return "invalid_output", message
    if isinstance(exc, torch.OutOfMemoryError | MemoryError) or any(
        m in lowered for m in OOM_MARKERS
    ):
        return "oom", _first_line(message)
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if (accelerator_error and isinstance(exc, accelerator_error)) or any(
        m in lowered for m in CUDA_ERROR_MARKERS
    ):
        return "cuda_error", _first_line(message)
    return "crashed", message


def short_traceback(exc: BaseException, limit: int = 12) -> str:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-limit))
    return scrub_paths(text)


def _first_line(message: str) -> str:
    return message.splitlines()[0][:500] if message else message
