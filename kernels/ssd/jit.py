"""Triton kernels of the chunked SSD forward; launched by `kernels/ssd/triton.py`.

Four launches, L = chunk length, c = chunk index:
  1. _chunk_cumsum: dt' = softplus(dt + bias), a = cumsum_l(dt' * A) per chunk -> [B, H, C, L] f32
  2. _chunk_cb: CB = C_c @ B_c^T per chunk and group (lower-triangular blocks) -> [B, C, G, L, L]
     (16-bit for 16-bit inputs unless tuning.CB_16BIT is off: it is the scan's largest read)
  3. _chunk_state: walks the chunks of one (batch, head, P-tile, N-tile) in order, storing the
     state entering each chunk -> [B, C, H, P, N], and the final state (fp32)
  4. _chunk_scan: y = exp(a) * (C @ state_in^T) + (CB * decay * dt', causal) @ x, + D x, * silu(z)

Address math: every offset that can grow with batch, time or chunk count is int64 (program ids
and time indices are cast before they meet a stride), so 2^31 elements and beyond are safe. Only
offsets along P and N, and inside one [L, L] CB block, stay int32.
"""

import triton
import triton.language as tl


@triton.jit
def softplus(v):
    # torch.nn.functional.softplus with threshold 20; exp(v) alone where 1 + exp(v) rounds to 1.
    return tl.where(v > 20.0, v, tl.where(v < -15.0, tl.exp(v), tl.log(1.0 + tl.exp(v))))


@triton.jit
def _chunk_cumsum(
    dt_ptr,
    A_ptr,
    dt_bias_ptr,
    dt_out_ptr,
    acs_ptr,
    T,
    H,
    nchunks,
    stride_dt_b,
    stride_dt_t,
    stride_dt_h,
    L: tl.constexpr,
    BLOCK_H: tl.constexpr,
    HAS_DT_BIAS: tl.constexpr,
    DT_SOFTPLUS: tl.constexpr,
):
    pid_c = tl.program_id(0).to(tl.int64)
    pid_b = tl.program_id(1).to(tl.int64)
    offs_l = tl.arange(0, L)
    offs_h = tl.program_id(2) * BLOCK_H + tl.arange(0, BLOCK_H)
    t = pid_c * L + offs_l  # int64 [L]
    mask_t = t < T
    mask_h = offs_h < H
    mask = mask_t[:, None] & mask_h[None, :]
    ptrs = dt_ptr + pid_b * stride_dt_b + t[:, None] * stride_dt_t + offs_h[None, :] * stride_dt_h
    dt = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)  # [L, BLOCK_H]
    if HAS_DT_BIAS:
        dt += tl.load(dt_bias_ptr + offs_h, mask=mask_h, other=0.0).to(tl.float32)[None, :]
    if DT_SOFTPLUS:
        dt = softplus(dt)
    # Padding past T must be dt = 0 (bias and softplus would make it positive): no decay, no input.
    dt = tl.where(mask, dt, 0.0)
    A = tl.load(A_ptr + offs_h, mask=mask_h, other=0.0).to(tl.float32)
    acs = tl.cumsum(dt * A[None, :], axis=0)
    out = ((pid_b * H + offs_h[None, :]) * nchunks + pid_c) * L + offs_l[:, None]  # [B, H, C, L]
    tl.store(dt_out_ptr + out, dt, mask=mask_h[None, :])
    tl.store(acs_ptr + out, acs, mask=mask_h[None, :])


@triton.jit
def _chunk_cb(
    C_ptr,
    B_ptr,
    cb_ptr,
    T,
    N,
    G,
    nchunks,
    stride_c_b,
    stride_c_t,
    stride_c_g,
    stride_c_n,
    stride_b_b,
    stride_b_t,
    stride_b_g,
    stride_b_n,
    L: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    pid_mn = tl.program_id(0)
    pid_c = tl.program_id(1).to(tl.int64)
    pid_bg = tl.program_id(2).to(tl.int64)
    pid_m = pid_mn // tl.cdiv(L, BLOCK_N)
    pid_n = pid_mn % tl.cdiv(L, BLOCK_N)
    if pid_n * BLOCK_N >= (pid_m + 1) * BLOCK_M:
        return  # strictly above the diagonal: never read
    b = pid_bg // G
    g = pid_bg % G
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_k = tl.arange(0, BLOCK_K)
    t0 = pid_c * L
    tm = t0 + offs_m  # int64
    tn = t0 + offs_n
    c_base = C_ptr + b * stride_c_b + g * stride_c_g
    b_base = B_ptr + b * stride_b_b + g * stride_b_g
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k0 in range(0, N, BLOCK_K):
        kk = k0 + offs_k
        c = tl.load(
            c_base + tm[:, None] * stride_c_t + kk[None, :] * stride_c_n,
            mask=(tm < T)[:, None] & (kk < N)[None, :],
            other=0.0,
        )  # [BLOCK_M, BLOCK_K]
        bt = tl.load(
            b_base + tn[None, :] * stride_b_t + kk[:, None] * stride_b_n,
            mask=(tn < T)[None, :] & (kk < N)[:, None],
            other=0.0,
        )  # [BLOCK_K, BLOCK_N]
        acc = tl.dot(c, bt, acc, input_precision=DOT_PRECISION)
    out = ((b * nchunks + pid_c) * G + g) * (L * L)  # [B, C, G, L, L]
    cb = acc.to(cb_ptr.dtype.element_ty)
    tl.store(cb_ptr + out + offs_m[:, None] * L + offs_n[None, :], cb)


@triton.jit
def _chunk_state(
    x_ptr,
    B_ptr,
    dt_ptr,
    acs_ptr,
    init_ptr,
    states_ptr,
    final_ptr,
    T,
    H,
    G,
    P,
    N,
    nchunks,
    BATCH,  # BATCH: only an autotune key (parallelism is BATCH * H)
    stride_x_b,
    stride_x_t,
    stride_x_h,
    stride_x_p,
    stride_b_b,
    stride_b_t,
    stride_b_g,
    stride_b_n,
    L: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_L: tl.constexpr,
    HAS_INIT: tl.constexpr,
    STORE_FINAL: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    pid_pn = tl.program_id(0)
    pid_h = tl.program_id(1).to(tl.int64)
    pid_b = tl.program_id(2).to(tl.int64)
    pid_p = pid_pn // tl.cdiv(N, BLOCK_N)
    pid_n = pid_pn % tl.cdiv(N, BLOCK_N)
    g = pid_h // (H // G)
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_l = tl.arange(0, BLOCK_L)
    mask_p = offs_p < P
    mask_n = offs_n < N
    mask_pn = mask_p[:, None] & mask_n[None, :]
    tile_pn = offs_p[:, None] * N + offs_n[None, :]  # [BLOCK_P, BLOCK_N] in a [P, N] state

    x_base = x_ptr + pid_b * stride_x_b + pid_h * stride_x_h
    b_base = B_ptr + pid_b * stride_b_b + g * stride_b_g
    bh = pid_b * H + pid_h
    if HAS_INIT:
        state = tl.load(init_ptr + bh * P * N + tile_pn, mask=mask_pn, other=0.0).to(tl.float32)
    else:
        state = tl.zeros((BLOCK_P, BLOCK_N), dtype=tl.float32)

    for c in range(0, nchunks):
        c64 = tl.cast(c, tl.int64)
        st_off = ((pid_b * nchunks + c64) * H + pid_h) * P * N
        tl.store(states_ptr + st_off + tile_pn, state.to(states_ptr.dtype.element_ty), mask=mask_pn)
        a_base = (bh * nchunks + c64) * L
        a_last = tl.load(acs_ptr + a_base + L - 1)
        acc = tl.zeros((BLOCK_P, BLOCK_N), dtype=tl.float32)
        for l0 in tl.static_range(0, L, BLOCK_L):
            t = c64 * L + l0 + offs_l  # int64 [BLOCK_L]
            mask_t = t < T
            xk = tl.load(
                x_base + t[:, None] * stride_x_t + offs_p[None, :] * stride_x_p,
                mask=mask_t[:, None] & mask_p[None, :],
                other=0.0,
            )  # [BLOCK_L, BLOCK_P]
            bk = tl.load(
                b_base + t[:, None] * stride_b_t + offs_n[None, :] * stride_b_n,
                mask=mask_t[:, None] & mask_n[None, :],
                other=0.0,
            )  # [BLOCK_L, BLOCK_N]
            acs = tl.load(acs_ptr + a_base + l0 + offs_l)
            dt = tl.load(dt_ptr + a_base + l0 + offs_l)
            w = tl.exp(a_last - acs) * dt  # [BLOCK_L], <= dt since a is non-increasing
            xw = (xk.to(tl.float32) * w[:, None]).to(xk.dtype)
            acc = tl.dot(tl.trans(xw), bk, acc, input_precision=DOT_PRECISION)
        state = state * tl.exp(a_last) + acc

    if STORE_FINAL:
        tl.store(final_ptr + bh * P * N + tile_pn, state, mask=mask_pn)


@triton.jit
def _chunk_scan(
    x_ptr,
    z_ptr,
    D_ptr,
    C_ptr,
    cb_ptr,
    states_ptr,
    dt_ptr,
    acs_ptr,
    y_ptr,
    T,
    H,
    G,
    P,
    N,
    nchunks,
    stride_x_b,
    stride_x_t,
    stride_x_h,
    stride_x_p,
    stride_z_b,
    stride_z_t,
    stride_z_h,
    stride_z_p,
    stride_c_b,
    stride_c_t,
    stride_c_g,
    stride_c_n,
    stride_y_b,
    stride_y_t,
    stride_y_h,
    stride_y_p,
    L: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_K: tl.constexpr,
    BLOCK_N: tl.constexpr,
    HAS_D: tl.constexpr,
    D_HAS_P: tl.constexpr,
    HAS_Z: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    pid_mp = tl.program_id(0)
    pid_h = tl.program_id(1).to(tl.int64)
    pid_bc = tl.program_id(2).to(tl.int64)
    pid_m = pid_mp // tl.cdiv(P, BLOCK_P)
    pid_p = pid_mp % tl.cdiv(P, BLOCK_P)
    b = pid_bc // nchunks
    c = pid_bc % nchunks
    g = pid_h // (H // G)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)  # position inside the chunk
    offs_p = pid_p * BLOCK_P + tl.arange(0, BLOCK_P)
    mask_p = offs_p < P
    t0 = c * L
    tm = t0 + offs_m  # int64
    mask_m = tm < T

    a_base = ((b * H + pid_h) * nchunks + c) * L
    a_m = tl.load(acs_ptr + a_base + offs_m)

    # Inter-chunk: the state entering this chunk, read out by C and decayed to each position.
    c_base = C_ptr + b * stride_c_b + g * stride_c_g
    s_base = states_ptr + ((b * nchunks + c) * H + pid_h) * P * N
    acc = tl.zeros((BLOCK_M, BLOCK_P), dtype=tl.float32)
    for n0 in range(0, N, BLOCK_N):
        offs_n = n0 + tl.arange(0, BLOCK_N)
        mask_n = offs_n < N
        cm = tl.load(
            c_base + tm[:, None] * stride_c_t + offs_n[None, :] * stride_c_n,
            mask=mask_m[:, None] & mask_n[None, :],
            other=0.0,
        )  # [BLOCK_M, BLOCK_N]
        s = tl.load(
            s_base + offs_p[None, :] * N + offs_n[:, None],
            mask=mask_n[:, None] & mask_p[None, :],
            other=0.0,
        )  # [BLOCK_N, BLOCK_P]: state [P, N] read transposed
        acc = tl.dot(cm, s.to(cm.dtype), acc, input_precision=DOT_PRECISION)
    acc = acc * tl.exp(a_m)[:, None]

    # Intra-chunk: causal (C_l . B_s) exp(a_l - a_s) dt_s x_s, only up to this row block.
    cb_base = cb_ptr + ((b * nchunks + c) * G + g) * (L * L)
    x_base = x_ptr + b * stride_x_b + pid_h * stride_x_h
    for k0 in range(0, (pid_m + 1) * BLOCK_M, BLOCK_K):
        offs_k = k0 + tl.arange(0, BLOCK_K)
        # Above the diagonal CB may be unwritten memory: tl.where (never a multiply) drops it.
        cb = tl.load(cb_base + offs_m[:, None] * L + offs_k[None, :]).to(tl.float32)
        a_k = tl.load(acs_ptr + a_base + offs_k)
        dt_k = tl.load(dt_ptr + a_base + offs_k)
        causal = offs_m[:, None] >= offs_k[None, :]
        w = tl.where(causal, cb * tl.exp(a_m[:, None] - a_k[None, :]) * dt_k[None, :], 0.0)
        tk = t0 + offs_k
        xk = tl.load(
            x_base + tk[:, None] * stride_x_t + offs_p[None, :] * stride_x_p,
            mask=(tk < T)[:, None] & mask_p[None, :],
            other=0.0,
        )  # [BLOCK_K, BLOCK_P]
        acc = tl.dot(w.to(xk.dtype), xk, acc, input_precision=DOT_PRECISION)

    mask_mp = mask_m[:, None] & mask_p[None, :]
    if HAS_D:
        x_ptrs = x_base + tm[:, None] * stride_x_t + offs_p[None, :] * stride_x_p
        xm = tl.load(x_ptrs, mask=mask_mp, other=0.0)
        if D_HAS_P:
            d = tl.load(D_ptr + pid_h * P + offs_p, mask=mask_p, other=0.0).to(tl.float32)[None, :]
        else:
            d = tl.load(D_ptr + pid_h).to(tl.float32)
        acc += xm.to(tl.float32) * d
    if HAS_Z:
        zb = z_ptr + b * stride_z_b + pid_h * stride_z_h
        zm = tl.load(
            zb + tm[:, None] * stride_z_t + offs_p[None, :] * stride_z_p, mask=mask_mp, other=0.0
        ).to(tl.float32)
        acc = acc * zm * tl.sigmoid(zm)
    yb = y_ptr + b * stride_y_b + pid_h * stride_y_h
    tl.store(
        yb + tm[:, None] * stride_y_t + offs_p[None, :] * stride_y_p,
        acc.to(y_ptr.dtype.element_ty),
        mask=mask_mp,
    )
