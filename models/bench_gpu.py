"""GPU check and prefill speed of the native models against transformers (issue 3), in one go.

    PYTHONUNBUFFERED=1 python -m models.bench_gpu --out $OUT      # one H100, about 3 minutes

1. Checks at small shapes: the fast backends (FLASH attention, Triton SSD/conv/steps) against the
   plain-torch ones on the same weights; step-by-step decode against the forward; a CUDA-graph
   replay of `step` against the eager step. At the 1.3B shapes, in fp32 with TF32 off: native
   Transformer against transformers' Llama, Triton Mamba-2 against the torch kernels; and how far
   bf16 alone moves each (the yardstick for bf16 differences between paths).
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
from models.hf import _llama_keys

BF16 = torch.bfloat16
REPS = {4096: 10, 16384: 5, 65536: 3, 262144: 2, 1048576: 1}


def rel(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


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


def set_attention(model, backend: str) -> None:
    for layer in model.layers:
        if layer.letter == "A":
            layer.mixer.backend = backend
    model.backends["attention"] = backend


def set_ssm(model, ssm: str, conv: str) -> None:
    for layer in model.layers:
        if layer.letter == "M":
            m = layer.mixer
            m.ssd, m.ssd_step = kernels.get("ssd", ssm), kernels.get("ssd_step", ssm)
            m.conv, m.conv_step = kernels.get("conv1d", conv), kernels.get("conv1d_step", conv)
    model.backends.update(ssm=ssm, conv=conv)


def checks(log) -> None:
    """Small-shape correctness of the GPU paths, fp32 and bf16."""
    tiny = dict(
        d_model=256,
        n_layer=6,
        vocab_size=512,
        heads=4,
        kv_heads=2,
        d_ff=512,
        headdim=64,
        d_state=64,
        chunk_size=64,
    )
    ids = torch.randint(0, 512, (2, 300), device="cuda")
    for dtype, tol in ((torch.float32, 1e-3), (BF16, 3e-2)):
        torch.manual_seed(0)
        fast = models.create(
            "hybrid_30",
            pattern="MA-M-A",
            device="cuda",
            dtype=dtype,
            backends={
                "attention": "flash" if dtype == BF16 else "math",
                "ssm": "triton",
                "conv": "triton",
            },
            **tiny,
        ).eval()
        slow = models.create(
            "hybrid_30",
            pattern="MA-M-A",
            device="cuda",
            dtype=dtype,
            backends={"attention": "math", "ssm": "torch", "conv": "torch"},
            **tiny,
        ).eval()
        slow.load_state_dict(fast.state_dict())
        with torch.no_grad():
            ref = slow(ids).float()
            out = fast(ids).float()
            cache = fast.allocate_cache(2, 320)
            fast.prefill(ids[:, :200], cache)
            steps = torch.cat([fast.step(ids[:, t : t + 1], cache) for t in range(200, 300)], 1)
            # CUDA graph: capture one step, replay it against eager steps from the same state
            fast.prefill(ids[:, :200], cache)
            static_ids = ids[:, 200:201].clone()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                fast.step(static_ids, cache)  # warm-up on the side stream (autotune, JIT)
            torch.cuda.current_stream().wait_stream(s)
            fast.prefill(ids[:, :200], cache)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                static_out = fast.step(static_ids, cache)
            fast.prefill(ids[:, :200], cache)
            replayed = []
            for t in range(200, 300):
                static_ids.copy_(ids[:, t : t + 1])
                graph.replay()
                replayed.append(static_out.clone())
            replayed = torch.cat(replayed, 1)
        rec = {
            "check": f"hybrid MA-M-A {dtype}",
            "fast_vs_torch": rel(out, ref),
            "steps_vs_forward": rel(steps.float(), out[:, 200:300]),
            "graph_vs_eager_steps": rel(replayed.float(), steps.float()),
            "backends": fast.kernel_backends(),
        }
        rec["ok"] = all(
            rec[k] < tol for k in ("fast_vs_torch", "steps_vs_forward", "graph_vs_eager_steps")
        )
        log(rec)


def checks_large(log, L: int = 2048) -> None:
    """At the full 1.3B shapes: fp32 logits of the native models against transformers' Llama and
    against the torch references (TF32 off), then how far bf16 moves each from that fp32 answer,
    so that a bf16 difference between two paths can be read against bf16's own error."""
    torch.backends.cuda.matmul.allow_tf32 = False
    ids = torch.randint(0, 50280, (1, L), device="cuda")
    hf, native = llama_pair("1.3b", torch.float32, max_len=L)
    with torch.no_grad():
        ref = hf(input_ids=ids, logits_to_keep=1).logits
        set_attention(native, "math")
        out = native(ids, last_only=True)
        # Only the native model is cast: .to(bf16) would also round transformers' rotary
        # inv_freq buffer, which a model created in bf16 keeps in fp32 (a 0.44 error, not bf16's).
        native.to(BF16)
        set_attention(native, "cudnn")
        native_bf16 = native(ids, last_only=True)
    log(
        {
            "check": f"transformer 1.3b native vs LlamaForCausalLM, fp32, {L} tokens",
            "rel": rel(out, ref),
            "ok": rel(out, ref) < 1e-4,
            "bf16_native_cudnn_vs_fp32": rel(native_bf16, ref),
        }
    )
    del hf, native
    torch.cuda.empty_cache()
    model = models.create(
        "mamba2",
        "1.3b",
        device="cuda",
        dtype=torch.float32,
        backends={"ssm": "triton", "conv": "triton"},
    ).eval()
    with torch.no_grad():
        fast = model(ids, last_only=True)
        set_ssm(model, "torch", "torch")
        ref = model(ids, last_only=True)
        model.to(BF16)
        slow_bf16 = model(ids, last_only=True)
        set_ssm(model, "triton", "triton")
        fast_bf16 = model(ids, last_only=True)
    torch.backends.cuda.matmul.allow_tf32 = True
    log(
        {
            "check": f"mamba2 1.3b triton vs torch kernels, fp32, {L} tokens",
            "rel": rel(fast, ref),
            "ok": rel(fast, ref) < 1e-3,
            "bf16_torch_vs_fp32": rel(slow_bf16, ref),
            "bf16_triton_vs_fp32": rel(fast_bf16, ref),
        }
    )


def llama_pair(size: str, dtype, max_len: int):
    """transformers' LlamaForCausalLM (SDPA) at the Transformer preset's shape, random weights,
    and the native model holding the same weights."""
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = models.config("transformer", size)
    hf_cfg = LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.d_ff,
        num_hidden_layers=cfg.n_layer // 2,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=max_len,
        rms_norm_eps=cfg.norm_eps,
        tie_word_embeddings=False,
    )
    with torch.device("cuda"):
        hf = AutoModelForCausalLM.from_config(hf_cfg, dtype=dtype, attn_implementation="sdpa")
    native = cfg.build("cuda", dtype, backends={"attention": "cudnn"}).eval()
    native.load_state_dict(
        {**_llama_keys(hf.state_dict(), cfg), "lm_head.weight": hf.lm_head.weight}
    )
    return hf.eval(), native


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
