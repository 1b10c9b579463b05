"""The fused RoPE + KV-cache write of a decode step against its reference (Triton's interpreter
on the CPU): q rotated, k rotated and v copied into the caches at the device-side position and
nowhere else, head dims whose half is not a power of two, fp32 and fp16."""

from __future__ import annotations

import pytest
import torch

from kernels.rope_step import rope_qkv_step, rope_qkv_step_ref

from .conftest import assert_close

DEV = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float16, 2e-3)])
@pytest.mark.parametrize("B, H, Hkv, D", [(1, 4, 4, 16), (2, 4, 2, 12), (3, 8, 2, 32)])
def test_matches_reference(dtype, tol, B, H, Hkv, D):
    g = torch.Generator().manual_seed(B * 100 + D)
    qkv = torch.randn(B, 1, (H + 2 * Hkv) * D, generator=g).to(DEV, dtype)
    angle = torch.rand(D // 2, generator=g) * 6
    cos, sin = angle.cos()[None].to(DEV, dtype), angle.sin()[None].to(DEV, dtype)
    pos = torch.tensor([7], device=DEV)
    caches = [torch.randn(B, Hkv, 10, D, generator=g).to(DEV, dtype) for _ in range(2)]
    want_caches = [c.clone() for c in caches]
    want = rope_qkv_step_ref(qkv, cos, sin, pos, *want_caches, H, Hkv)
    got = rope_qkv_step(qkv, cos, sin, pos, *caches, H, Hkv)
    assert got.shape == (B, H, D) and got.dtype == dtype
    assert_close("q", got, want, tol)
    assert_close("k cache", caches[0], want_caches[0], tol)
    assert_close("v cache", caches[1], want_caches[1], tol)
    others = [p for p in range(10) if p != 7]
    assert torch.equal(caches[1][:, :, others], want_caches[1][:, :, others])  # only pos written


def test_a_step_past_the_cache_writes_nothing():
    """pos == S: the unfused step fails in index_copy_; the kernel must not write past the
    buffer (masked stores), so the caches are untouched."""
    qkv = torch.randn(1, 1, 4 * 8, device=DEV)
    one = torch.ones(1, 4, device=DEV)
    caches = [torch.randn(1, 1, 5, 8, device=DEV) for _ in range(2)]
    before = [c.clone() for c in caches]
    rope_qkv_step(qkv, one, one, torch.tensor([5], device=DEV), *caches, 2, 1)
    assert all(torch.equal(a, b) for a, b in zip(caches, before, strict=True))


def test_shapes_are_checked():
    qkv = torch.randn(1, 1, 6 * 8, device=DEV)
    cache = torch.zeros(1, 1, 4, 8, device=DEV)
    one = torch.ones(1, 4, device=DEV)
    with pytest.raises(ValueError, match="qkv: shape"):
        rope_qkv_step(qkv, one, one, torch.tensor([0], device=DEV), cache, cache, 3, 2)
    with pytest.raises(ValueError, match="caches: shapes"):
        rope_qkv_step(qkv, one, one, torch.tensor([0], device=DEV), cache, cache, 4, 2)
