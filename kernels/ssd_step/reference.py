"""One Mamba-2 SSD decode step in plain torch: the spec for `kernels.ssd_step`.

Per head h (group g = h // (H // G)), with dt' = softplus(dt + dt_bias) when asked:
    state <- exp(dt' * A_h) * state + dt' * x B^T        state [P, N], updated in place
    y      = state C + D_h * x,  then  y *= silu(z)  when z is given
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def ssd_step_ref(state, x, dt, A, B, C, D=None, z=None, dt_bias=None, dt_softplus=False):
    """state [B,H,P,N] (updated in place), x [B,H,P], dt [B,H], A [H], B and C [B,G,N],
    D [H] or [H,P], z [B,H,P], dt_bias [H]. Returns y [B,H,P] in x's dtype."""
    bsz, nheads, headdim = x.shape
    ngroups = B.shape[1]
    assert state.shape[:3] == (bsz, nheads, headdim) and dt.shape == (bsz, nheads)
    assert nheads % ngroups == 0 and C.shape == B.shape
    rep = nheads // ngroups
    dt = dt.float()
    if dt_bias is not None:
        dt = dt + dt_bias.float()
    if dt_softplus:
        dt = F.softplus(dt)
    decay = torch.exp(dt * A.float())  # [b, h]
    Bh = B.float().repeat_interleave(rep, dim=1)  # [b, h, n]
    Ch = C.float().repeat_interleave(rep, dim=1)  # [b, h, n]
    new = (
        decay[..., None, None] * state.float()
        + (dt[..., None] * x.float())[..., None] * Bh[:, :, None, :]
    )  # [b, h, p, n]
    state.copy_(new)
    y = torch.einsum("bhpn,bhn->bhp", new, Ch)
    if D is not None:
        d = D.float()
        y = y + x.float() * (d[:, None] if d.dim() == 1 else d)
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(x.dtype)
