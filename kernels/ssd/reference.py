"""Mamba-2 SSD (state space duality) scan in plain torch: the spec for `kernels.ssd`.

Per head h (group g = h // (H // G)) and step t, with a_t = dt_t * A_h:
    state_t = exp(a_t) * state_{t-1} + dt_t * x_t B_t^T      state [P, N]
    y_t     = state_t C_t + D_h * x_t,   then  y_t *= silu(z_t)  when z is given
`ssd_ref` computes this chunk by chunk (mostly matrix products, differentiable by autograd);
`ssd_recurrent_ref` runs the recurrence step by step and exists to check `ssd_ref`.
Both compute in float32 and return y in x's dtype and the final state in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _prepare_dt(dt, dt_bias, dt_softplus):
    dt = dt.float()
    if dt_bias is not None:
        dt = dt + dt_bias.float()
    if dt_softplus:
        dt = F.softplus(dt)
    return dt


def _check(x, dt, A, B, C, D, z, initial_states):
    b, t, h, p = x.shape
    g, n = B.shape[2:]
    assert dt.shape == (b, t, h), f"dt {tuple(dt.shape)} != {(b, t, h)}"
    assert A.shape == (h,), f"A {tuple(A.shape)} != {(h,)}"
    assert B.shape == (b, t, g, n) and C.shape == B.shape, "B and C must be [B, T, G, N]"
    assert h % g == 0, f"heads {h} not divisible by groups {g}"
    assert D is None or D.shape in ((h,), (h, p)), f"D must be [H] or [H, P], got {D.shape}"
    assert z is None or z.shape == x.shape, "z must be shaped like x"
    assert initial_states is None or initial_states.shape == (b, h, p, n)


def _finish(y, x, D, z):
    """y [B, T, H, P] float32 -> D skip and silu(z) gate applied, still float32."""
    if D is not None:
        d = D.float()
        y = y + x.float() * (d[:, None] if d.dim() == 1 else d)
    if z is not None:
        y = y * F.silu(z.float())
    return y


def ssd_ref(
    x,
    dt,
    A,
    B,
    C,
    chunk_size=256,
    D=None,
    z=None,
    dt_bias=None,
    dt_softplus=False,
    initial_states=None,
    return_final_states=False,
):
    """Chunked SSD scan.

    x [B, T, H, P], dt [B, T, H], A [H], B and C [B, T, G, N], D [H] or [H, P], z [B, T, H, P],
    dt_bias [H], initial_states [B, H, P, N].
    Returns y [B, T, H, P] in x.dtype, and the final state [B, H, P, N] in float32 when
    return_final_states.
    """
    _check(x, dt, A, B, C, D, z, initial_states)
    bsz, seqlen, nheads, headdim = x.shape
    ngroups, dstate = B.shape[2:]
    rep = nheads // ngroups
    L = chunk_size
    nchunks = max(1, -(-seqlen // L))
    pad = nchunks * L - seqlen

    # Zero padding is exact: dt = 0 leaves the state untouched and adds nothing.
    dtp = F.pad(_prepare_dt(dt, dt_bias, dt_softplus), (0, 0, 0, pad))
    xs = F.pad(x.float(), (0, 0, 0, 0, 0, pad)).view(bsz, nchunks, L, ngroups, rep, headdim)
    Bs = F.pad(B.float(), (0, 0, 0, 0, 0, pad)).view(bsz, nchunks, L, ngroups, dstate)
    Cs = F.pad(C.float(), (0, 0, 0, 0, 0, pad)).view(bsz, nchunks, L, ngroups, dstate)
    dts = dtp.view(bsz, nchunks, L, ngroups, rep)

    a = dts * A.float().view(ngroups, rep)  # [b, c, L, g, r]
    a_cs = torch.cumsum(a, dim=2)  # [b, c, L, g, r]
    a_last = a_cs[:, :, -1]  # [b, c, g, r]

    # Intra-chunk: y_l = sum_{s<=l} (C_l . B_s) exp(a_cs_l - a_cs_s) dt_s x_s
    diff = a_cs[:, :, :, None] - a_cs[:, :, None, :]  # [b, c, l, s, g, r]
    causal = torch.ones(L, L, dtype=torch.bool, device=x.device).tril()
    decay = torch.exp(torch.where(causal[:, :, None, None], diff, float("-inf")))
    cb = torch.einsum("bclgn,bcsgn->bclsg", Cs, Bs)  # [b, c, l, s, g]
    w = cb[..., None] * decay * dts[:, :, None]  # [b, c, l, s, g, r]
    y = torch.einsum("bclsgr,bcsgrp->bclgrp", w, xs)

    # Chunk states: S_c = sum_s exp(a_last - a_cs_s) dt_s x_s B_s^T
    wstate = torch.exp(a_last[:, :, None] - a_cs) * dts  # [b, c, L, g, r]
    chunk_states = torch.einsum("bclgr,bclgrp,bclgn->bcgrpn", wstate, xs, Bs)

    # State passing: the state entering chunk c, then the final state.
    if initial_states is None:
        state = x.new_zeros(bsz, ngroups, rep, headdim, dstate, dtype=torch.float32)
    else:
        state = initial_states.float().view(bsz, ngroups, rep, headdim, dstate)
    entering = []
    for c in range(nchunks):
        entering.append(state)
        state = torch.exp(a_last[:, c])[..., None, None] * state + chunk_states[:, c]
    states_in = torch.stack(entering, dim=1)  # [b, c, g, r, p, n]

    # Inter-chunk: y_l += exp(a_cs_l) * state_in C_l
    y = y + torch.einsum("bclgn,bcgrpn,bclgr->bclgrp", Cs, states_in, torch.exp(a_cs))

    y = y.reshape(bsz, nchunks * L, nheads, headdim)[:, :seqlen]
    y = _finish(y, x, D, z).to(x.dtype)
    if return_final_states:
        return y, state.reshape(bsz, nheads, headdim, dstate)
    return y


def ssd_recurrent_ref(
    x,
    dt,
    A,
    B,
    C,
    chunk_size=256,
    D=None,
    z=None,
    dt_bias=None,
    dt_softplus=False,
    initial_states=None,
    return_final_states=False,
):
    """Step-by-step SSD recurrence (slow; for tests). Same arguments and returns as `ssd_ref`;
    chunk_size is accepted and ignored."""
    _check(x, dt, A, B, C, D, z, initial_states)
    bsz, seqlen, nheads, headdim = x.shape
    ngroups, dstate = B.shape[2:]
    rep = nheads // ngroups
    dtp = _prepare_dt(dt, dt_bias, dt_softplus)  # [b, t, h]
    Bh = B.float().repeat_interleave(rep, dim=2)  # [b, t, h, n]
    Ch = C.float().repeat_interleave(rep, dim=2)  # [b, t, h, n]
    state = (
        x.new_zeros(bsz, nheads, headdim, dstate, dtype=torch.float32)
        if initial_states is None
        else initial_states.float().clone()
    )
    ys = []
    for t in range(seqlen):
        decay = torch.exp(dtp[:, t] * A.float())  # [b, h]
        inp = (dtp[:, t, :, None] * x[:, t].float())[..., None] * Bh[:, t, :, None, :]
        state = decay[..., None, None] * state + inp  # [b, h, p, n]
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ch[:, t]))
    y = torch.stack(ys, dim=1) if ys else x.new_zeros(x.shape, dtype=torch.float32)
    y = _finish(y, x, D, z).to(x.dtype)
    if return_final_states:
        return y, state
    return y
