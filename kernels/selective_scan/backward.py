"""The selective scan's backward as one Triton kernel (`ScanConfig(backward="triton")`).

One program per (batch row, block of channels) walks the whole sequence: a forward pass stores
the state before every SEG-step segment (a checkpoint), then the segments are taken last to
first: each is recomputed from its checkpoint, keeping the state before every step in a scratch
buffer, and walked backwards carrying dh, the gradient of the state:

    h_t = exp(dt_t A) h_{t-1} + dt_t u_t B_t;   y_t = C_t . h_t + D u_t;   out = y silu(z)
    dh_t += C_t dy_t;   du_t = dt_t (B_t . dh_t) + D dy_t
    ddt_t = dh_t . (u_t B_t + A e^{dt A} h_{t-1});   dA += dh_t dt_t e^{dt A} h_{t-1}
    then dh_{t-1} = e^{dt A} dh_t

dB_t and dC_t sum over channels, across programs: each program writes its block's share and the
launcher adds them up (no atomics: the result does not depend on scheduling). A block must lie in
one group of B/C. The torch recomputation (autograd.py) stays the default until this one is
measured on a GPU: it replaces ~3 sqrt(T) torch kernels per segment, whose launches set the pace
of a tiny model's training step, by one launch.

State tiles are [N_PAD, BLOCK_D] as in the forward (A transposed to [N, Dc], states [.., N, Dc]).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

SEG = 64  # steps between checkpoints; the scratch holds one segment's states per program


@triton.jit
def _inputs(u_ptr, dt_ptr, b_base, at, b_at, offs_d, d_mask, n_mask, dtb, HAS_DT_BIAS: tl.constexpr,
            DT_SOFTPLUS: tl.constexpr):  # fmt: skip
    """Step t's inputs in fp32: u, dt before and after softplus, B_t ([N_PAD, 1])."""
    u = tl.load(u_ptr + at + offs_d, mask=d_mask, other=0.0).to(tl.float32)
    raw = tl.load(dt_ptr + at + offs_d, mask=d_mask, other=0.0).to(tl.float32)
    if HAS_DT_BIAS:
        raw += dtb
    dt = raw
    if DT_SOFTPLUS:  # log(1 + e^x), x itself above 20 (torch's threshold)
        dt = tl.where(raw <= 20.0, tl.log(1.0 + tl.exp(raw)), raw)
    bt = tl.load(b_base + b_at, mask=n_mask[:, None], other=0.0).to(tl.float32)
    return u, raw, dt, bt


@triton.jit
def _scan_bwd_kernel(
    u_ptr,
    dt_ptr,
    a_ptr,
    b_ptr,
    c_ptr,
    d_ptr,
    z_ptr,
    dtb_ptr,
    h0_ptr,
    dout_ptr,
    dlast_ptr,
    ckpt_ptr,
    seg_ptr,
    du_ptr,
    ddt_ptr,
    dz_ptr,
    dbp_ptr,
    dcp_ptr,
    da_ptr,
    ddskip_ptr,
    ddtb_ptr,
    dh0_ptr,
    seqlen,
    dc,
    dpg,
    n_seg,
    stride_b_b,
    stride_b_t,
    stride_b_g,
    stride_c_b,
    stride_c_t,
    stride_c_g,
    N: tl.constexpr,
    N_PAD: tl.constexpr,
    BLOCK_D: tl.constexpr,
    SEG_LEN: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    DT_SOFTPLUS: tl.constexpr,
    HAS_H0: tl.constexpr,
    HAS_DLAST: tl.constexpr,
):
    # u, dt, z, dout and the [B, T, Dc] gradients are contiguous; B and C are [B, T, G, N] with N
    # contiguous; A is [N, Dc]; h0, dlast, dh0, the checkpoints and dA are [.., N, Dc].
    pid = tl.program_id(0).to(tl.int64)
    n_dblk = tl.cdiv(dc, BLOCK_D)
    pid_b = pid // n_dblk
    blk = pid % n_dblk
    offs_d = blk * BLOCK_D + tl.arange(0, BLOCK_D).to(tl.int64)
    offs_n = tl.arange(0, N_PAD)
    d_mask = offs_d < dc
    n_mask = offs_n < N
    hn_mask = n_mask[:, None] & d_mask[None, :]
    grp = (blk * BLOCK_D) // dpg  # the block lies in one group (the launcher checks)
    b_base = b_ptr + pid_b * stride_b_b + grp * stride_b_g + offs_n[:, None]  # [N_PAD, 1]
    c_base = c_ptr + pid_b * stride_c_b + grp * stride_c_g + offs_n[:, None]
    row = pid_b * seqlen * dc  # start of this batch row in the [B, T, Dc] tensors

    a = tl.load(a_ptr + offs_n[:, None] * dc + offs_d[None, :], mask=hn_mask, other=0.0)
    a = a.to(tl.float32)
    dtb = tl.zeros([BLOCK_D], dtype=tl.float32)
    if HAS_DT_BIAS:
        dtb = tl.load(dtb_ptr + offs_d, mask=d_mask, other=0.0).to(tl.float32)
    if HAS_D:
        dskip = tl.load(d_ptr + offs_d, mask=d_mask, other=0.0).to(tl.float32)
    state_offs = offs_n[:, None] * dc + offs_d[None, :]
    slab = N * dc  # one [N, Dc] state
    if HAS_H0:
        h = tl.load(h0_ptr + pid_b * slab + state_offs, mask=hn_mask, other=0.0).to(tl.float32)
    else:
        h = tl.zeros([N_PAD, BLOCK_D], dtype=tl.float32)

    # Forward: the state before each segment.
    for s in range(0, n_seg):
        tl.store(ckpt_ptr + (pid_b * n_seg + s) * slab + state_offs, h, mask=hn_mask)
        t_end = tl.minimum((s + 1) * SEG_LEN, seqlen)
        for t in range(s * SEG_LEN, t_end):
            u, raw, dt, bt = _inputs(
                u_ptr, dt_ptr, b_base, row + t * dc, t * stride_b_t, offs_d, d_mask, n_mask,
                dtb, HAS_DT_BIAS, DT_SOFTPLUS,
            )  # fmt: skip
            h = tl.exp(dt[None, :] * a) * h + (dt * u)[None, :] * bt

    # Backward, segment by segment from the last.
    if HAS_DLAST:
        dh = tl.load(dlast_ptr + pid_b * slab + state_offs, mask=hn_mask, other=0.0)
        dh = dh.to(tl.float32)
    else:
        dh = tl.zeros([N_PAD, BLOCK_D], dtype=tl.float32)
    da_acc = tl.zeros([N_PAD, BLOCK_D], dtype=tl.float32)
    dskip_acc = tl.zeros([BLOCK_D], dtype=tl.float32)
    dtb_acc = tl.zeros([BLOCK_D], dtype=tl.float32)
    seg_base = seg_ptr + pid_b * SEG_LEN * slab
    part = (pid_b * n_dblk + blk) * seqlen  # row of this program's dB / dC shares
    for s_rev in range(0, n_seg):
        s = n_seg - 1 - s_rev
        t0 = s * SEG_LEN
        t1 = tl.minimum(t0 + SEG_LEN, seqlen)
        h = tl.load(ckpt_ptr + (pid_b * n_seg + s) * slab + state_offs, mask=hn_mask, other=0.0)
        for t in range(t0, t1):  # the state before every step of the segment
            tl.store(seg_base + (t - t0) * slab + state_offs, h, mask=hn_mask)
            u, raw, dt, bt = _inputs(
                u_ptr, dt_ptr, b_base, row + t * dc, t * stride_b_t, offs_d, d_mask, n_mask,
                dtb, HAS_DT_BIAS, DT_SOFTPLUS,
            )  # fmt: skip
            h = tl.exp(dt[None, :] * a) * h + (dt * u)[None, :] * bt
        for i in range(0, t1 - t0):
            t = t1 - 1 - i
            h_prev = tl.load(seg_base + (t - t0) * slab + state_offs, mask=hn_mask, other=0.0)
            u, raw, dt, bt = _inputs(
                u_ptr, dt_ptr, b_base, row + t * dc, t * stride_b_t, offs_d, d_mask, n_mask,
                dtb, HAS_DT_BIAS, DT_SOFTPLUS,
            )  # fmt: skip
            ct = tl.load(c_base + t * stride_c_t, mask=n_mask[:, None], other=0.0).to(tl.float32)
            dout = tl.load(dout_ptr + row + t * dc + offs_d, mask=d_mask, other=0.0)
            dy = dout.to(tl.float32)
            decay = tl.exp(dt[None, :] * a)  # [N_PAD, BLOCK_D]
            h_t = decay * h_prev + (dt * u)[None, :] * bt
            if HAS_Z:
                y = tl.sum(h_t * ct, axis=0)
                if HAS_D:
                    y += dskip * u
                zf = tl.load(z_ptr + row + t * dc + offs_d, mask=d_mask, other=0.0).to(tl.float32)
                sig = 1.0 / (1.0 + tl.exp(-zf))
                dz = dy * y * sig * (1.0 + zf * (1.0 - sig))
                tl.store(dz_ptr + row + t * dc + offs_d, dz, mask=d_mask)
                dy = dy * zf * sig
            dh += ct * dy[None, :]
            dc_share = tl.sum(h_t * dy[None, :], axis=1)  # [N_PAD]: this block's part of dC_t
            tl.store(dcp_ptr + (part + t) * N + offs_n, dc_share, mask=n_mask)
            db_share = tl.sum(dh * (dt * u)[None, :], axis=1)
            tl.store(dbp_ptr + (part + t) * N + offs_n, db_share, mask=n_mask)
            du = dt * tl.sum(dh * bt, axis=0)
            if HAS_D:
                du += dskip * dy
                dskip_acc += dy * u
            ddt = tl.sum(dh * (bt * u[None, :] + a * decay * h_prev), axis=0)
            da_acc += dh * dt[None, :] * decay * h_prev
            if DT_SOFTPLUS:  # d softplus / dx = sigmoid(x); identity above the threshold
                ddt = ddt * tl.where(raw <= 20.0, 1.0 / (1.0 + tl.exp(-raw)), 1.0)
            if HAS_DT_BIAS:
                dtb_acc += ddt
            tl.store(du_ptr + row + t * dc + offs_d, du, mask=d_mask)
            tl.store(ddt_ptr + row + t * dc + offs_d, ddt, mask=d_mask)
            dh = dh * decay
    tl.store(dh0_ptr + pid_b * slab + state_offs, dh, mask=hn_mask)
    tl.store(da_ptr + pid_b * slab + state_offs, da_acc, mask=hn_mask)
    tl.store(ddskip_ptr + pid_b * dc + offs_d, dskip_acc, mask=d_mask)
    tl.store(ddtb_ptr + pid_b * dc + offs_d, dtb_acc, mask=d_mask)


def block_for(dc: int, groups: int) -> int | None:
    """Channels per program: at most 64 (the forward's best block), and with several groups of
    B/C a width (64, 32 or 16) that divides a group, so that a block lies in one; None if none
    does (the torch recomputation then takes the backward)."""
    if groups == 1:
        return min(64, max(16, triton.next_power_of_2(dc)))
    dpg = dc // groups
    return next((block for block in (64, 32, 16) if dpg % block == 0), None)


def supported(dc: int, groups: int) -> bool:
    return block_for(dc, groups) is not None


def selective_scan_bwd(u, delta, A, B, C, D, z, delta_bias, softplus, h0, dout, dlast):
    """Gradients of `selective_scan_ref`'s inputs given dout [B, T, Dc] (and dlast [B, Dc, N], the
    last state's gradient, or None): (du, ddelta, dA, dB, dC, dD, dz, ddelta_bias, dh0) in the
    inputs' shapes and dtypes (None where the input is None)."""
    bsz, seqlen, dc = u.shape
    n = A.shape[1]
    grouped = B.dim() == 4
    Bg = B if grouped else B.unsqueeze(2)
    Cg = C if grouped else C.unsqueeze(2)
    groups = Bg.shape[2]
    block = block_for(dc, groups)
    assert block is not None, f"no channel block of 16-64 lies in one of {groups} groups of {dc}"
    dev, f32 = u.device, torch.float32
    n_seg = triton.cdiv(seqlen, SEG)
    n_dblk = triton.cdiv(dc, block)

    def c(t):
        return t.contiguous() if t is not None else None

    def state(t):  # [B, Dc, N] -> [B, N, Dc] fp32
        return t.float().transpose(1, 2).contiguous() if t is not None else None

    u_, dt_, z_, dout_ = c(u), c(delta), c(z), c(dout)
    Bg, Cg = Bg.contiguous(), Cg.contiguous()
    a_t = A.float().t().contiguous()  # [N, Dc]
    h0_, dlast_ = state(h0), state(dlast)
    du = torch.empty(bsz, seqlen, dc, device=dev, dtype=f32)
    ddt = torch.empty_like(du)
    dz = torch.empty_like(du) if z is not None else None
    dbp = torch.empty(bsz, n_dblk, seqlen, n, device=dev, dtype=f32)
    dcp = torch.empty_like(dbp)
    da = torch.empty(bsz, n, dc, device=dev, dtype=f32)
    dh0 = torch.empty_like(da)
    ddskip = torch.empty(bsz, dc, device=dev, dtype=f32)
    ddtb = torch.empty_like(ddskip)
    ckpt = torch.empty(bsz, n_seg, n, dc, device=dev, dtype=f32)
    seg = torch.empty(bsz, SEG, n, dc, device=dev, dtype=f32)
    dummy = du  # for absent optional pointers: never read (their constexpr flag is off)
    _scan_bwd_kernel[(bsz * n_dblk,)](
        u_,
        dt_,
        a_t,
        Bg,
        Cg,
        D if D is not None else dummy,
        z_ if z_ is not None else dummy,
        delta_bias if delta_bias is not None else dummy,
        h0_ if h0_ is not None else dummy,
        dout_,
        dlast_ if dlast_ is not None else dummy,
        ckpt,
        seg,
        du,
        ddt,
        dz if dz is not None else dummy,
        dbp,
        dcp,
        da,
        ddskip,
        ddtb,
        dh0,
        seqlen,
        dc,
        dc // groups,
        n_seg,
        *Bg.stride()[:3],
        *Cg.stride()[:3],
        N=n,
        N_PAD=max(2, triton.next_power_of_2(n)),
        BLOCK_D=block,
        SEG_LEN=SEG,
        HAS_D=D is not None,
        HAS_Z=z is not None,
        HAS_DT_BIAS=delta_bias is not None,
        DT_SOFTPLUS=bool(softplus),
        HAS_H0=h0 is not None,
        HAS_DLAST=dlast is not None,
    )

    def by_group(parts):  # [B, n_dblk, T, N] -> [B, T, G, N] (block_for: blocks split evenly)
        return parts.view(bsz, groups, n_dblk // groups, seqlen, n).sum(2).permute(0, 2, 1, 3)

    dB, dC = by_group(dbp), by_group(dcp)
    if not grouped:
        dB, dC = dB.squeeze(2), dC.squeeze(2)
    return (
        du.to(u.dtype),
        ddt.to(delta.dtype),
        da.sum(0).t().to(A.dtype),
        dB.to(B.dtype),
        dC.to(C.dtype),
        ddskip.sum(0).to(D.dtype) if D is not None else None,
        dz.to(z.dtype) if dz is not None else None,
        ddtb.sum(0).to(delta_bias.dtype) if delta_bias is not None else None,
        dh0.transpose(1, 2).to(h0.dtype) if h0 is not None else None,
    )
