"""GPU check and prefill speed of the native models against transformers (issue 3), in one go.

    PYTHONUNBUFFERED=1 python -m models.bench_gpu --out $OUT      # one H100, about 3 minutes

1. Checks (models/gpu_checks.py) at small shapes: the fast backends (FLASH attention, Triton
   SSD/conv/steps) against the plain-torch ones on the same weights; step-by-step decode against
   the forward; a CUDA-graph replay of `step` against the eager step. At the 1.3B shapes, in fp32
   with TF32 off: native Transformer against transformers' Llama, Triton Mamba-2 against the
   torch kernels; and how far bf16 alone moves each (the yardstick for bf16 differences).
2. Transformer 1.3B (PEERS.md's Llama shape) prefill, native vs transformers' LlamaForCausalLM
   with SDPA, the same weights, at 4K / 16K / 64K. Both models are resident, so each peak
   includes the other model's weights (`other_weights_gb`).
3. Mamba-2 1.3B prefill at 16K / 64K / 256K / 1M.
4. (--host) Host overhead of a short prefill: each 1.3B model's forward at 1K and 4K eagerly and
   replayed from a CUDA graph of the same call; the difference is what the host's launches cost
   (the harness's time to first token includes them, as an eager server's would).
bf16, batch 1, random token ids, CUDA-event timing (median of the reps after a warm-up; the
first call is timed on its own as the cold start), peak memory against the cost model's
prediction. Records go to <out>/bench.jsonl, the table to stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import traceback
from pathlib import Path

import torch

import kernels
import models
from models.gpu_checks import BF16, checks, checks_large, llama_pair, set_attention

REPS = {4096: 10, 16384: 5, 65536: 3, 262144: 2, 1048576: 1}


def timed(fn, reps: int):
    """-> (cold ms, [ms per rep]) with CUDA events; one warm-up call after the cold one."""
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    cold = (time.perf_counter() - t0) * 1e3
    if reps > 1:
        fn()
    torch.cuda.reset_peak_memory_stats()
    samples = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        samples.append(start.elapsed_time(end))
    return cold, samples


def _on_cudnn(call):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.CUDNN_ATTENTION):
        return call()


def bench_transformer(log, lengths, size="1.3b") -> None:
    cfg = models.config("transformer", size)
    hf, native = llama_pair(size, BF16, max_len=max(lengths))
    cost = cfg.cost()
    with torch.no_grad():
        for L in lengths:
            ids = torch.randint(0, cfg.vocab_size, (1, L), device="cuda")
            runs = {
                "hf_llama_sdpa": lambda ids=ids: hf(
                    input_ids=ids, use_cache=False, logits_to_keep=1
                ),
                # what the harness's prefill of model=hf calls (its cache kept, as a server
                # keeps it): the bare counterpart of `suite=... models=[hf]` (--llama-config)
                "hf_llama_sdpa_cache": lambda ids=ids: hf(
                    input_ids=ids, use_cache=True, logits_to_keep=1
                ),
                # the same with SDPA held to cuDNN, the native model's backend: what is left of
                # the gap is the model code, not the attention kernel
                "hf_llama_sdpa_cudnn": lambda ids=ids: _on_cudnn(
                    lambda: hf(input_ids=ids, use_cache=False, logits_to_keep=1)
                ),
            }
            for backend in ("cudnn", "flash"):
                runs[f"native_{backend}"] = lambda b=backend, ids=ids: (
                    set_attention(native, b),
                    native(ids, last_only=True),
                )
            for name, fn in runs.items():
                try:
                    cold, ms = timed(fn, REPS.get(L, 1))
                except (RuntimeError, torch.OutOfMemoryError) as exc:
                    log(
                        {
                            "model": "transformer",
                            "impl": name,
                            "L": L,
                            "status": "error",
                            "reason": str(exc)[:300],
                        }
                    )
                    torch.cuda.empty_cache()
                    continue
                med = statistics.median(ms)
                log(
                    {
                        "model": "transformer",
                        "size": size,
                        "impl": name,
                        "L": L,
                        "median_ms": med,
                        "samples_ms": ms,
                        "cold_ms": cold,
                        "peak_gb": torch.cuda.max_memory_allocated() / 1e9,
                        "predicted_gb": cost.memory(1, L, BF16)["total"] / 1e9,
                        "tflops": cost.prefill_flops(1, L) / med / 1e9,
                        "other_weights_gb": native.num_params() * 2 / 1e9,
                    }
                )


def bench_mamba2(log, lengths, size="1.3b") -> None:
    cfg = models.config("mamba2", size)
    conv = "triton" if kernels.unavailable_reason("conv1d", "triton") is None else "torch"
    model = cfg.build("cuda", BF16, backends={"ssm": "triton", "conv": conv}).eval()
    cost = cfg.cost()
    with torch.no_grad():
        for L in lengths:
            ids = torch.randint(0, cfg.vocab_size, (1, L), device="cuda")
            try:
                out = {}
                run = lambda out=out, ids=ids: out.update(y=model(ids, last_only=True))
                cold, ms = timed(run, REPS.get(L, 1))
            except (RuntimeError, torch.OutOfMemoryError) as exc:
                log(
                    {
                        "model": "mamba2",
                        "size": size,
                        "L": L,
                        "status": "error",
                        "reason": str(exc)[:300],
                    }
                )
                torch.cuda.empty_cache()
                continue
            med = statistics.median(ms)
            log(
                {
                    "model": "mamba2",
                    "size": size,
                    "impl": f"native ssm=triton conv={conv}",
                    "L": L,
                    "median_ms": med,
                    "samples_ms": ms,
                    "cold_ms": cold,
                    "finite": bool(torch.isfinite(out["y"]).all()),
                    "peak_gb": torch.cuda.max_memory_allocated() / 1e9,
                    "predicted_gb": cost.memory(1, L, BF16)["total"] / 1e9,
                    "tflops": cost.prefill_flops(1, L) / med / 1e9,
                }
            )


def bench_host(log, lengths, size="1.3b") -> None:
    """Eager forward vs a CUDA-graph replay of it, per architecture, at short lengths."""
    for name in ("transformer", "mamba2", "mamba1", "hybrid_1_7"):
        cfg = models.config(name, size)
        model = cfg.build("cuda", BF16, backends={"ssm": "triton", "conv": "triton"}).eval()
        with torch.no_grad():
            for L in lengths:
                ids = torch.randint(0, cfg.vocab_size, (1, L), device="cuda")
                call = lambda m=model, ids=ids: m(ids, last_only=True)  # noqa: E731
                _, eager = timed(call, 20)
                graph = torch.cuda.CUDAGraph()
                side = torch.cuda.Stream()
                side.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(side):
                    call()  # warm on a side stream before capture, as CUDA graphs ask
                torch.cuda.current_stream().wait_stream(side)
                with torch.cuda.graph(graph):
                    call()
                _, replay = timed(graph.replay, 20)
                e, r = statistics.median(eager), statistics.median(replay)
                log({"section": "host", "model": name, "size": size, "L": L, "eager_ms": e,
                     "graph_ms": r, "host_ms": e - r})  # fmt: skip
                del graph
        del model
        torch.cuda.empty_cache()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_out")
    ap.add_argument("--transformer", default="4096,16384,65536")
    ap.add_argument("--mamba2", default="16384,65536,262144,1048576")
    ap.add_argument("--skip-checks", action="store_true")
    ap.add_argument("--host", default="", help="host-overhead section lengths, e.g. 1024,4096")
    ap.add_argument(
        "--llama-config",
        type=Path,
        help="also save the Llama's config here: model=hf in the harness builds the same model "
        "(models/harness_vs_bare.py)",
    )
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    import transformers
    import triton

    env = {
        "gpu": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "transformers": transformers.__version__,
    }
    rows = []

    def log(rec: dict) -> None:
        rows.append(rec)
        with open(out / "bench.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps({k: v for k, v in rec.items() if k != "samples_ms"}), flush=True)

    log({"env": env})
    if args.llama_config:
        from models.gpu_checks import llama_config

        longest = max([int(x) for x in args.transformer.split(",") if x] or [16384])
        llama_config("1.3b", longest).save_pretrained(args.llama_config)
    torch.manual_seed(0)
    sections = (
        [] if args.skip_checks else [("checks", checks, None), ("checks_large", checks_large, None)]
    )
    lengths = [int(x) for x in args.transformer.split(",") if x]
    sections += [("transformer", bench_transformer, lengths)] if lengths else []
    lengths = [int(x) for x in args.mamba2.split(",") if x]
    sections += [("mamba2", bench_mamba2, lengths)] if lengths else []
    lengths = [int(x) for x in args.host.split(",") if x]
    sections += [("host", bench_host, lengths)] if lengths else []
    for name, fn, lengths in sections:
        t0 = time.perf_counter()
        try:
            fn(log) if lengths is None else fn(log, lengths)
        except Exception:  # a failed section is a result; the next one still runs
            log({"section": name, "status": "error", "reason": traceback.format_exc()[-1500:]})
        torch.cuda.empty_cache()
        print(f"section {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    print("\n| model | impl | L | median ms | cold ms | peak GB | predicted GB | TFLOP/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        if "median_ms" in r:
            print(
                f"| {r['model']} | {r['impl']} | {r['L']} | {r['median_ms']:.1f} | "
                f"{r['cold_ms']:.0f} | {r['peak_gb']:.1f} | {r['predicted_gb']:.1f} | "
                f"{r['tflops']:.0f} |"
            )
        elif r.get("section") == "host":
            print(
                f"host: {r['model']} L={r['L']}: eager {r['eager_ms']:.2f} ms, graph replay "
                f"{r['graph_ms']:.2f} ms, host {r['host_ms']:.2f} ms"
            )
        elif "check" in r:
            print(
                f"check: {r['check']}: ok={r['ok']} "
                + " ".join(f"{k}={v:.2e}" for k, v in r.items() if isinstance(v, float))
            )


if __name__ == "__main__":
    main()
