"""Gradients of the selective scan: Triton forward; backward by the one Triton kernel of
backward.py (the default, `ScanConfig(backward="triton")`) or by recomputation in torch
(`backward="recompute"`, and where no channel block fits in a group of B/C), described here.

The recomputing backward cuts the sequence into segments, gets the state before every segment from
the Triton state passes (passes 1-2 of triton.py, no gradient), and walks the segments last to
first: each is recomputed with `selective_scan_chunked` under autograd from its known start state,
and `torch.autograd.grad` gives the input gradients of the segment plus the gradient of its start
state, which is the gradient flowing into the previous segment's end state. Memory is bounded by
the segment length, not by T. NOTES.md has both measured.
"""

from __future__ import annotations

import math

import torch

from kernels.selective_scan.backward import selective_scan_bwd, supported
from kernels.selective_scan.chunked import selective_scan_chunked
from kernels.selective_scan.triton import DEFAULT_CONFIG, ScanConfig, selective_scan_fwd

# Elements of one [B, S, Dc, N] fp32 tensor per backward segment (1 GiB); autograd keeps a few.
SEGMENT_ELEMENTS = 1 << 28


def segment_length(bsz: int, seqlen: int, dc: int, n: int, config: ScanConfig | None) -> int:
    if config is not None and config.bwd_segment:
        return min(config.bwd_segment, seqlen)
    return max(64, min(seqlen, SEGMENT_ELEMENTS // max(1, bsz * dc * n)))


class SelectiveScanFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u, delta, A, B, C, D, z, delta_bias, initial_state, softplus, config):
        y, last = selective_scan_fwd(
            u, delta, A, B, C, D, z, delta_bias, softplus, True, initial_state, config
        )
        ctx.save_for_backward(u, delta, A, B, C, D, z, delta_bias, initial_state)
        ctx.softplus, ctx.config = softplus, config
        return y, last

    @staticmethod
    def backward(ctx, dy, dlast):
        u, delta, A, B, C, D, z, delta_bias, h0 = ctx.saved_tensors
        bsz, seqlen, dc = u.shape
        n = A.shape[1]
        groups = B.shape[2] if B.dim() == 4 else 1
        way = (ctx.config or DEFAULT_CONFIG).backward  # no config: the default's backward
        if way == "triton" and supported(dc, groups):
            grads = selective_scan_bwd(
                u, delta, A, B, C, D, z, delta_bias, ctx.softplus, h0, dy, dlast
            )
            needs = ctx.needs_input_grad
            return (*(g if needs[i] else None for i, g in enumerate(grads)), None, None)
        seg = segment_length(bsz, seqlen, dc, n, ctx.config)
        n_seg = -(-seqlen // seg)
        if n_seg > 1:
            _, starts, _ = selective_scan_fwd(
                u,
                delta,
                A,
                B,
                C,
                None,
                None,
                delta_bias,
                ctx.softplus,
                False,
                h0,
                ScanConfig(chunk_size=seg)
                if ctx.config is None
                else ScanConfig(**{**ctx.config.__dict__, "chunk_size": seg}),
                chunk_starts=True,
            )
        needs = ctx.needs_input_grad
        # name -> (position in forward's inputs, tensor); per-token ones get sliced per segment
        per_token = {"u": (0, u), "delta": (1, delta), "B": (3, B), "C": (4, C), "z": (6, z)}
        shared = {"A": (2, A), "D": (5, D), "delta_bias": (7, delta_bias)}
        grads = {k: torch.zeros_like(t) for k, (i, t) in per_token.items() if needs[i]}
        shared_grads: dict[str, torch.Tensor] = {}
        carry = dlast  # gradient flowing into the end state of the segment being processed
        chunk = max(8, math.isqrt(seg) + 1)
        for s in reversed(range(n_seg)):
            sl = slice(s * seg, min(seqlen, (s + 1) * seg))
            start = starts[:, s] if n_seg > 1 else (None if h0 is None else h0.float())
            with torch.enable_grad():
                leaf = {
                    k: t[:, sl].detach().requires_grad_(needs[i])
                    for k, (i, t) in per_token.items()
                    if t is not None
                }
                leaf.update(
                    {
                        k: t.detach().requires_grad_(needs[i])
                        for k, (i, t) in shared.items()
                        if t is not None
                    }
                )
                if start is not None and (s > 0 or needs[8]):
                    start = leaf["start"] = start.detach().requires_grad_(True)
                y, h_end = selective_scan_chunked(
                    leaf["u"],
                    leaf["delta"],
                    leaf["A"],
                    leaf["B"],
                    leaf["C"],
                    leaf.get("D"),
                    leaf.get("z"),
                    leaf.get("delta_bias"),
                    ctx.softplus,
                    True,
                    start,
                    chunk,
                )
                outs, gouts = [y], [dy[:, sl]]
                if carry is not None:
                    outs.append(h_end)
                    gouts.append(carry)
                want = [k for k, v in leaf.items() if v.requires_grad]
                got = torch.autograd.grad(outs, [leaf[k] for k in want], gouts, allow_unused=True)
            carry = None
            for k, g in zip(want, got, strict=True):
                if g is None:
                    continue
                if k == "start":
                    carry = g
                elif k in grads:
                    grads[k][:, sl] = g
                else:
                    shared_grads[k] = g if k not in shared_grads else shared_grads[k] + g
        dh0 = None
        if needs[8]:
            dh0 = torch.zeros_like(h0) if carry is None else carry.to(h0.dtype)
        return (
            grads.get("u"),
            grads.get("delta"),
            shared_grads.get("A"),
            grads.get("B"),
            grads.get("C"),
            shared_grads.get("D"),
            grads.get("z"),
            shared_grads.get("delta_bias"),
            dh0,
            None,
            None,
        )
