"""Correctness of the native models' GPU paths, the first part of `python -m models.bench_gpu`
(which imports these): small-shape checks of the fast backends against the torch ones, step
decode against the forward and a CUDA-graph replay against eager steps; at the 1.3B shapes in
fp32 (TF32 off), the native Transformer against transformers' LlamaForCausalLM with the same
weights and the Triton Mamba-2 against the torch kernels, with how far bf16 alone moves each.
"""

from __future__ import annotations

import torch

import kernels
import models
from models.hf import _llama_keys

BF16 = torch.bfloat16


def rel(a, b) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


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


def llama_config(size: str, max_len: int):
    """transformers' LlamaConfig of the Transformer preset's shape (PEERS.md's Llama at 1.3b)."""
    from transformers import LlamaConfig

    cfg = models.config("transformer", size)
    return LlamaConfig(
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


def llama_pair(size: str, dtype, max_len: int):
    """transformers' LlamaForCausalLM (SDPA) at the Transformer preset's shape, random weights,
    and the native model holding the same weights."""
    from transformers import AutoModelForCausalLM

    cfg = models.config("transformer", size)
    hf_cfg = llama_config(size, max_len)
    with torch.device("cuda"):
        hf = AutoModelForCausalLM.from_config(hf_cfg, dtype=dtype, attn_implementation="sdpa")
    native = cfg.build("cuda", dtype, backends={"attention": "cudnn"}).eval()
    native.load_state_dict(
        {**_llama_keys(hf.state_dict(), cfg), "lm_head.weight": hf.lm_head.weight}
    )
    return hf.eval(), native
