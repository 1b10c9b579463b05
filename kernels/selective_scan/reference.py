"""Mamba-1 selective scan in plain torch: the spec every other backend is held against.

Recurrence per batch b, channel d and state index n (all math in fp32):
    dt_t  = softplus(delta_t + delta_bias)          (bias and softplus optional)
    h_t   = exp(dt_t * A[d, n]) * h_{t-1} + dt_t * u_t * B_t[g(d), n]
    y_t   = sum_n C_t[g(d), n] * h_t + D[d] * u_t   (D optional)
    y_t  *= silu(z_t)                               (z optional)
where g(d) = d // (Dc / G) is the group of channel d when B and C carry G groups.
These loop over time one step at a time on purpose: they are slow and obviously right.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def prepare_dt(
    delta: torch.Tensor, delta_bias: torch.Tensor | None, softplus: bool
) -> torch.Tensor:
    """delta [..., Dc] -> fp32 step sizes, with the optional bias and softplus applied."""
    dt = delta.float()
    if delta_bias is not None:
        dt = dt + delta_bias.float()
    if softplus:
        dt = F.softplus(dt)
    return dt


def expand_groups(m: torch.Tensor, dc: int, group_dim: int) -> torch.Tensor:
    """B or C with a group axis at `group_dim` ([..., G, N]) -> per channel [..., Dc, N]."""
    g = m.shape[group_dim]
    if dc % g:
        raise ValueError(f"d_inner {dc} is not divisible by the {g} groups of B/C")
    return m.repeat_interleave(dc // g, dim=group_dim)


def _as_grouped(m: torch.Tensor, ndim_ungrouped: int) -> torch.Tensor:
    """[..., N] (no group axis) -> [..., 1, N]; grouped inputs pass through."""
    return m.unsqueeze(-2) if m.dim() == ndim_ungrouped else m


def _finish(y, u, D, z, dtype):
    if D is not None:
        y = y + u.float() * D.float()
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


def selective_scan_ref(
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
):
    """Selective scan over a whole sequence.

    u, delta, z: [B, T, Dc]; A: [Dc, N]; B, C: [B, T, N] or [B, T, G, N]; D, delta_bias: [Dc];
    initial_state: [B, Dc, N] (the state before the first token; zeros when None).
    Returns y [B, T, Dc] in u's dtype, and with return_last_state the state after the last
    token, [B, Dc, N] fp32.
    """
    bsz, seqlen, dc = u.shape
    dt = prepare_dt(delta, delta_bias, delta_softplus)  # [B, T, Dc]
    x = dt * u.float()  # [B, T, Dc]
    a_log = A.float()  # [Dc, N]
    bx = expand_groups(_as_grouped(B, 3).float(), dc, 2)  # [B, T, Dc, N]
    cx = expand_groups(_as_grouped(C, 3).float(), dc, 2)  # [B, T, Dc, N]
    if initial_state is None:
        h = u.new_zeros(bsz, dc, a_log.shape[1], dtype=torch.float32)
    else:
        h = initial_state.float()
    ys = []
    for t in range(seqlen):
        h = torch.exp(dt[:, t, :, None] * a_log) * h + x[:, t, :, None] * bx[:, t]
        ys.append((h * cx[:, t]).sum(-1))  # [B, Dc]
    y = torch.stack(ys, dim=1) if ys else u.new_zeros(bsz, 0, dc, dtype=torch.float32)
    y = _finish(y, u, D, z, u.dtype)
    return (y, h) if return_last_state else y


def selective_scan_step_ref(
    state: torch.Tensor,
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
) -> torch.Tensor:
    """One decode step. state: [B, Dc, N], updated in place; u, delta, z: [B, Dc];
    B, C: [B, N] or [B, G, N]. Returns y [B, Dc] in u's dtype."""
    dc = u.shape[-1]
    dt = prepare_dt(delta, delta_bias, delta_softplus)  # [B, Dc]
    bx = expand_groups(_as_grouped(B, 2).float(), dc, 1)  # [B, Dc, N]
    cx = expand_groups(_as_grouped(C, 2).float(), dc, 1)  # [B, Dc, N]
    h = torch.exp(dt[..., None] * A.float()) * state.float() + (dt * u.float())[..., None] * bx
    state.copy_(h)
    return _finish((h * cx).sum(-1), u, D, z, u.dtype)
