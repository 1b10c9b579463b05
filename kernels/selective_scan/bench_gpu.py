"""Check and time the selective scan (forward, decode step, training step) on a CUDA GPU.

    python -m kernels.selective_scan.bench_gpu --out results/bench_scan   (device: --out $OUT)

Shapes follow ../shared/PEERS.md (batch 1, d_inner 4096, d_state 16, bf16; Mamba's options:
D, z, delta_bias, softplus). Times are medians of triton.testing.do_bench; the first call of
each shape (JIT + autotune) is reported separately as cold start. Every timed output is first
checked against the fp32 chunked reference on sampled channels; a failing check prints FAIL
and no speed. Writes one JSON line per measurement to OUT/scan.jsonl and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch
import triton
from triton.testing import do_bench

from kernels.selective_scan import ScanConfig, selective_scan, selective_scan_step
from kernels.selective_scan.chunked import selective_scan_chunked

# mamba-ssm 2.3.2 CUDA selective scan on the same H100 (../shared/PEERS.md), ms
PEER_MS = {4096: 0.289, 16384: 1.45, 65536: 5.68, 262144: 22.7}
HBM_PEAK = 3.0e12  # B/s, measured device-to-device copy (PEERS.md)


def inputs(bsz, seqlen, dc=4096, n=16, z=True, seed=0):
    g = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *s: torch.randn(*s, device="cuda", generator=g)
    bf = torch.bfloat16
    return {
        "u": r(bsz, seqlen, dc).to(bf),
        "delta": (r(bsz, seqlen, dc) - 2).to(bf),
        "A": -torch.rand(dc, n, device="cuda", generator=g) * 4 - 0.1,
        "B": r(bsz, seqlen, n).to(bf),
        "C": r(bsz, seqlen, n).to(bf),
        "D": r(dc),
        "z": r(bsz, seqlen, dc).to(bf) if z else None,
        "delta_bias": 0.5 * r(dc),
        "delta_softplus": True,
    }


def check(x, y, n_sample=16):
    """Relative error of y against the fp32 chunked reference on sampled channels."""
    dc = x["u"].shape[-1]
    sel = torch.linspace(0, dc - 1, n_sample, device="cuda").long()
    sub = {}
    for k, v in x.items():
        if k in ("u", "delta", "z") and v is not None:
            v = v[..., sel]
        elif k in ("A", "D", "delta_bias"):
            v = v[sel]
        sub[k] = v.float() if torch.is_tensor(v) else v
    with torch.no_grad():
        ref = selective_scan_chunked(**sub, chunk_size=1024)
    out = y[..., sel].float()
    if not torch.isfinite(out).all():
        return float("inf")
    return ((out - ref).norm() / ref.norm()).item()


def ms(fn, rep=200):
    return do_bench(fn, warmup=25, rep=rep, return_mode="median")


def emit(log, row):
    log.write(json.dumps(row) + "\n")
    log.flush()
    print(json.dumps(row), flush=True)


def bench_forward(log, table):
    for seqlen in (4096, 16384, 65536, 262144, 1 << 20):
        x = inputs(1, seqlen)
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        y = selective_scan(**x)  # autotuned path, cold
        torch.cuda.synchronize()
        cold = time.perf_counter() - t0
        err = check(x, y)
        row = {"op": "scan_fwd", "T": seqlen, "cold_s": round(cold, 2), "rel_err": err}
        if err > 1e-2:
            row["status"] = "FAIL"
            emit(log, row)
            continue
        row["ms_autotuned"] = ms(lambda x=x: selective_scan(**x))
        fixed = ScanConfig()
        row["ms_fixed_default"] = ms(lambda x=x, c=fixed: selective_scan(**x, config=c))
        x_noz = {**x, "z": None}
        row["ms_no_z"] = ms(lambda x=x_noz, c=fixed: selective_scan(**x, config=c))
        peer = PEER_MS.get(seqlen)
        row["peer_ms"] = peer
        row["ratio_vs_peer"] = row["ms_autotuned"] / peer if peer else None
        emit(log, row)
        vs = f"mamba-ssm {peer} -> {row['ratio_vs_peer']:.2f}x" if peer else "no peer number"
        table.append(
            f"scan fwd T={seqlen:>7}: {row['ms_autotuned']:.3f} ms (fixed "
            f"{row['ms_fixed_default']:.3f}, no z {row['ms_no_z']:.3f}; {vs}) "
            f"cold {cold:.1f}s err {err:.1e}"
        )
        del x, x_noz, y


def sweep(log, table, seqlen=16384):
    x = inputs(1, seqlen, seed=1)
    best = None
    for block_d, warps in ((64, 1), (32, 1), (128, 2)):
        for prefetch in (True, False):
            for chunk in (256, 512, 1024):
                cfg = ScanConfig(
                    block_d=block_d, num_warps=warps, chunk_size=chunk, prefetch=prefetch
                )
                err = check(x, selective_scan(**x, config=cfg), n_sample=8)
                run = lambda cfg=cfg: selective_scan(**x, config=cfg)
                t = ms(run, rep=60) if err < 1e-2 else None
                emit(
                    log,
                    {
                        "op": "scan_sweep",
                        "T": seqlen,
                        "block_d": block_d,
                        "warps": warps,
                        "prefetch": prefetch,
                        "chunk": chunk,
                        "ms": t,
                        "rel_err": err,
                    },
                )
                if t is not None and (best is None or t < best[0]):
                    best = (t, block_d, warps, prefetch, chunk)
    table.append(
        f"sweep T={seqlen}: best {best[0]:.3f} ms at block_d={best[1]} "
        f"warps={best[2]} prefetch={best[3]} chunk={best[4]}"
    )


def bench_step(log, table, dc=4096, n=16, rotate=16):
    for bsz in (64, 256):
        x = inputs(bsz, 1, dc, n, seed=2)
        one = {k: (v[:, 0] if k in ("u", "delta", "z", "B", "C") else v) for k, v in x.items()}
        states = [torch.randn(bsz, dc, n, device="cuda") for _ in range(rotate)]
        for s in states:  # warm up and autotune outside the graph
            selective_scan_step(s, **one)
        torch.cuda.synchronize()
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            for s in states:  # one graph replay = `rotate` steps on different states (> L2)
                selective_scan_step(s, **one)
        t = ms(graph.replay) / rotate
        state_bytes = 2 * bsz * dc * n * 4
        row = {
            "op": "scan_step",
            "B": bsz,
            "us": t * 1e3,
            "state_GBps": state_bytes / (t * 1e-3) / 1e9,
            "frac_of_3TBps": state_bytes / (t * 1e-3) / HBM_PEAK,
        }
        emit(log, row)
        table.append(
            f"scan step B={bsz:>3}: {row['us']:.1f} us, state r+w "
            f"{row['state_GBps']:.0f} GB/s = {100 * row['frac_of_3TBps']:.0f}% of 3 TB/s"
        )


def bench_train(log, table, bsz=4, seqlen=2048, dc=1536, n=16):
    x = inputs(bsz, seqlen, dc, n, seed=3)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias"]
    leaves = {k: x[k].detach().clone().requires_grad_() for k in names}
    dy = torch.randn(bsz, seqlen, dc, device="cuda", dtype=torch.bfloat16)

    def triton_step():
        selective_scan(**{**x, **leaves}, config=ScanConfig(backward="recompute")).backward(dy)

    def triton_bwd_step():
        selective_scan(**{**x, **leaves}, config=ScanConfig(backward="triton")).backward(dy)

    def torch_step():
        selective_scan_chunked(**{**x, **leaves}).backward(dy)

    for name, fn in (
        ("triton_fwd+torch_bwd", triton_step),
        ("triton_fwd+triton_bwd", triton_bwd_step),
        ("torch_chunked", torch_step),
    ):
        torch.cuda.reset_peak_memory_stats()
        t = ms(fn, rep=300)
        peak = torch.cuda.max_memory_allocated() / 2**30
        emit(
            log,
            {
                "op": "scan_train",
                "impl": name,
                "B": bsz,
                "T": seqlen,
                "Dc": dc,
                "ms": t,
                "peak_GiB": peak,
            },
        )
        table.append(
            f"train fwd+bwd B={bsz} T={seqlen} Dc={dc} {name}: {t:.1f} ms, peak {peak:.1f} GiB"
        )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.environ.get("OUT", "results/bench_scan"))
    ap.add_argument("--skip", default="", help="comma list of: fwd,sweep,step,train")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    skip = set(args.skip.split(","))
    props = torch.cuda.get_device_properties(0)
    table = [
        f"{props.name}, {props.multi_processor_count} SMs, torch {torch.__version__}, "
        f"triton {triton.__version__}"
    ]
    with open(os.path.join(args.out, "scan.jsonl"), "w") as log:
        for name, fn in (
            ("fwd", bench_forward),
            ("sweep", sweep),
            ("step", bench_step),
            ("train", bench_train),
        ):
            if name not in skip:
                fn(log, table)
    print("\n".join(table))


if __name__ == "__main__":
    main()
