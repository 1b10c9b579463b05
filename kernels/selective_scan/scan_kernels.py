"""Triton kernels of the selective scan forward (the launcher is in triton.py).

_scan_chunk_kernel runs the recurrence over one chunk of time for a block of channels, each
thread owning block_d / (32 * num_warps) of them with their N states in registers:
passes 1 and 3 of triton.py. _state_passing_kernel is pass 2. Offsets are int64 throughout.
"""

from __future__ import annotations

import triton
import triton.language as tl

# Autotune candidates for the chunk kernel; `prune_scan_configs` drops the ones that do not fit.
AUTOTUNE_CONFIGS = [
    triton.Config({"BLOCK_D": bd, "PREFETCH": pf}, num_warps=w, num_stages=1)
    for bd, w, pf in [(64, 1, False), (64, 1, True), (32, 1, True), (128, 2, False), (128, 4, True)]
]


def prune_scan_configs(configs, named_args, **kwargs):
    """Keep configs whose channel block is no wider than the (power-of-two padded) channels and
    that give every thread at least one channel."""
    dc = named_args["dc"]
    widest = max(32, triton.next_power_of_2(dc))
    kept = [
        c
        for c in configs
        if c.kwargs["BLOCK_D"] <= widest and c.kwargs["BLOCK_D"] >= 32 * c.num_warps
    ]
    return kept or configs[:1]


@triton.jit
def _scan_chunk_kernel(
    u_ptr,
    dt_ptr,
    a_ptr,
    b_ptr,
    c_ptr,
    d_ptr,
    z_ptr,
    dtb_ptr,
    h0_ptr,
    y_ptr,
    hend_ptr,
    dtsum_ptr,
    seqlen,
    dc,
    dpg,
    chunk_len,
    n_chunks,
    stride_u_b,
    stride_u_t,
    stride_dt_b,
    stride_dt_t,
    stride_b_b,
    stride_b_t,
    stride_b_g,
    stride_c_b,
    stride_c_t,
    stride_c_g,
    stride_z_b,
    stride_z_t,
    stride_y_b,
    stride_y_t,
    stride_h0_b,
    stride_h0_c,
    stride_he_b,
    stride_he_c,
    stride_ds_b,
    stride_ds_c,
    N: tl.constexpr,
    N_PAD: tl.constexpr,
    BLOCK_D: tl.constexpr,
    HAS_D: tl.constexpr,
    HAS_Z: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    DT_SOFTPLUS: tl.constexpr,
    HAS_H0: tl.constexpr,
    STORE_Y: tl.constexpr,
    STORE_HEND: tl.constexpr,
    HEND_LAST_ONLY: tl.constexpr,
    STORE_DTSUM: tl.constexpr,
    ONE_GROUP: tl.constexpr,
    PREFETCH: tl.constexpr,
):
    # grid: (B * cdiv(Dc, BLOCK_D), n_chunks). State tile h: [N_PAD, BLOCK_D], each thread
    # holding the N_PAD states of its channel so that sum over n stays inside the thread. To get
    # that layout every 2D load is contiguous along d: A comes transposed ([N, Dc]) and the
    # state buffers are [..., N, Dc]. ONE_GROUP (the block lies in one group of B/C) loads B_t
    # and C_t as one [N] vector per program instead of a per-channel gather.
    pid_bd = tl.program_id(0).to(tl.int64)
    pid_c = tl.program_id(1).to(tl.int64)
    n_dblk = tl.cdiv(dc, BLOCK_D)
    pid_b = pid_bd // n_dblk
    offs_d = (pid_bd % n_dblk) * BLOCK_D + tl.arange(0, BLOCK_D).to(tl.int64)  # [BLOCK_D]
    offs_n = tl.arange(0, N_PAD)  # [N_PAD]
    d_mask = offs_d < dc
    hn_mask = (offs_n[:, None] < N) & d_mask[None, :]  # [N_PAD, BLOCK_D]
    if ONE_GROUP:
        grp_off = ((pid_bd % n_dblk) * BLOCK_D // dpg) * stride_b_g + offs_n[:, None]  # [N_PAD, 1]
        grp_off_c = ((pid_bd % n_dblk) * BLOCK_D // dpg) * stride_c_g + offs_n[:, None]
        bc_mask = offs_n[:, None] < N
    else:
        grp = offs_d // dpg  # [BLOCK_D] group of each channel
        grp_off = grp[None, :] * stride_b_g + offs_n[:, None]  # [N_PAD, BLOCK_D]
        grp_off_c = grp[None, :] * stride_c_g + offs_n[:, None]
        bc_mask = hn_mask

    # Pre-scaling A by log2(e) turns exp(dt * A) into one exp2 per state.
    a2 = tl.load(a_ptr + offs_n[:, None] * dc + offs_d[None, :], mask=hn_mask, other=0.0)
    a2 = a2.to(tl.float32) * 1.4426950408889634  # [N_PAD, BLOCK_D]
    if HAS_DT_BIAS:
        dtb = tl.load(dtb_ptr + offs_d, mask=d_mask, other=0.0).to(tl.float32)
    if HAS_D:
        dskip = tl.load(d_ptr + offs_d, mask=d_mask, other=0.0).to(tl.float32)

    state_offs = offs_n[:, None] * dc + offs_d[None, :]  # [N_PAD, BLOCK_D] into [.., N, Dc]
    if HAS_H0:
        h0_p = h0_ptr + pid_b * stride_h0_b + pid_c * stride_h0_c + state_offs
        h = tl.load(h0_p, mask=hn_mask, other=0.0).to(tl.float32)
    else:
        h = tl.zeros([N_PAD, BLOCK_D], dtype=tl.float32)
    dtsum = tl.zeros([BLOCK_D], dtype=tl.float32)

    t0 = pid_c * chunk_len
    t1 = tl.minimum(t0 + chunk_len, seqlen)
    u_p = u_ptr + pid_b * stride_u_b + t0 * stride_u_t + offs_d
    dt_p = dt_ptr + pid_b * stride_dt_b + t0 * stride_dt_t + offs_d
    b_p = b_ptr + pid_b * stride_b_b + t0 * stride_b_t + grp_off
    if STORE_Y:
        c_p = c_ptr + pid_b * stride_c_b + t0 * stride_c_t + grp_off_c
        y_p = y_ptr + pid_b * stride_y_b + t0 * stride_y_t + offs_d
        if HAS_Z:
            z_p = z_ptr + pid_b * stride_z_b + t0 * stride_z_t + offs_d
    if PREFETCH:  # inputs of the first step; the loop then loads one step ahead
        u_n = tl.load(u_p, mask=d_mask, other=0.0)
        dt_n = tl.load(dt_p, mask=d_mask, other=0.0)
        b_n = tl.load(b_p, mask=bc_mask, other=0.0)
        if STORE_Y:
            c_n = tl.load(c_p, mask=bc_mask, other=0.0)
            if HAS_Z:
                z_n = tl.load(z_p, mask=d_mask, other=0.0)
    for t in range(t0, t1):
        if PREFETCH:
            u, dt, bt = u_n, dt_n, b_n
            if STORE_Y:
                ct = c_n
                if HAS_Z:
                    zt = z_n
            # Issue the next step's loads before this step's math and store, so their latency
            # overlaps it (the compiler cannot hoist loads above the y store: they may alias).
            # On the chunk's last step adv = 0 and the same row is read again, harmlessly.
            adv = tl.minimum(t1 - 1 - t, 1)
            u_p += adv * stride_u_t
            dt_p += adv * stride_dt_t
            b_p += adv * stride_b_t
            u_n = tl.load(u_p, mask=d_mask, other=0.0)
            dt_n = tl.load(dt_p, mask=d_mask, other=0.0)
            b_n = tl.load(b_p, mask=bc_mask, other=0.0)
            if STORE_Y:
                c_p += adv * stride_c_t
                c_n = tl.load(c_p, mask=bc_mask, other=0.0)
                if HAS_Z:
                    z_p += adv * stride_z_t
                    z_n = tl.load(z_p, mask=d_mask, other=0.0)
        else:
            u = tl.load(u_p, mask=d_mask, other=0.0)
            dt = tl.load(dt_p, mask=d_mask, other=0.0)
            bt = tl.load(b_p, mask=bc_mask, other=0.0)
            u_p += stride_u_t
            dt_p += stride_dt_t
            b_p += stride_b_t
            if STORE_Y:
                ct = tl.load(c_p, mask=bc_mask, other=0.0)
                c_p += stride_c_t
                if HAS_Z:
                    zt = tl.load(z_p, mask=d_mask, other=0.0)
                    z_p += stride_z_t
        u = u.to(tl.float32)
        dt = dt.to(tl.float32)
        if HAS_DT_BIAS:
            dt += dtb
        if DT_SOFTPLUS:
            # log(1 + e^x), or x above 20 where they agree in fp32 (torch's threshold); inlined
            # because a jit helper call costs milliseconds per step in Triton's interpreter
            dt = tl.where(dt <= 20.0, tl.log(1.0 + tl.exp(dt)), dt)
        # bt: [N_PAD, 1] (ONE_GROUP) or [N_PAD, BLOCK_D]
        h = tl.exp2(dt[None, :] * a2) * h + (dt * u)[None, :] * bt.to(tl.float32)
        if STORE_DTSUM:
            dtsum += dt
        if STORE_Y:
            y = tl.sum(h * ct.to(tl.float32), axis=0)  # [BLOCK_D]
            if HAS_D:
                y += dskip * u
            if HAS_Z:
                zf = zt.to(tl.float32)
                y *= zf / (1.0 + tl.exp(-zf))  # silu, inlined like softplus
            tl.store(y_p, y.to(y_ptr.dtype.element_ty), mask=d_mask)
            y_p += stride_y_t

    if STORE_HEND:
        he_p = hend_ptr + pid_b * stride_he_b + state_offs
        if HEND_LAST_ONLY:
            if pid_c == n_chunks - 1:
                tl.store(he_p, h, mask=hn_mask)
        else:
            tl.store(he_p + pid_c * stride_he_c, h, mask=hn_mask)
    if STORE_DTSUM:
        ds_p = dtsum_ptr + pid_b * stride_ds_b + pid_c * stride_ds_c + offs_d
        tl.store(ds_p, dtsum, mask=d_mask)


_scan_chunk_autotuned = triton.autotune(
    configs=AUTOTUNE_CONFIGS,
    key=["dc", "chunk_len", "N", "dpg", "STORE_Y", "HAS_Z"],
    prune_configs_by={"early_config_prune": prune_scan_configs},
)(_scan_chunk_kernel)


@triton.jit
def _state_passing_kernel(
    s_ptr,
    ds_ptr,
    a_ptr,
    h0_ptr,
    n_chunks,
    dc,
    stride_s_b,
    stride_s_c,
    stride_ds_b,
    stride_ds_c,
    stride_h0_b,
    N: tl.constexpr,
    N_PAD: tl.constexpr,
    BLOCK_D: tl.constexpr,
    HAS_H0: tl.constexpr,
):
    # grid: (B, cdiv(Dc, BLOCK_D)). Tile [BLOCK_D, N_PAD] of state buffers laid out [.., N, Dc]
    # (A transposed likewise); latency-bound on the walk over chunks, which is short.
    pid_b = tl.program_id(0).to(tl.int64)
    offs_d = tl.program_id(1).to(tl.int64) * BLOCK_D + tl.arange(0, BLOCK_D).to(tl.int64)
    offs_n = tl.arange(0, N_PAD)
    d_mask = offs_d < dc
    mask = d_mask[:, None] & (offs_n[None, :] < N)
    offs = offs_n[None, :] * dc + offs_d[:, None]  # [BLOCK_D, N_PAD]
    a2 = tl.load(a_ptr + offs, mask=mask, other=0.0).to(tl.float32) * 1.4426950408889634
    if HAS_H0:
        h = tl.load(h0_ptr + pid_b * stride_h0_b + offs, mask=mask, other=0.0).to(tl.float32)
    else:
        h = tl.zeros([BLOCK_D, N_PAD], dtype=tl.float32)
    s_p = s_ptr + pid_b * stride_s_b + offs
    ds_p = ds_ptr + pid_b * stride_ds_b + offs_d
    for _ in range(0, n_chunks):
        s = tl.load(s_p, mask=mask, other=0.0)
        ds = tl.load(ds_p, mask=d_mask, other=0.0)
        tl.store(s_p, h, mask=mask)  # the buffer now holds this chunk's start state
        h = tl.exp2(ds[:, None] * a2) * h + s
        s_p += stride_s_c
        ds_p += stride_ds_c
