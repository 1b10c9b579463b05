"""Check and time the causal conv1d (prefill and decode step) on a CUDA GPU.

    python -m kernels.conv1d.bench_gpu --out results/bench_conv   (on the device: --out $OUT)

Shapes follow ../shared/PEERS.md: batch 1, 4096 channels, width 4, bf16, with bias and SiLU.
Times are medians of triton.testing.do_bench; achieved bandwidth counts one read of x and one
write of y (the floor), against the measured 3.0 TB/s copy ceiling. Each timed output is first
checked against the fp32 reference. Writes OUT/conv.jsonl and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
from triton.testing import do_bench

from kernels.conv1d import ConvConfig, causal_conv1d, causal_conv1d_step
from kernels.conv1d.reference import causal_conv1d_ref

PEER_MS = {4096: 0.030, 16384: 0.101, 65536: 0.388, 262144: 1.53}  # causal-conv1d 1.7.0 CUDA
HBM_PEAK = 3.0e12


def ms(fn, rep=200):
    return do_bench(fn, warmup=25, rep=rep, return_mode="median")


def emit(log, row):
    log.write(json.dumps(row) + "\n")
    log.flush()
    print(json.dumps(row), flush=True)


def rel_err(y, ref):
    y = y.float()
    return float("inf") if not torch.isfinite(y).all() else ((y - ref).norm() / ref.norm()).item()


def bench_prefill(log, table, ch=4096, width=4):
    for seqlen in (4096, 16384, 65536, 262144):
        g = torch.Generator(device="cuda").manual_seed(seqlen)
        x = torch.randn(1, seqlen, ch, device="cuda", generator=g).to(torch.bfloat16)
        w = torch.randn(ch, width, device="cuda", generator=g) * 0.5
        b = torch.randn(ch, device="cuda", generator=g)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        y = causal_conv1d(x, w, b, "silu")
        torch.cuda.synchronize()
        cold = time.perf_counter() - t0
        head = slice(0, min(seqlen, 8192))
        err = rel_err(y[:, head], causal_conv1d_ref(x[:, head].float(), w, b, "silu"))
        row = {"op": "conv_fwd", "T": seqlen, "cold_s": round(cold, 2), "rel_err": err}
        if err > 1e-2:
            emit(log, {**row, "status": "FAIL"})
            continue
        row["ms_autotuned"] = ms(lambda x=x, w=w, b=b: causal_conv1d(x, w, b, "silu"))
        sweep = {}
        for bt, bc, nw in ((32, 128, 4), (64, 128, 8), (16, 256, 4), (32, 256, 8), (16, 512, 8)):
            cfg = ConvConfig(block_t=bt, block_c=bc, num_warps=nw)
            run = lambda x=x, w=w, b=b, cfg=cfg: causal_conv1d(x, w, b, "silu", config=cfg)
            sweep[f"{bt}x{bc}w{nw}"] = ms(run, 60)
        row["sweep_ms"] = sweep
        nbytes = 2 * x.numel() * x.element_size()
        row["GBps"] = nbytes / (row["ms_autotuned"] * 1e-3) / 1e9
        row["peer_ms"] = PEER_MS[seqlen]
        row["ratio_vs_peer"] = row["ms_autotuned"] / PEER_MS[seqlen]
        emit(log, row)
        best = min(sweep, key=sweep.get)
        table.append(
            f"conv fwd T={seqlen:>7}: {row['ms_autotuned']:.3f} ms "
            f"({row['GBps']:.0f} GB/s; best fixed {best} {sweep[best]:.3f}); "
            f"causal-conv1d {PEER_MS[seqlen]} -> {row['ratio_vs_peer']:.2f}x; "
            f"cold {cold:.1f}s err {err:.1e}"
        )


def bench_step(log, table, ch=4096, width=4, rotate=16):
    for bsz in (64, 256, 1024):
        x = torch.randn(bsz, ch, device="cuda").to(torch.bfloat16)
        w = torch.randn(ch, width, device="cuda")
        b = torch.randn(ch, device="cuda")
        states = [
            torch.randn(bsz, ch, width - 1, device="cuda").to(torch.bfloat16) for _ in range(rotate)
        ]
        for s in states:
            causal_conv1d_step(s, x, w, b, "silu")
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for s in states:
                causal_conv1d_step(s, x, w, b, "silu")
        t = ms(graph.replay) / rotate
        state_bytes = 2 * states[0].numel() * 2
        io_bytes = state_bytes + 2 * x.numel() * 2
        row = {
            "op": "conv_step",
            "B": bsz,
            "us": t * 1e3,
            "state_GBps": state_bytes / (t * 1e-3) / 1e9,
            "all_GBps": io_bytes / (t * 1e-3) / 1e9,
        }
        emit(log, row)
        table.append(
            f"conv step B={bsz:>4}: {row['us']:.1f} us, state r+w "
            f"{row['state_GBps']:.0f} GB/s, with x and y {row['all_GBps']:.0f} GB/s"
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "results/bench_conv"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    table = [torch.cuda.get_device_properties(0).name]
    with open(os.path.join(args.out, "conv.jsonl"), "w") as log:
        bench_prefill(log, table)
        bench_step(log, table)
    print("\n".join(table))


if __name__ == "__main__":
    main()
