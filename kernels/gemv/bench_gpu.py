"""Time the decode GEMV against F.linear (cuBLAS) at the 1.3B models' one-row shapes.

    python -m kernels.gemv.bench_gpu --out $OUT

Each weight [N, K] bf16, one row of activations; both ways checked against the fp32 reference,
then timed inside a CUDA graph (triton.testing.do_bench_cudagraph, median, as the decode step
runs them); bandwidth counts one read of the weight. Last, the MLP's gate and up as one SwiGLU
kernel against cuBLAS's two GEMVs, SiLU and product. Writes OUT/gemv.jsonl.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F
from triton.testing import do_bench_cudagraph

from kernels.gemv import gemv, gemv_ref, gemv_swiglu, gemv_swiglu_ref

# (name, N, K): the 1.3B presets' projections as the step calls them (models/*.py)
SHAPES = [
    ("mamba2 in_proj", 8512, 2048),
    ("mamba2 out_proj", 2048, 4096),
    ("attention wqkv", 3072, 2048),
    ("attention wo", 2048, 2048),
    ("mlp gate / up", 5632, 2048),
    ("mlp down", 2048, 5632),
    ("mamba1 in_proj", 8192, 2048),
    ("mamba1 x_proj", 160, 4096),
    ("lm_head", 50280, 2048),
]


def timed(ways, ref: torch.Tensor, weight_mb: float) -> dict:
    """Each way checked against the fp32 reference, then its median in a CUDA graph."""
    out = {}
    for way, fn in ways:
        err = ((fn().float() - ref).norm() / ref.norm()).item()
        us = do_bench_cudagraph(fn, rep=50) * 1e3
        out[way] = {"us": us, "tb_s": weight_mb / us, "rel_err": err}  # MB/us = TB/s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("gemv_out"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with open(args.out / "gemv.jsonl", "a") as f:
        for name, N, K in SHAPES:
            x = torch.randn(1, K, device="cuda", dtype=torch.bfloat16)
            w = (torch.randn(N, K, device="cuda") * K**-0.5).to(torch.bfloat16)
            rec = {"shape": name, "N": N, "K": K, "weight_mb": w.numel() * 2 / 1e6}
            ways = (
                ("triton", lambda x=x, w=w: gemv(x, w)),
                ("cublas", lambda x=x, w=w: F.linear(x, w)),
            )
            rec.update(timed(ways, gemv_ref(x, w).float(), rec["weight_mb"]))
            f.write(json.dumps(rec) + "\n")
            f.flush()  # a cut call keeps the shapes already timed
            report(name, N, K, rec)
        # the MLP's first half: one SwiGLU kernel against two cuBLAS GEMVs, SiLU and the product
        x = torch.randn(1, 2048, device="cuda", dtype=torch.bfloat16)
        wg, wu = ((torch.randn(5632, 2048, device="cuda") * 2048**-0.5).to(torch.bfloat16)
                  for _ in range(2))  # fmt: skip
        rec = {"shape": "mlp swiglu", "N": 5632, "K": 2048, "weight_mb": 2 * wg.numel() * 2 / 1e6}
        ways = (
            ("triton", lambda: gemv_swiglu(x, wg, wu)),
            ("cublas", lambda: F.silu(F.linear(x, wg)) * F.linear(x, wu)),
        )
        rec.update(timed(ways, gemv_swiglu_ref(x, wg, wu).float(), rec["weight_mb"]))
        f.write(json.dumps(rec) + "\n")
        report("mlp swiglu", 5632, 2048, rec)


def report(name: str, N: int, K: int, rec: dict) -> None:
    t, c = rec["triton"], rec["cublas"]
    print(
        f"{name:>16} {N:>6}x{K:<5} triton {t['us']:7.2f} us {t['tb_s']:5.2f} TB/s | "
        f"cublas {c['us']:7.2f} us {c['tb_s']:5.2f} TB/s",
        flush=True,
    )


if __name__ == "__main__":
    main()
