"""Peer implementations of the SSD scan behind `ssd_ref`'s signature, for side-by-side runs.

Each imports its package inside the function: without it, a call raises ImportError with the
install command. `requires` on each function names the module it needs, so a caller can check
availability without calling it. Neither peer is safe past 2^31-element offsets (PEERS.md).
"""

from __future__ import annotations

import torch.nn.functional as F


def _missing(package: str, command: str, exc: ImportError) -> ImportError:
    return ImportError(f"{package} is not installed: {command}; ({exc})")


def ssd_mamba_ssm(
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
    """mamba-ssm's Triton `mamba_chunk_scan_combined`; shapes as in `ssd_ref`."""
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except ImportError as exc:
        raise _missing("mamba-ssm", "pip install mamba-ssm --no-build-isolation", exc) from exc
    return mamba_chunk_scan_combined(
        x,
        dt,
        A,
        B,
        C,
        chunk_size,
        D=D,
        z=z,
        dt_bias=dt_bias,
        initial_states=initial_states,
        dt_softplus=dt_softplus,
        return_final_states=return_final_states,
    )


ssd_mamba_ssm.requires = ("mamba_ssm",)


def fla_inputs(x, dt, A, B, C, dt_bias=None, dt_softplus=False):
    """Map SSD onto fla's simple GLA: q = C, k = dt * B (per head), v = x, g = dt * A.

    Returns q, k [B,T,H,N] in x's dtype, v = x [B,T,H,P], g [B,T,H] fp32 (log decay per step).
    """
    rep = x.shape[2] // B.shape[2]
    dt = dt.float() + (dt_bias.float() if dt_bias is not None else 0.0)
    dt = F.softplus(dt) if dt_softplus else dt
    q = C.repeat_interleave(rep, dim=2)  # [B, T, H, N]
    k = (B.repeat_interleave(rep, dim=2).float() * dt[..., None]).to(x.dtype)  # [B, T, H, N]
    return q, k, x, dt * A.float()


def ssd_fla(
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
    """fla's `chunk_simple_gla` (its own chunk size, 64); D and the z gate applied in torch."""
    try:
        from fla.ops.simple_gla import chunk_simple_gla
    except ImportError as exc:
        raise _missing("fla", "pip install fla-core", exc) from exc
    q, k, v, g = fla_inputs(x, dt, A, B, C, dt_bias, dt_softplus)
    h0 = None if initial_states is None else initial_states.float().transpose(-1, -2).contiguous()
    y, final = chunk_simple_gla(
        q,
        k,
        v,
        g=g,
        scale=1.0,
        initial_state=h0,
        output_final_state=return_final_states,
    )  # y [B, T, H, P]; final [B, H, N, P]
    if D is not None:
        y = y + x * (D[:, None] if D.dim() == 1 else D).to(x.dtype)
    if z is not None:
        y = y * F.silu(z)
    if return_final_states:
        return y, final.float().transpose(-1, -2)
    return y


ssd_fla.requires = ("fla",)


def _ssd_fla_prepare(x, dt, A, B, C, chunk_size=256, D=None, dt_bias=None, dt_softplus=False):
    """The call a benchmark times: fla's kernel (and D) on inputs already in fla's layout.
    The layout change (B and C expanded to every head, dt folded into k) is done here, once:
    timed inside, it costs more than fla's kernel itself (36.7 vs 10.9 ms at 256K on the H100)."""
    from fla.ops.simple_gla import chunk_simple_gla

    q, k, v, g = fla_inputs(x, dt, A, B, C, dt_bias, dt_softplus)
    d = None if D is None else (D[:, None] if D.dim() == 1 else D).to(x.dtype)

    def call():
        y, _ = chunk_simple_gla(q, k, v, g=g, scale=1.0)
        return y if d is None else y + x * d

    return call


ssd_fla.prepare = _ssd_fla_prepare


def peer_available(fn) -> bool:
    """True when every module in `fn.requires` can be found."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in getattr(fn, "requires", ()))


__all__ = ["ssd_mamba_ssm", "ssd_fla", "fla_inputs", "peer_available"]
