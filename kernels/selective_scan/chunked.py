"""Selective scan as a differentiable torch computation that loops over a chunk, not over time.

The sequence is cut into chunks of L steps. Three stages, each a Python loop of L or T/L steps
whose body is one batched elementwise op over every chunk at once:
  1. chunk-local end states (zero start) and each chunk's total decay exp(A * sum dt),
  2. the true start state of every chunk, carried across chunks (T/L steps),
  3. the recurrence again inside every chunk from its true start state, emitting y.
With L ~ sqrt(T) that is ~3 sqrt(T) small kernels instead of T. It is the backward of the Triton
scan (autograd through it, segment by segment) and the long-sequence reference in the GPU tests,
where the step-by-step reference would take minutes. Memory: autograd keeps a few
[B, T, Dc, N] fp32 tensors, so callers bound T per call (see autograd.py).

Why no matrix form: Mamba-1's decay differs per state index n, so unlike SSD (Mamba-2) there is
no low-rank [L, L] mixing matrix shared across channels to hand to a matmul.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from kernels.selective_scan.reference import _as_grouped, _finish, prepare_dt


def selective_scan_chunked(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    initial_state: torch.Tensor | None = None,
    chunk_size: int | None = None,
):
    """Same arguments and results as `selective_scan_ref` (plus chunk_size, default ~sqrt(T)).

    u, delta, z: [B, T, Dc]; A: [Dc, N]; B, C: [B, T, N] or [B, T, G, N]; D, delta_bias: [Dc];
    initial_state: [B, Dc, N]. Returns y [B, T, Dc] (and the last state [B, Dc, N] fp32).
    """
    bsz, seqlen, dc = u.shape
    n = A.shape[1]
    bg = _as_grouped(B, 3)  # [B, T, G, N]
    cg = _as_grouped(C, 3)  # [B, T, G, N]
    g = bg.shape[2]
    dpg = dc // g
    L = chunk_size or max(8, math.isqrt(max(seqlen, 1)) + 1)
    nc = max(1, -(-seqlen // L))
    pad = nc * L - seqlen

    dt = prepare_dt(delta, delta_bias, delta_softplus)  # [B, T, Dc]
    x = dt * u.float()  # [B, T, Dc]
    # Padding after the softplus with dt = 0 makes the padded steps identities (decay 1, input 0),
    # so the last state read at the end of the padded sequence is the state after token T.
    dt = F.pad(dt, (0, 0, 0, pad)).view(bsz, nc, L, g, dpg)
    x = F.pad(x, (0, 0, 0, pad)).view(bsz, nc, L, g, dpg)
    bf = F.pad(bg.float(), (0, 0, 0, 0, 0, pad)).view(bsz, nc, L, g, 1, n)
    cf = F.pad(cg.float(), (0, 0, 0, 0, 0, pad)).view(bsz, nc, L, g, 1, n)
    a_log = A.float().view(g, dpg, n)

    def step(h, l):  # h: [B, nc, G, dpg, N]
        decay = torch.exp(dt[:, :, l, :, :, None] * a_log)
        return decay * h + x[:, :, l, :, :, None] * bf[:, :, l]

    if initial_state is None:
        h0 = u.new_zeros(bsz, g, dpg, n, dtype=torch.float32)
    else:
        h0 = initial_state.float().view(bsz, g, dpg, n)

    if nc == 1:
        starts = h0[:, None]
    else:
        s = u.new_zeros(bsz, nc, g, dpg, n, dtype=torch.float32)
        for l in range(L):
            s = step(s, l)
        chunk_decay = torch.exp(dt.sum(2)[..., None] * a_log)  # [B, nc, G, dpg, N]
        starts_list = [h0]
        for c in range(nc - 1):
            starts_list.append(chunk_decay[:, c] * starts_list[-1] + s[:, c])
        starts = torch.stack(starts_list, dim=1)  # [B, nc, G, dpg, N]

    h = starts
    ys = []
    for l in range(L):
        h = step(h, l)
        ys.append((h * cf[:, :, l]).sum(-1))  # [B, nc, G, dpg]
    y = torch.stack(ys, dim=2).reshape(bsz, nc * L, dc)[:, :seqlen]
    y = _finish(y, u, D, z, u.dtype)
    if not return_last_state:
        return y
    return y, h[:, -1].reshape(bsz, dc, n)
