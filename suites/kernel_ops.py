"""The ops the `kernels` suite times: inputs, the call on a backend, the correctness check
against the plain-torch reference, and the FLOP / byte formulas behind TFLOP/s and GB/s.

Inputs are random (never zeros). Checks at long lengths use windows: the first `window` outputs
against the reference from a zero state, and the last `window` outputs against the reference
started from the state the fast path carried into them, since offset overflow shows at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

import kernels
from kernels import attention as attn

TOLERANCE = {"float32": 1e-3, "float16": 1e-2, "bfloat16": 2e-2}


def rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    out, ref = out.float(), ref.float()
    if not torch.isfinite(out).all():
        return float("inf")
    return ((out - ref).norm() / ref.norm().clamp_min(1e-30)).item()


@dataclass
class Op:
    inputs: Callable  # (cfg, B, T, dtype, device) -> dict of tensors
    call: Callable  # (backend, inputs) -> zero-arg function running the op
    check: Callable  # (backend, inputs, out, cfg) -> relative error
    flops: Callable  # (cfg, B, T) -> float
    bytes: Callable  # (inputs) -> float: fewest bytes a kernel must move


def _nbytes(*ts: torch.Tensor) -> float:
    return float(sum(t.numel() * t.element_size() for t in ts if t is not None))


# ---------------------------------------------------------------- attention (SDPA / flash-attn)
def _attn_inputs(cfg, B, T, dtype, device):
    H, Hkv, D = cfg.attn_heads, cfg.attn_kv_heads, cfg.attn_headdim
    return {
        "q": torch.randn(B, T, H, D, dtype=dtype, device=device),
        "k": torch.randn(B, T, Hkv, D, dtype=dtype, device=device),
        "v": torch.randn(B, T, Hkv, D, dtype=dtype, device=device),
    }


def _attn_call(backend, x):
    return lambda: attn.attention(x["q"], x["k"], x["v"], backend)


def _attn_check(backend, x, out, cfg):
    w = min(cfg.check_window, x["q"].shape[1])
    q, k, v = x["q"], x["k"], x["v"]
    head = rel_err(out[:, :w], attn.attention_ref(q[:, :w], k[:, :w], v[:, :w]))
    tail = rel_err(out[:, -w:], attn.attention_ref(q[:, -w:], k, v))  # last queries, all keys
    return max(head, tail)


def _attn_flops(cfg, B, T):
    return 4.0 * B * T * T * cfg.attn_heads * cfg.attn_headdim / 2  # causal: half of QK^T and PV


def _attn_bytes(x):
    return _nbytes(x["q"], x["k"], x["v"]) + _nbytes(x["q"])  # read q, k, v; write o


# ---------------------------------------------------------------- SSD (Mamba-2)
def _ssd_inputs(cfg, B, T, dtype, device):
    H, P, N, G = cfg.ssd_heads, cfg.ssd_headdim, cfg.ssd_d_state, cfg.ssd_groups
    return {
        "x": torch.randn(B, T, H, P, dtype=dtype, device=device),
        "dt": torch.randn(B, T, H, dtype=dtype, device=device) * 0.5 - 1.0,
        "A": -torch.rand(H, dtype=torch.float32, device=device).exp(),
        "B": torch.randn(B, T, G, N, dtype=dtype, device=device),
        "C": torch.randn(B, T, G, N, dtype=dtype, device=device),
        "D": torch.rand(H, dtype=torch.float32, device=device),
        "dt_bias": torch.rand(H, dtype=torch.float32, device=device) - 3.0,
        "chunk_size": cfg.ssd_chunk,
    }


def _ssd_run(fn, x, lo=0, hi=None, **kw):
    s = slice(lo, hi)
    return fn(
        x["x"][:, s],
        x["dt"][:, s],
        x["A"],
        x["B"][:, s],
        x["C"][:, s],
        chunk_size=x["chunk_size"],
        D=x["D"],
        dt_bias=x["dt_bias"],
        dt_softplus=True,
        **kw,
    )


def _ssd_call(backend, x):
    fn = kernels.get("ssd", backend)
    if hasattr(fn, "prepare"):  # a peer timed on inputs in its own layout (see its docstring)
        return fn.prepare(
            x["x"],
            x["dt"],
            x["A"],
            x["B"],
            x["C"],
            chunk_size=x["chunk_size"],
            D=x["D"],
            dt_bias=x["dt_bias"],
            dt_softplus=True,
        )
    return lambda: _ssd_run(fn, x)


def _fp32_window(x: dict, lo: int, hi: int) -> dict:
    """fp32 copies of the inputs for tokens [lo, hi) only: at 1M tokens a whole-length fp32 copy
    of a [B, T, 4096] input is 16 GiB, more than the check needs."""
    return {
        k: (v[:, lo:hi] if v.dim() >= 3 else v).float() if torch.is_tensor(v) else v
        for k, v in x.items()
    }


def _ssd_check(backend, x, out, cfg):
    ref = kernels.get("ssd", "torch")
    T, w = x["x"].shape[1], cfg.check_window
    if T <= cfg.check_full_tokens:
        return rel_err(out, _ssd_run(ref, _fp32_window(x, 0, T)))
    head = rel_err(out[:, :w], _ssd_run(ref, _fp32_window(x, 0, w)))
    _, state = _ssd_run(kernels.get("ssd", backend), x, 0, T - w, return_final_states=True)
    if not torch.isfinite(state).all():
        return float("inf")
    tail_ref = _ssd_run(ref, _fp32_window(x, T - w, T), initial_states=state.float())
    return max(head, rel_err(out[:, -w:], tail_ref))


def _ssd_flops(cfg, B, T):
    # per token: C.B^T per group (causal half of Q x Q x N), (CB*L) x per head (half of Q x Q x P),
    # chunk state B^T x and its read-out C.state per head (2 N P each)
    Q, N, P, H, G = cfg.ssd_chunk, cfg.ssd_d_state, cfg.ssd_headdim, cfg.ssd_heads, cfg.ssd_groups
    return float(B) * T * (G * Q * N + H * (Q * P + 4 * N * P))


def _ssd_bytes(x):
    return _nbytes(x["x"], x["dt"], x["B"], x["C"]) + _nbytes(x["x"])


# ---------------------------------------------------------------- selective scan (Mamba-1)
def _scan_inputs(cfg, B, T, dtype, device):
    Dc, N = cfg.scan_channels, cfg.scan_d_state
    return {
        "u": torch.randn(B, T, Dc, dtype=dtype, device=device),
        "delta": torch.randn(B, T, Dc, dtype=dtype, device=device) * 0.5 - 1.0,
        "A": -torch.rand(Dc, N, dtype=torch.float32, device=device).exp(),
        "B": torch.randn(B, T, N, dtype=dtype, device=device),
        "C": torch.randn(B, T, N, dtype=dtype, device=device),
        "D": torch.rand(Dc, dtype=torch.float32, device=device),
        "z": torch.randn(B, T, Dc, dtype=dtype, device=device),
        "delta_bias": torch.rand(Dc, dtype=torch.float32, device=device) - 3.0,
    }


def _scan_run(fn, x, hi=None):
    s = slice(0, hi)
    return fn(
        x["u"][:, s],
        x["delta"][:, s],
        x["A"],
        x["B"][:, s],
        x["C"][:, s],
        D=x["D"],
        z=x["z"][:, s],
        delta_bias=x["delta_bias"],
        delta_softplus=True,
    )


def _scan_call(backend, x):
    fn = kernels.get("selective_scan", backend)
    return lambda: _scan_run(fn, x)


def _scan_check(backend, x, out, cfg):
    # The recurrence has no chunked reference cheap enough at 1M: check the head window
    # exactly, and the whole output for non-finite values.
    if not torch.isfinite(out).all():
        return float("inf")
    T = x["u"].shape[1]
    w = T if T <= cfg.check_full_tokens else cfg.check_window
    up = _fp32_window(x, 0, w)
    return rel_err(out[:, :w], _scan_run(kernels.get("selective_scan", "torch"), up))


def _scan_flops(cfg, B, T):
    return 6.0 * B * T * cfg.scan_channels * cfg.scan_d_state  # dA, dB*u, h update, C*h (no exp)


def _scan_bytes(x):
    return _nbytes(x["u"], x["delta"], x["z"], x["B"], x["C"]) + _nbytes(x["u"])


# ---------------------------------------------------------------- causal depthwise conv1d
def _conv_inputs(cfg, B, T, dtype, device):
    Cc, W = cfg.conv_channels, cfg.conv_width
    return {
        "x": torch.randn(B, T, Cc, dtype=dtype, device=device),
        "weight": torch.randn(Cc, W, dtype=dtype, device=device) / W,
        "bias": torch.randn(Cc, dtype=dtype, device=device),
    }


def _conv_call(backend, x):
    fn = kernels.get("conv1d", backend)
    return lambda: fn(x["x"], x["weight"], x["bias"], activation="silu")


def _conv_check(backend, x, out, cfg):
    # Each output depends on the last `width` inputs only: any window checks exactly.
    T, W = x["x"].shape[1], x["weight"].shape[1]
    w = min(cfg.check_window, T)
    errs = []
    for lo in (0, T - w):
        start = max(lo - (W - 1), 0)
        seg = x["x"][:, start : lo + w].float()
        ref = F.silu(
            F.conv1d(
                F.pad(seg.transpose(1, 2), (W - 1, 0)),
                x["weight"].float()[:, None],
                x["bias"].float(),
                groups=seg.shape[-1],
            )
        ).transpose(1, 2)[:, lo - start :]
        errs.append(rel_err(out[:, lo : lo + w], ref))
    return max(errs)


def _conv_flops(cfg, B, T):
    return 2.0 * B * T * cfg.conv_channels * cfg.conv_width


def _conv_bytes(x):
    return 2 * _nbytes(x["x"]) + _nbytes(x["weight"], x["bias"])


OPS = {
    "attention": Op(_attn_inputs, _attn_call, _attn_check, _attn_flops, _attn_bytes),
    "ssd": Op(_ssd_inputs, _ssd_call, _ssd_check, _ssd_flops, _ssd_bytes),
    "selective_scan": Op(_scan_inputs, _scan_call, _scan_check, _scan_flops, _scan_bytes),
    "conv1d": Op(_conv_inputs, _conv_call, _conv_check, _conv_flops, _conv_bytes),
}
