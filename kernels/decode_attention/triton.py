"""Attention decode step in Triton: split-KV ("flash decoding") with an online softmax.

Why a kernel: one query token per head makes the step a [G, D] x [D, S] product per KV head, a
matrix-vector shape that spends its whole time reading K and V. Batched matmuls (the "matmul"
path) leave that long S reduction to cuBLAS, which read the cache at ~1% of HBM bandwidth on the
H200 (models/README.md). Here the cache is cut along S into splits, one program per
(batch x KV head, split), enough programs to fill every SM; each reads its K/V slice once,
keeps a running max and sum (base-2 exponentials), and writes a partial output; a second small
kernel merges the splits, one program per query row. The G query heads that share a KV head are
one tile, so K/V is read once for all of them (GQA).

CUDA graphs: the grid depends on the buffer length S only, never on the position, and `pos` is
read on the device; splits past `pos` do no work and the merge reads only the ones before it, so
a step reads the valid prefix of the cache, not the whole buffer.
Offsets are int64 (batch x heads x S x D passes 2^31 at 1M tokens and batch 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
import triton
import triton.language as tl

from kernels.decode_attention.reference import check_shapes

LOG2E = 1.4426950408889634


@dataclass(frozen=True)
class DecodeAttnConfig:
    """Launch parameters. split_len 0: chosen from S so that the grid fills the GPU."""

    block_n: int = 64  # cache positions per loop iteration
    split_len: int = 0  # cache positions per program (a multiple of block_n)
    num_warps: int = 4
    num_stages: int = 3
    programs_per_sm: int = 4  # the auto split's target occupancy
    merge_block: int = 32  # splits the merge reads at once (a power of two)


DEFAULT_CONFIG = DecodeAttnConfig()


@triton.jit
def _split_kernel(
    Q, K, V, POS, PO, PM, PL,
    G, HKV, split_len, n_splits, scale_log2,
    sq_b, sq_h, sq_g, sk_b, sk_h, sk_s, sv_b, sv_h, sv_s,
    D: tl.constexpr, G_PAD: tl.constexpr, BLOCK_N: tl.constexpr,
):  # fmt: skip
    bh = tl.program_id(0).to(tl.int64)
    sp = tl.program_id(1).to(tl.int64)
    b = bh // HKV
    h = bh % HKV
    pos = tl.load(POS)
    start = sp * split_len
    end = tl.minimum(start + split_len, pos + 1)
    offs_g = tl.arange(0, G_PAD)
    offs_d = tl.arange(0, D)
    offs_n = tl.arange(0, BLOCK_N)
    q_ptrs = Q + b * sq_b + h * sq_h + offs_g[:, None] * sq_g + offs_d[None, :]
    q = tl.load(q_ptrs, mask=offs_g[:, None] < G, other=0.0)
    k_base = K + b * sk_b + h * sk_h
    v_base = V + b * sv_b + h * sv_h
    m = tl.full([G_PAD], float("-inf"), tl.float32)
    l_sum = tl.zeros([G_PAD], tl.float32)
    acc = tl.zeros([G_PAD, D], tl.float32)
    for s in range(start, end, BLOCK_N):
        cols = s + offs_n
        valid = cols < end
        rows_ok = valid[:, None]
        kb = tl.load(k_base + cols[:, None] * sk_s + offs_d[None, :], mask=rows_ok, other=0.0)
        qk = tl.dot(q, tl.trans(kb)) * scale_log2  # [G_PAD, BLOCK_N], log2 domain
        qk = tl.where(valid[None, :], qk, float("-inf"))
        m_new = tl.maximum(m, tl.max(qk, 1))
        alpha = tl.exp2(m - m_new)
        p = tl.exp2(qk - m_new[:, None])
        l_sum = l_sum * alpha + tl.sum(p, 1)
        vb = tl.load(v_base + cols[:, None] * sv_s + offs_d[None, :], mask=rows_ok, other=0.0)
        acc = acc * alpha[:, None] + tl.dot(p.to(vb.dtype), vb)
        m = m_new
    row = (bh * n_splits + sp) * G_PAD + offs_g
    tl.store(PO + row[:, None] * D + offs_d[None, :], acc)
    tl.store(PM + row, m)
    tl.store(PL + row, l_sum)


@triton.jit
def _merge_kernel(
    PO, PM, PL, POS, O,
    HKV, split_len, n_splits,
    so_b, so_h, so_g,
    D: tl.constexpr, G_PAD: tl.constexpr, BLOCK_S: tl.constexpr,
):  # fmt: skip
    # One program per query row (batch x KV head, row of the group), BLOCK_S splits a load: a
    # program per KV head walking its splits one at a time took 30 us a layer at 4K on the H200
    # (65 dependent loads in a row), 5x the split kernel's whole read of the cache.
    bh = tl.program_id(0).to(tl.int64)
    g = tl.program_id(1)
    b = bh // HKV
    h = bh % HKV
    pos = tl.load(POS)
    n_valid = tl.minimum((pos + split_len) // split_len, n_splits)  # splits holding s <= pos
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, D)
    m_run = tl.full([BLOCK_S], float("-inf"), tl.float32)
    for s0 in range(0, n_valid, BLOCK_S):  # pass 1: the largest running max of any split
        sp = s0 + offs_s
        row = (bh * n_splits + sp) * G_PAD + g
        m_run = tl.maximum(m_run, tl.load(PM + row, mask=sp < n_valid, other=float("-inf")))
    m = tl.max(m_run, 0)  # finite: every valid split holds at least one position
    l_run = tl.zeros([BLOCK_S], tl.float32)
    acc = tl.zeros([D], tl.float32)
    for s0 in range(0, n_valid, BLOCK_S):  # pass 2: the splits' sums and outputs, rescaled
        sp = s0 + offs_s
        ok = sp < n_valid
        row = (bh * n_splits + sp) * G_PAD + g
        c = tl.exp2(tl.load(PM + row, mask=ok, other=float("-inf")) - m)  # 0 past n_valid
        l_run += tl.load(PL + row, mask=ok, other=0.0) * c
        o = tl.load(PO + row[:, None] * D + offs_d[None, :], mask=ok[:, None], other=0.0)
        acc += tl.sum(o * c[:, None], 0)
    out = acc / tl.sum(l_run, 0)
    tl.store(O + b * so_b + h * so_h + g * so_g + offs_d, out.to(O.dtype.element_ty))


@lru_cache(maxsize=8)
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def split_length(S: int, rows: int, device: torch.device, cfg: DecodeAttnConfig) -> int:
    """Cache positions per program: enough programs for `programs_per_sm` on every SM (4 on the
    CPU interpreter, where programs run one after another), never below one block."""
    if cfg.split_len:
        if cfg.split_len % cfg.block_n:
            raise ValueError(
                f"split_len {cfg.split_len} must be a multiple of block_n {cfg.block_n}"
            )
        return cfg.split_len
    target = cfg.programs_per_sm * _sm_count(device.index or 0) if device.type == "cuda" else 4
    splits = max(1, min(triton.cdiv(S, cfg.block_n), triton.cdiv(target, rows)))
    return triton.cdiv(triton.cdiv(S, splits), cfg.block_n) * cfg.block_n


def decode_attention(q, k, v, pos, scale=None, config: DecodeAttnConfig | None = None):
    """q [B, Hkv, G, D] (any strides, last one 1), k and v [B, Hkv, S, D] (last stride 1),
    pos: int64 [1] device tensor. Returns o [B, Hkv, G, D] in q's dtype (see reference.py)."""
    check_shapes(q, k, v, pos)
    cfg = config or DEFAULT_CONFIG
    B, Hkv, G, D = q.shape
    S = k.shape[2]
    if D < 16 or D & (D - 1):
        raise ValueError(f"head dim must be a power of two >= 16, got {D}")
    if cfg.merge_block < 1 or cfg.merge_block & (cfg.merge_block - 1):
        raise ValueError(f"merge_block must be a power of two, got {cfg.merge_block}")
    if q.stride(-1) != 1 or k.stride(-1) != 1 or v.stride(-1) != 1:
        raise ValueError("q, k and v need a contiguous last (head) dimension")
    g_pad = max(16, triton.next_power_of_2(G))
    split_len = split_length(S, B * Hkv, q.device, cfg)
    n_splits = triton.cdiv(S, split_len)
    part_o = torch.empty(B * Hkv, n_splits, g_pad, D, dtype=torch.float32, device=q.device)
    part_m = torch.empty(B * Hkv, n_splits, g_pad, dtype=torch.float32, device=q.device)
    part_l = torch.empty_like(part_m)
    o = torch.empty(B, Hkv, G, D, dtype=q.dtype, device=q.device)
    scale = D**-0.5 if scale is None else scale
    _split_kernel[(B * Hkv, n_splits)](
        q, k, v, pos, part_o, part_m, part_l,
        G, Hkv, split_len, n_splits, scale * LOG2E,
        q.stride(0), q.stride(1), q.stride(2),
        k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2),
        D=D, G_PAD=g_pad, BLOCK_N=cfg.block_n, num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip
    _merge_kernel[(B * Hkv, G)](
        part_o, part_m, part_l, pos, o,
        Hkv, split_len, n_splits,
        o.stride(0), o.stride(1), o.stride(2),
        D=D, G_PAD=g_pad, BLOCK_S=cfg.merge_block, num_warps=4,
    )  # fmt: skip
    return o
