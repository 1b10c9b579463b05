"""Mamba-2 SSD chunked scan on Triton: launchers, tuning modes and the autograd wrapper.

`ssd(...)` takes the arguments of `kernels.ssd.reference.ssd_ref` and returns the same values.
Forward runs the four kernels of `kernels/ssd/jit.py`; backward (when any input requires grad)
recomputes the chunked torch reference under autograd (see kernels/ssd/NOTES.md for why).

Tuning modes (autotuned, or fixed configs for benchmarks) live in `kernels/ssd/tuning.py`;
`set_autotune` is re-exported here.
"""

from __future__ import annotations

import torch
import triton

from kernels.ssd import jit, tuning
from kernels.ssd.reference import ssd_ref
from kernels.ssd.tuning import set_autotune

__all__ = ["ssd", "ssd_fwd", "set_autotune"]


def _nan_filled(shape, device, dtype):
    return torch.full(shape, float("nan"), device=device, dtype=dtype)


def _check_inputs(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states):
    assert x.dim() == 4 and dt.dim() == 3 and B.dim() == 4, "x [B,T,H,P], dt [B,T,H], B [B,T,G,N]"
    bsz, seqlen, nheads, headdim = x.shape
    ngroups, dstate = B.shape[2:]
    assert dt.shape == (bsz, seqlen, nheads) and A.shape == (nheads,)
    assert B.shape == C.shape == (bsz, seqlen, ngroups, dstate)
    assert nheads % ngroups == 0, f"heads {nheads} not divisible by groups {ngroups}"
    assert B.dtype == C.dtype == x.dtype, "x, B and C must share a dtype"
    assert chunk_size >= 16 and chunk_size & (chunk_size - 1) == 0, "chunk_size: a power of 2 >= 16"
    assert D is None or D.shape in ((nheads,), (nheads, headdim))
    assert z is None or z.shape == x.shape
    assert dt_bias is None or dt_bias.shape == (nheads,)
    assert initial_states is None or initial_states.shape == (bsz, nheads, headdim, dstate)


def ssd_fwd(
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
    return_chunk_states=False,
    poison=False,
):
    """Forward only, no autograd. Same arguments and shapes as `ssd_ref`.

    poison: fill every output and workspace with NaN before the launches (tests use it to catch
    elements no kernel writes, and to prove the unwritten upper blocks of CB are never used).

    Returns (y [B,T,H,P], final [B,H,P,N] fp32 or None, states [B,C,H,P,N] or None), where
    states[:, c] is the state entering chunk c (kept for long-context checks when
    return_chunk_states; in x's dtype, fp32 for fp32 inputs).
    """
    _check_inputs(x, dt, A, B, C, chunk_size, D, z, dt_bias, initial_states)
    bsz, seqlen, nheads, headdim = x.shape
    ngroups, dstate = B.shape[2:]
    L = chunk_size
    nchunks = triton.cdiv(seqlen, L)
    dev = x.device
    empty = _nan_filled if poison else torch.empty
    y = empty(x.shape, device=dev, dtype=x.dtype)
    final = (
        empty((bsz, nheads, headdim, dstate), device=dev, dtype=torch.float32)
        if return_final_states
        else None
    )
    if seqlen == 0:
        if final is not None:
            final.copy_(initial_states if initial_states is not None else torch.zeros_like(final))
        return y, final, None
    A = A.float().contiguous()
    dt_bias = dt_bias.float().contiguous() if dt_bias is not None else None
    D = D.float().contiguous() if D is not None else None
    init = initial_states.float().contiguous() if initial_states is not None else None
    precision = "ieee" if x.dtype == torch.float32 else "tf32"
    fixed = tuning.use_fixed()
    dims = {"P": headdim, "N": dstate, "L": L}

    dt_out = empty((bsz, nheads, nchunks, L), device=dev, dtype=torch.float32)
    acs = empty((bsz, nheads, nchunks, L), device=dev, dtype=torch.float32)
    block_h = min(16, triton.next_power_of_2(nheads))
    jit._chunk_cumsum[(nchunks, bsz, triton.cdiv(nheads, block_h))](
        dt,
        A,
        dt_bias,
        dt_out,
        acs,
        seqlen,
        nheads,
        nchunks,
        *dt.stride(),
        L=L,
        BLOCK_H=block_h,
        HAS_DT_BIAS=dt_bias is not None,
        DT_SOFTPLUS=dt_softplus,
        num_warps=4,
    )

    cb_dtype = x.dtype if tuning.CB_16BIT and x.dtype != torch.float32 else torch.float32
    cb = empty((bsz, nchunks, ngroups, L, L), device=dev, dtype=cb_dtype)
    kw = tuning.clip(tuning.FIXED_CB, {"BLOCK_M": L, "BLOCK_N": L, "BLOCK_K": dstate})
    grid = (triton.cdiv(L, kw["BLOCK_M"]) * triton.cdiv(L, kw["BLOCK_N"]), nchunks, bsz * ngroups)
    jit._chunk_cb[grid](
        C,
        B,
        cb,
        seqlen,
        dstate,
        ngroups,
        nchunks,
        *C.stride(),
        *B.stride(),
        L=L,
        DOT_PRECISION=precision,
        **kw,
    )

    states_dtype = torch.float32 if x.dtype == torch.float32 else x.dtype
    states = empty((bsz, nchunks, nheads, headdim, dstate), device=dev, dtype=states_dtype)
    args = (
        x,
        B,
        dt_out,
        acs,
        init,
        states,
        final,
        seqlen,
        nheads,
        ngroups,
        headdim,
        dstate,
        nchunks,
        bsz,
        *x.stride(),
        *B.stride(),
    )
    meta = dict(
        L=L,
        HAS_INIT=init is not None,
        STORE_FINAL=final is not None,
        DOT_PRECISION=precision,
    )
    grid = lambda m: (
        triton.cdiv(headdim, m["BLOCK_P"]) * triton.cdiv(dstate, m["BLOCK_N"]),
        nheads,
        bsz,
    )
    if fixed:
        kw = tuning.clip(tuning.FIXED_STATE, tuning.state_limits(dims))
        jit._chunk_state[grid(kw)](*args, **meta, **kw)
    else:
        tuning.chunk_state_tuned[grid](*args, **meta)

    args = (
        x,
        z,
        D,
        C,
        cb,
        states,
        dt_out,
        acs,
        y,
        seqlen,
        nheads,
        ngroups,
        headdim,
        dstate,
        nchunks,
        *x.stride(),
        *(z.stride() if z is not None else (0, 0, 0, 0)),
        *C.stride(),
        *y.stride(),
    )
    meta = dict(
        L=L,
        HAS_D=D is not None,
        D_HAS_P=D is not None and D.dim() == 2,
        HAS_Z=z is not None,
        DOT_PRECISION=precision,
    )
    grid = lambda m: (
        triton.cdiv(L, m["BLOCK_M"]) * triton.cdiv(headdim, m["BLOCK_P"]),
        nheads,
        bsz * nchunks,
    )
    if fixed:
        kw = tuning.clip(tuning.FIXED_SCAN, tuning.scan_limits(dims))
        kw["BLOCK_K"] = min(kw["BLOCK_K"], kw["BLOCK_M"])
        jit._chunk_scan[grid(kw)](*args, **meta, **kw)
    else:
        tuning.chunk_scan_tuned[grid](*args, **meta)
    return y, final, (states if return_chunk_states else None)


class _SSDFunction(torch.autograd.Function):
    """Triton forward; backward recomputes `ssd_ref` (chunked, mostly matmuls) under autograd."""

    @staticmethod
    def forward(
        ctx,
        x,
        dt,
        A,
        B,
        C,
        D,
        z,
        dt_bias,
        initial_states,
        chunk_size,
        dt_softplus,
        return_final_states,
    ):
        y, final, _ = ssd_fwd(
            x,
            dt,
            A,
            B,
            C,
            chunk_size,
            D,
            z,
            dt_bias,
            dt_softplus,
            initial_states,
            return_final_states,
        )
        ctx.save_for_backward(x, dt, A, B, C, D, z, dt_bias, initial_states)
        ctx.chunk_size, ctx.dt_softplus = chunk_size, dt_softplus
        ctx.return_final_states = return_final_states
        if return_final_states:
            return y, final
        return y

    @staticmethod
    def backward(ctx, *grad_outputs):
        saved = ctx.saved_tensors
        needs = ctx.needs_input_grad[: len(saved)]
        with torch.enable_grad():
            leaves = [
                t.detach().requires_grad_(need) if t is not None else None
                for t, need in zip(saved, needs, strict=True)
            ]
            x, dt, A, B, C, D, z, dt_bias, init = leaves
            outs = ssd_ref(
                x,
                dt,
                A,
                B,
                C,
                ctx.chunk_size,
                D,
                z,
                dt_bias,
                ctx.dt_softplus,
                init,
                ctx.return_final_states,
            )
            outs = outs if isinstance(outs, tuple) else (outs,)
            pairs = [(o, g) for o, g in zip(outs, grad_outputs, strict=True) if g is not None]
            wanted = [t for t, need in zip(leaves, needs, strict=True) if t is not None and need]
            grads = (
                torch.autograd.grad(
                    [o for o, _ in pairs], wanted, [g for _, g in pairs], allow_unused=True
                )
                if pairs and wanted
                else [None] * len(wanted)
            )
        it = iter(grads)
        pick = [t is not None and need for t, need in zip(leaves, needs, strict=True)]
        result = [next(it) if p else None for p in pick]
        return (*result, None, None, None)


def ssd(
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
    """Mamba-2 SSD scan. x [B,T,H,P], dt [B,T,H], A [H], B and C [B,T,G,N], D [H] or [H,P],
    z [B,T,H,P], dt_bias [H], initial_states [B,H,P,N] (fp32 or any float).

    Returns y [B,T,H,P] in x's dtype, and the final state [B,H,P,N] in fp32 when
    return_final_states. Differentiable in every tensor argument.
    """
    tensors = (x, dt, A, B, C, D, z, dt_bias, initial_states)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors):
        return _SSDFunction.apply(*tensors, chunk_size, dt_softplus, return_final_states)
    y, final, _ = ssd_fwd(
        x,
        dt,
        A,
        B,
        C,
        chunk_size,
        D,
        z,
        dt_bias,
        dt_softplus,
        initial_states,
        return_final_states,
    )
    return (y, final) if return_final_states else y
