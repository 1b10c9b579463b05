"""Shared fixtures for kernel tests: one `assert_close` helper and Triton's CPU interpreter.

Triton reads TRITON_INTERPRET when a kernel is first launched, so on a machine without CUDA it is
set here, at collection time, before any test module imports a kernel.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    """||out - ref|| / ||ref|| in float64; inf when out holds a NaN or inf."""
    out, ref = out.detach().double(), ref.detach().double()
    if not torch.isfinite(out).all():
        return float("inf")
    return ((out - ref).norm() / ref.norm().clamp_min(1e-30)).item()


def assert_close(name: str, out: torch.Tensor, ref: torch.Tensor, tol: float) -> None:
    """Fail unless shapes match, `out` is finite and its relative error to `ref` is <= tol."""
    assert out.shape == ref.shape, f"{name}: shape {tuple(out.shape)} != {tuple(ref.shape)}"
    err = rel_err(out, ref)
    assert err <= tol, f"{name}: relative error {err:.3e} > {tol:.1e}"


@pytest.fixture
def interpret() -> bool:
    """True when kernels run through Triton's CPU interpreter (no CUDA device)."""
    return os.environ.get("TRITON_INTERPRET") == "1"


def _nan_filled(make):
    def wrapper(*a, **k):
        t = make(*a, **k)
        return t.fill_(float("nan")) if t.is_floating_point() else t

    return wrapper


@pytest.fixture
def nan_empty(monkeypatch):
    """Every floating torch.empty / empty_like in the test holds NaNs, so an element a kernel
    forgets to write shows up as a NaN in its output."""
    monkeypatch.setattr(torch, "empty", _nan_filled(torch.empty))
    monkeypatch.setattr(torch, "empty_like", _nan_filled(torch.empty_like))
