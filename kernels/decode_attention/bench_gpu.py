"""Check and time the attention decode step on a CUDA GPU, beside the other ways to write it.

    python -m kernels.decode_attention.bench_gpu --out $OUT

Shape: the 1.3B Transformer's (4 KV heads x 4 query heads x 128, bf16), the cache full (pos =
S - 1), batch 1 and 8. Every way is timed inside a CUDA graph (as the decode suite runs it) with
triton.testing.do_bench_cudagraph, median; bandwidth counts one read of K and V up to pos (the
floor). Ways: this kernel; "matmul" and "split_s", the model's torch paths; SDPA FLASH and cuDNN
over the valid prefix (a host-side slice, so not graph-safe in a model: the floor PyTorch offers).
Each output is first checked against the fp32 reference. Writes OUT/decode_attention.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel
from triton.testing import do_bench_cudagraph

from kernels.decode_attention import DecodeAttnConfig, decode_attention, decode_attention_ref
from models.attention import masked_decode


def sdpa_way(backend):
    def run(q, k, v, pos):
        n = int(pos.item()) + 1  # outside the timed graph: slicing needs the host value
        B, Hkv, G, D = q.shape
        kk = k[:, :, :n].repeat_interleave(G, dim=1)
        vv = v[:, :, :n].repeat_interleave(G, dim=1)
        qq = q.reshape(B, Hkv * G, 1, D)

        def call():
            with sdpa_kernel(backend):
                return F.scaled_dot_product_attention(qq, kk, vv).view(B, Hkv, G, D)

        return call

    return run


def randn(seed, *shapes):
    g = torch.Generator(device="cuda").manual_seed(seed)
    return [torch.randn(*s, device="cuda", generator=g).to(torch.bfloat16) for s in shapes]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="results/bench_decode_attention")
    ap.add_argument("--lengths", default="4096,16384,65536,262144,1048576")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    log = open(os.path.join(args.out, "decode_attention.jsonl"), "w")
    ways = {
        "triton": lambda q, k, v, p: lambda: decode_attention(q, k, v, p),
        "triton_bn32": lambda q, k, v, p: (
            lambda: decode_attention(q, k, v, p, config=DecodeAttnConfig(block_n=32))
        ),
        "triton_8perSM": lambda q, k, v, p: (
            lambda: decode_attention(q, k, v, p, config=DecodeAttnConfig(programs_per_sm=8))
        ),
        "matmul": lambda q, k, v, p: lambda: masked_decode(q, k, v, p),
        "split_s": lambda q, k, v, p: lambda: masked_decode(q, k, v, p, split=True),
        "sdpa_flash_prefix": sdpa_way(SDPBackend.FLASH_ATTENTION),
        "sdpa_cudnn_prefix": sdpa_way(SDPBackend.CUDNN_ATTENTION),
    }
    for B in (1, 8):
        for S in (int(s) for s in args.lengths.split(",")):
            if B * S > 8 * 262144:
                continue
            q, k, v = randn(S, (B, 4, 4, 128), (B, 4, S, 128), (B, 4, S, 128))
            pos = torch.tensor([S - 1], device="cuda")
            ref = decode_attention_ref(q, k, v, pos).float()
            kv_bytes = 2 * k.numel() * k.element_size()
            for name, make in ways.items():
                row = {"way": name, "batch": B, "cache": S}
                try:
                    fn = make(q, k, v, pos)
                    out = fn().float()
                    row["rel_err"] = ((out - ref).norm() / ref.norm()).item()
                    if row["rel_err"] > 1e-2:
                        row["error"] = "wrong output: not timed"
                    else:
                        t = do_bench_cudagraph(fn, rep=100, return_mode="median")
                        row.update(ms=round(t, 4), gbps=round(kv_bytes / t / 1e6, 1))
                except Exception as exc:  # noqa: BLE001 - one way failing must not end the bench
                    row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.write(json.dumps(row) + "\n")
                log.flush()
                print(json.dumps(row), flush=True)
            del q, k, v
            torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
