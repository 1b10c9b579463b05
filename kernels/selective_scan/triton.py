"""Mamba-1 selective scan forward in Triton: launch configuration and launcher (the kernels are
in scan_kernels.py).

Layout [B, T, Dc] (channels contiguous). A thread owns a channel d (or two) of one batch row and
keeps its N state values in registers, stepping through time sequentially: the recurrence is a
chain of one FMA per state per step, so the work per step is throughput-bound (16 exp2 + ~4 FLOP
per state) rather than latency-bound, provided enough threads run. A batch-1 prefill has only Dc
threads of work, so the sequence is cut into chunks that run in parallel:

  pass 1  _scan_chunk_kernel (STORE_Y=False): each chunk from a zero state -> its end state and
          the sum of its step sizes                            [B, nc, Dc, N], [B, nc, Dc]
  pass 2  _state_passing_kernel: walk the chunks in order, h_{c+1} = exp(A sum dt_c) h_c + s_c,
          overwriting the end states with the true start states of each chunk
  pass 3  _scan_chunk_kernel (STORE_Y=True): each chunk again from its true start state -> y

Passes 1 and 3 repeat the recurrence (2x the FLOPs of one pass) in exchange for nc-fold
parallelism; with enough batch x channels to fill the GPU a single pass 3 runs (nc = 1).
All offsets are int64 (program ids cast before any address math; pointers advance by strides),
so sequences past 2^31 elements are addressed correctly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton

from kernels.selective_scan.scan_kernels import (
    AUTOTUNE_CONFIGS,
    _scan_chunk_autotuned,
    _scan_chunk_kernel,
    _state_passing_kernel,
    prune_scan_configs,
)

__all__ = [
    "AUTOTUNE_CONFIGS",
    "DEFAULT_CONFIG",
    "ScanConfig",
    "pick_chunk_size",
    "prune_scan_configs",
    "selective_scan_fwd",
]


@dataclass(frozen=True)
class ScanConfig:
    """Launch parameters of the forward scan. Passing one fixes them (no autotuning).

    block_d: channels per program; block_d / (32 * num_warps) channels per thread (64 on one
        warp, 2 a thread, measured fastest on an H100).
    chunk_size: time steps per chunk; None picks enough chunks to keep ~`lanes` recurrences
        (batch row x channel x chunk) in flight (None: 1024 per multiprocessor, the best
        measured on an H100 with block_d=64, 1 warp; 1 on CPU, i.e. a single chunk).
    prefetch: load step t+1's inputs before step t's math (hides load latency).
    bwd_segment: time steps per autograd segment of the backward (None: ~1 GiB per
        [B, S, Dc, N] fp32 tensor, see autograd.py).
    backward: "recompute" (torch recomputation under autograd, autograd.py) or "triton" (one
        kernel, backward.py; where no channel block fits in a group of B/C, recompute).
    """

    block_d: int = 64
    num_warps: int = 1
    chunk_size: int | None = None
    lanes: int | None = None
    prefetch: bool = True
    bwd_segment: int | None = None
    backward: str = "triton"  # 6x faster than "recompute" and 1/5 the memory (NOTES.md, H200)

    def __post_init__(self):
        if self.backward not in ("recompute", "triton"):
            raise ValueError(
                f"ScanConfig.backward: {self.backward!r}; valid choices: recompute, triton"
            )


DEFAULT_CONFIG = ScanConfig()


def default_lanes(device: torch.device) -> int:
    """Recurrences in flight that keep the device busy: 1024 per SM on CUDA (block_d=64 with one
    warp gives 2 channels a thread and ~16 warps an SM); 1 elsewhere (the interpreter runs
    programs one after another, so splitting the sequence only adds work)."""
    if device.type != "cuda":
        return 1
    return torch.cuda.get_device_properties(device).multi_processor_count * 1024


def pick_chunk_size(bsz: int, seqlen: int, dc: int, lanes: int) -> int:
    """Chunk length giving about `lanes` threads of work (one per batch row x channel x chunk).
    Splitting doubles the work (passes 1 and 3), so it only pays when one pass would keep
    fewer than half the lanes busy. Never below 64 steps, so the chunk states stay small."""
    rows = max(1, bsz * dc)
    if 2 * rows >= lanes:
        return seqlen
    n_chunks = -(-lanes // rows)
    chunk = max(64, -(-seqlen // n_chunks))
    return -(-chunk // 16) * 16


def _grouped(m: torch.Tensor) -> torch.Tensor:
    m = m.unsqueeze(2) if m.dim() == 3 else m  # [B, T, G, N]
    return m if m.stride(-1) == 1 else m.contiguous()


def _last_contig(t: torch.Tensor | None) -> torch.Tensor | None:
    return t if t is None or t.stride(-1) == 1 else t.contiguous()


def check_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state):
    bsz, seqlen, dc = u.shape
    if delta.shape != u.shape or (z is not None and z.shape != u.shape):
        raise ValueError(f"u {tuple(u.shape)}, delta and z must all be [B, T, Dc]")
    if A.dim() != 2 or A.shape[0] != dc:
        raise ValueError(f"A must be [Dc={dc}, N], got {tuple(A.shape)}")
    n = A.shape[1]
    for name, m in (("B", B), ("C", C)):
        if m.shape[:2] != (bsz, seqlen) or m.shape[-1] != n or m.dim() not in (3, 4):
            raise ValueError(f"{name} must be [B, T, N] or [B, T, G, N], got {tuple(m.shape)}")
        if m.dim() == 4 and dc % m.shape[2]:
            raise ValueError(f"Dc={dc} is not divisible by the {m.shape[2]} groups of {name}")
    if B.dim() != C.dim() or (B.dim() == 4 and B.shape[2] != C.shape[2]):
        raise ValueError("B and C must have the same number of groups")
    for name, v in (("D", D), ("delta_bias", delta_bias)):
        if v is not None and v.shape != (dc,):
            raise ValueError(f"{name} must be [Dc={dc}], got {tuple(v.shape)}")
    if initial_state is not None and initial_state.shape != (bsz, dc, n):
        raise ValueError(f"initial_state must be [B, Dc, N], got {tuple(initial_state.shape)}")


def _launch_chunk(config, args, kwargs, grid_rows, n_chunks):
    """Run the chunk kernel with `config`'s block, or autotuned when config is None."""
    if config is None:
        grid = lambda meta: (grid_rows(meta["BLOCK_D"]), n_chunks)
        _scan_chunk_autotuned[grid](*args, **kwargs)
    else:
        grid = (grid_rows(config.block_d), n_chunks)
        _scan_chunk_kernel[grid](
            *args,
            **kwargs,
            BLOCK_D=config.block_d,
            PREFETCH=config.prefetch,
            num_warps=config.num_warps,
            num_stages=1,
        )


def selective_scan_fwd(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    return_last_state=False,
    initial_state=None,
    config: ScanConfig | None = None,
    chunk_starts: bool = False,
):
    """Forward scan. Shapes as `selective_scan_ref`. Returns (y [B,T,Dc], last [B,Dc,N] fp32 or
    None). With chunk_starts=True it returns instead (None, starts [B, nc, Dc, N] fp32, chunk):
    the state before every chunk, which the backward uses as segment boundaries.
    config None: autotuned block on CUDA, DEFAULT_CONFIG on CPU (Triton's interpreter)."""
    check_shapes(u, delta, A, B, C, D, z, delta_bias, initial_state)
    if config is None and u.device.type != "cuda":
        config = DEFAULT_CONFIG
    cfg = config or DEFAULT_CONFIG
    u, delta, z = _last_contig(u), _last_contig(delta), _last_contig(z)
    bg, cg = _grouped(B), _grouped(C)
    A = A.contiguous()
    bsz, seqlen, dc = u.shape
    n = A.shape[1]
    n_pad = triton.next_power_of_2(n)
    dpg = dc // bg.shape[2]
    lanes = cfg.lanes or default_lanes(u.device)
    chunk = cfg.chunk_size or pick_chunk_size(bsz, seqlen, dc, lanes)
    chunk = max(1, min(chunk, seqlen))
    n_chunks = -(-seqlen // chunk)
    f32 = dict(device=u.device, dtype=torch.float32)
    h0 = None if initial_state is None else initial_state.float().contiguous()
    dummy = u  # stands in for absent optional pointers; never dereferenced (flags are False)
    rows = lambda block_d: bsz * triton.cdiv(dc, block_d)
    strides = (
        u.stride(0),
        u.stride(1),
        delta.stride(0),
        delta.stride(1),
        bg.stride(0),
        bg.stride(1),
        bg.stride(2),
        cg.stride(0),
        cg.stride(1),
        cg.stride(2),
    )
    flags = dict(
        N=n,
        N_PAD=n_pad,
        HAS_D=D is not None,
        HAS_Z=z is not None,
        HAS_DT_BIAS=delta_bias is not None,
        DT_SOFTPLUS=bool(delta_softplus),
    )
    dtb = delta_bias.float().contiguous() if delta_bias is not None else dummy
    dsk = D.float().contiguous() if D is not None else dummy

    largest_block = (
        cfg.block_d if config is not None else max(c.kwargs["BLOCK_D"] for c in AUTOTUNE_CONFIGS)
    )
    flags["ONE_GROUP"] = bg.shape[2] == 1 or dpg % largest_block == 0
    a_t = A.t().contiguous()  # [N, Dc]: see _scan_chunk_kernel for why transposed
    if h0 is not None:
        h0 = h0.transpose(1, 2).contiguous()  # [B, N, Dc]

    starts = None
    if n_chunks > 1 or chunk_starts:
        starts = torch.empty(bsz, n_chunks, n, dc, **f32)
        dtsum = torch.empty(bsz, n_chunks, dc, **f32)
        args = (
            u,
            delta,
            a_t,
            bg,
            cg,
            dummy,
            dummy,
            dtb,
            dummy,
            dummy,
            starts,
            dtsum,
            seqlen,
            dc,
            dpg,
            chunk,
            n_chunks,
            *strides,
            0,
            0,
            0,
            0,
            0,
            0,
            starts.stride(0),
            starts.stride(1),
            dtsum.stride(0),
            dtsum.stride(1),
        )
        kw = dict(
            flags,
            HAS_D=False,
            HAS_Z=False,
            HAS_H0=False,
            STORE_Y=False,
            STORE_HEND=True,
            HEND_LAST_ONLY=False,
            STORE_DTSUM=True,
        )
        _launch_chunk(config, args, kw, rows, n_chunks)
        bd = 32
        _state_passing_kernel[(bsz, triton.cdiv(dc, bd))](
            starts,
            dtsum,
            a_t,
            h0 if h0 is not None else dummy,
            n_chunks,
            dc,
            starts.stride(0),
            starts.stride(1),
            dtsum.stride(0),
            dtsum.stride(1),
            h0.stride(0) if h0 is not None else 0,
            N=n,
            N_PAD=n_pad,
            BLOCK_D=bd,
            HAS_H0=h0 is not None,
            num_warps=4,
        )
        if chunk_starts:
            return None, starts.transpose(2, 3), chunk

    y = torch.empty_like(u)
    last = torch.empty(bsz, n, dc, **f32) if return_last_state else None
    if starts is not None:
        src, src_b, src_c = starts, starts.stride(0), starts.stride(1)
    elif h0 is not None:
        src, src_b, src_c = h0, h0.stride(0), 0
    else:
        src, src_b, src_c = dummy, 0, 0
    args = (
        u,
        delta,
        a_t,
        bg,
        cg,
        dsk,
        z if z is not None else dummy,
        dtb,
        src,
        y,
        last if last is not None else dummy,
        dummy,
        seqlen,
        dc,
        dpg,
        chunk,
        n_chunks,
        *strides,
        z.stride(0) if z is not None else 0,
        z.stride(1) if z is not None else 0,
        y.stride(0),
        y.stride(1),
        src_b,
        src_c,
        last.stride(0) if last is not None else 0,
        0,
        0,
        0,
    )
    kw = dict(
        flags,
        HAS_H0=src is not dummy,
        STORE_Y=True,
        STORE_HEND=last is not None,
        HEND_LAST_ONLY=True,
        STORE_DTSUM=False,
    )
    _launch_chunk(config, args, kw, rows, n_chunks)
    return y, None if last is None else last.transpose(1, 2).contiguous()
