"""Side-by-side timing of the SSD scan, decode step and training step on one GPU (ours, mamba-ssm,
fla).

Run on a CUDA machine, from the repository root, with the peers importable (see NOTES.md):
    python3 -m kernels.ssd.bench_gpu --out $OUT
(as a module: run as a script, kernels/ssd/triton.py would shadow the triton package)
Shapes are PEERS.md's: H=64, P=64, N=128, G=1, chunk 256, bf16, batch 1. Medians of
triton.testing.do_bench. Peers are never run at 1M tokens (they fault there and would take the
CUDA context down with them). Prints a table last; writes every number to OUT/ssd_bench.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback

import torch
import triton
from triton.testing import do_bench

from kernels.ssd import peers, ssd, ssd_ref, tuning
from kernels.ssd_step import ssd_step
from kernels.ssd_step import triton as step_triton

H, P, N, G, L = 64, 64, 128, 1, 256
RESULTS: dict = {}


def log(*a):
    print(*a, flush=True)


def inputs(t, b=1, seed=0):
    gen = torch.Generator(device="cuda").manual_seed(seed)
    r = lambda *s, dt=torch.bfloat16: torch.randn(*s, generator=gen, device="cuda", dtype=dt)
    return dict(
        x=r(b, t, H, P),
        dt=r(b, t, H) * 0.5,
        A=-torch.logspace(-1.7, 0.6, H, device="cuda"),
        B=r(b, t, G, N) * N**-0.5,
        C=r(b, t, G, N) * N**-0.5,
        dt_bias=torch.linspace(-4.5, -2.3, H, device="cuda"),
        dt_softplus=True,
    )


def flops(t):
    """Useful FLOPs: causal C.B^T (L*N per token per group), causal scores @ x (L*P per token per
    head), chunk states and their read-out (2 * 2*P*N per token per head)."""
    return t * (H * (L * P + 4 * P * N) + G * L * N)


def min_bytes(t, elt=2):
    """Each input read once, y written once: x, y, B, C, dt (bf16)."""
    return t * (2 * H * P + 2 * G * N + H) * elt


def bench(fn, ms_rep=200):
    return do_bench(fn, warmup=25, rep=ms_rep, return_mode="median")


def cold(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def kernel_breakdown(fn):
    """Device time per kernel name for one call, from the profiler."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    out = {}
    for e in prof.key_averages():
        us = getattr(e, "device_time_total", 0) or getattr(e, "cuda_time_total", 0)
        if us:
            out[e.key[:60]] = round(us / 1000, 4)
    return out


def section(name, f):
    try:
        f()
    except Exception as exc:  # record and go on: one failing section must not hide the rest
        RESULTS.setdefault("errors", {})[name] = repr(exc)
        log(f"[{name}] FAILED: {exc!r}")
        traceback.print_exc()


def env():
    p = torch.cuda.get_device_properties(0)
    RESULTS["env"] = dict(
        gpu=p.name,
        sms=p.multi_processor_count,
        torch=torch.__version__,
        triton=triton.__version__,
        python=sys.version.split()[0],
    )
    for mod in ("fla", "mamba_ssm"):
        try:
            RESULTS["env"][mod] = __import__(mod).__version__
        except Exception as exc:
            RESULTS["env"][mod] = f"missing ({exc!r})"
    x = torch.empty(2**30, dtype=torch.uint8, device="cuda")
    y = torch.empty_like(x)
    RESULTS["copy_TBps"] = 2 * x.numel() / bench(lambda: y.copy_(x)) / 1e9
    log("env", RESULTS["env"], "copy TB/s", round(RESULTS["copy_TBps"], 3))


def accuracy():
    kw = inputs(4096, seed=1)
    ref = ssd_ref(**{k: v.float() if torch.is_tensor(v) else v for k, v in kw.items()})
    acc = {"ours": ssd(**kw, chunk_size=L)}
    tuning.CB_16BIT = False
    acc["ours_cb_fp32"] = ssd(**kw, chunk_size=L)
    tuning.CB_16BIT = True
    for name in ("ssd_mamba_ssm", "ssd_fla"):
        try:
            acc[name] = getattr(peers, name)(**kw, chunk_size=L)
        except Exception as exc:
            log(name, "unavailable:", repr(exc)[:200])
    RESULTS["rel_err_vs_fp32_ref_4K"] = {
        k: ((v.float() - ref).norm() / ref.norm()).item() for k, v in acc.items()
    }
    log("rel err vs fp32 ref at 4K", RESULTS["rel_err_vs_fp32_ref_4K"])


def cold_start():
    kw = inputs(16384, seed=2)
    tuning.set_autotune(False)
    RESULTS["cold_fixed_s"] = cold(lambda: ssd(**kw, chunk_size=L))
    tuning.set_autotune(True)
    RESULTS["cold_autotune_s"] = cold(lambda: ssd(**kw, chunk_size=L))
    RESULTS["best_configs"] = {
        "chunk_state": str(tuning.chunk_state_tuned.best_config),
        "chunk_scan": str(tuning.chunk_scan_tuned.best_config),
    }
    log("cold start fixed", RESULTS["cold_fixed_s"], "autotune", RESULTS["cold_autotune_s"])
    log("best configs", RESULTS["best_configs"])


def scan_row(t, with_peers):
    kw = inputs(t, seed=t)
    run = lambda: ssd(**kw, chunk_size=L)
    row = {}
    tuning.set_autotune(True)
    row["ours"] = bench(run)
    tuning.set_autotune(False)
    row["ours_fixed"] = bench(run)
    tuning.set_autotune(True)
    if t in (16384, 262144):
        row["ours_kernels_ms"] = kernel_breakdown(run)
    if t >= 65536:
        tuning.CB_16BIT = False
        row["ours_cb_fp32"] = bench(run)
        if t == 262144:
            row["ours_cb_fp32_kernels_ms"] = kernel_breakdown(run)
        tuning.CB_16BIT = True
    if with_peers:
        try:
            row["mamba_ssm"] = bench(lambda: peers.ssd_mamba_ssm(**kw, chunk_size=L))
        except Exception as exc:
            row["mamba_ssm"] = repr(exc)[:120]
        try:
            from fla.ops.simple_gla import chunk_simple_gla

            q, k, v, g = peers.fla_inputs(**{n: kw[n] for n in ("x", "dt", "A", "B", "C")})
            row["fla"] = bench(lambda: chunk_simple_gla(q, k, v, g=g, scale=1.0))
            row["fla_with_adapter"] = bench(lambda: peers.ssd_fla(**kw, chunk_size=L))
        except Exception as exc:
            row["fla"] = repr(exc)[:120]
    ms = row["ours"]
    row["ours_TFLOPs"] = flops(t) / ms / 1e9
    row["ours_min_bytes_TBps"] = min_bytes(t) / ms / 1e9
    row["peak_GB"] = torch.cuda.max_memory_allocated() / 1e9
    return row


def scan_times(lengths, with_peers):
    rows = RESULTS.setdefault("scan", {})
    for t in lengths:
        rows[t] = row = scan_row(t, with_peers)
        log(t, {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def train_row(t, b):
    """One training step of the scan alone (forward + backward of every input) three ways: ours
    (Triton forward, backward by recomputing ssd_ref under autograd, NOTES.md), ssd_ref's forward
    and autograd, and mamba-ssm's Triton kernels (forward and backward) as the peer."""
    kw = inputs(t, b=b, seed=t + b)
    names = ("x", "dt", "B", "C")
    dy = torch.randn_like(kw["x"])
    ways = {
        "ours": lambda **k: ssd(**k, chunk_size=L),
        # in fp32, as our backward recomputes it
        "torch_ref": lambda **k: ssd_ref(
            **{n: v.float() if torch.is_tensor(v) else v for n, v in k.items()}, chunk_size=L
        ),
        "mamba_ssm": lambda **k: peers.ssd_mamba_ssm(**k, chunk_size=L),
    }
    row = {}
    for name, fn in ways.items():
        leaves = {n: kw[n].detach().clone().requires_grad_() for n in names}

        def step(fn=fn, leaves=leaves):
            y = fn(**{**kw, **leaves})
            y.backward(dy.to(y.dtype))

        try:
            torch.cuda.reset_peak_memory_stats()
            row[name] = bench(step, ms_rep=300)
            row[f"{name}_peak_GB"] = torch.cuda.max_memory_allocated() / 1e9
        except Exception as exc:  # a missing peer, or memory: recorded, the next way runs
            row[name] = repr(exc)[:120]
        torch.cuda.empty_cache()
    return row


def train_times():
    rows = RESULTS.setdefault("train", {})
    for t, b in ((2048, 1), (2048, 8), (8192, 1)):
        rows[f"{t}x{b}"] = row = train_row(t, b)
        log(
            "train", t, b, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
        )


def step_row(b, sdt):
    gen = torch.Generator(device="cuda").manual_seed(b)
    r = lambda *s, dt=torch.bfloat16: torch.randn(*s, generator=gen, device="cuda", dtype=dt)
    state = r(b, H, P, N, dt=sdt)
    args = (r(b, H, P), r(b, H, dt=torch.float32), -torch.rand(H, device="cuda"))
    args += (r(b, G, N), r(b, G, N))
    y = torch.empty(b, H, P, device="cuda", dtype=torch.bfloat16)
    fn = lambda: ssd_step(state, *args, dt_softplus=True, out=y)
    step_triton.set_autotune(True)
    fn()
    ms = bench(fn, ms_rep=100)
    nbytes = 2 * state.numel() * state.element_size()
    row = dict(ms=ms, GBps=nbytes / ms / 1e6)
    try:
        from triton.testing import do_bench_cudagraph

        row["graph_ms"] = do_bench_cudagraph(fn, rep=100, return_mode="median")
        row["graph_GBps"] = nbytes / row["graph_ms"] / 1e6
    except Exception as exc:
        row["graph_ms"] = repr(exc)[:120]
    row["config"] = str(step_triton._ssd_step_tuned.best_config)
    return row


def step_times():
    rows = RESULTS.setdefault("step", {})
    for b in (1, 64, 256):
        for sdt in (torch.float32, torch.bfloat16):
            rows[f"b{b}-{str(sdt)[6:]}"] = row = step_row(b, sdt)
            log("step", b, sdt, row)


def table():
    log("\n| tokens | ours (autotune) | ours (fixed) | mamba-ssm | fla | TFLOP/s | GB/s* |")
    log("|---|---|---|---|---|---|---|")
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)[:20]
    for t, r in RESULTS.get("scan", {}).items():
        log(
            f"| {t} | {fmt(r['ours'])} | {fmt(r['ours_fixed'])} | {fmt(r.get('mamba_ssm', '-'))} "
            f"| {fmt(r.get('fla', '-'))} | {r['ours_TFLOPs']:.0f} "
            f"| {r['ours_min_bytes_TBps'] * 1000:.0f} |"
        )
    log("* minimum bytes (inputs once, y once) over time")
    for k, r in RESULTS.get("step", {}).items():
        log(f"step {k}: {fmt(r['ms'])} ms {r['GBps']:.0f} GB/s; graph {fmt(r.get('graph_ms'))}")
    for k, r in RESULTS.get("train", {}).items():
        ways = ("ours", "torch_ref", "mamba_ssm")
        log(f"train T x B {k}: " + ", ".join(f"{w} {fmt(r.get(w, '-'))} ms" for w in ways))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=".")
    ap.add_argument("--lengths", default="4096,16384,65536,262144,1048576")
    ap.add_argument("--skip", default="")
    a = ap.parse_args()
    lengths = [int(v) for v in a.lengths.split(",")]
    skip = set(a.skip.split(","))
    section("env", env)
    if "cold" not in skip:
        section("cold", cold_start)
    if "accuracy" not in skip:
        section("accuracy", accuracy)
    if "scan" not in skip:
        section("scan", lambda: scan_times([t for t in lengths if t < 2**20], True))
        section("scan_1M", lambda: scan_times([t for t in lengths if t >= 2**20], False))
    if "step" not in skip:
        section("step", step_times)
    if "train" not in skip:
        section("train", train_times)
    with open(f"{a.out}/ssd_bench.json", "w") as f:
        json.dump(RESULTS, f, indent=1, default=str)
    table()


if __name__ == "__main__":
    main()
