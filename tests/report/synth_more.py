"""Kernel and quality records of the synthetic runs (tests/report/synth.py's Builder mixes them
in): kernel times per op and backend, MQAR, needle and bits-per-byte results."""

from __future__ import annotations

import numpy as np

from harness.timing import summarize

K = 1024
CONTEXTS = [1 * K, 4 * K, 16 * K, 64 * K, 128 * K, 256 * K, 512 * K, 1024 * K]


def samples(median: float, n: int, rng, spikes: float = 0.0) -> list[float]:
    x = median * np.exp(rng.normal(0, 0.03, n))
    if spikes:
        hit = rng.random(n) < 0.02
        x[hit] *= 1 + spikes
    x *= median / np.median(x)  # the recorded median is the samples' median
    return [float(v) for v in x]


class KernelAndQualityRecords:
    """Needs self.add(...) and self.rng from the Builder."""

    def kernels(self, contexts=CONTEXTS, batch=1, dtype="bfloat16"):
        ops = {
            "attention": ["cudnn", "flash", "math"],
            "ssd": ["triton", "torch"],
            "selective_scan": ["triton"],
            "conv1d": ["triton"],
        }
        base = {
            "attention": lambda k: 0.02 + 0.0009 * k * k / 16,
            "ssd": lambda k: 0.05 + 0.02 * k,
            "selective_scan": lambda k: 0.03 + 0.05 * k,
            "conv1d": lambda k: 0.005 + 0.002 * k,
        }
        slow = {"cudnn": 1.0, "flash": 1.3, "math": 6.0, "triton": 1.0, "torch": 4.0}
        kind = {"attention": "attention", "ssd": "ssm", "selective_scan": "ssm", "conv1d": "conv"}
        for op, backends in ops.items():
            for be in backends:
                for L in contexts:
                    bk = {kind[op]: be}
                    if op == "attention" and L > 256 * K:
                        self.add(
                            "kernels",
                            op,
                            L,
                            "skipped",
                            size="",
                            batch=batch,
                            dtype=dtype,
                            backends=bk,
                            reason="longer than suite.kernels.max_context.attention (256K)",
                        )
                        continue
                    if be == "math" and L >= 64 * K:
                        self.add(
                            "kernels", op, L, "oom", size="", batch=batch, dtype=dtype, backends=bk
                        )
                        continue
                    if be == "torch" and L >= 1024 * K:
                        self.add(
                            "kernels",
                            op,
                            L,
                            "invalid_output",
                            size="",
                            batch=batch,
                            dtype=dtype,
                            backends=bk,
                            reason="rel_err 0.4 > 0.01 vs reference",
                        )
                        continue
                    ms = base[op](L / K) * slow[be] * batch
                    s = samples(ms, 40, self.rng)
                    t = summarize(s)
                    self.add(
                        "kernels",
                        op,
                        L,
                        size="",
                        batch=batch,
                        dtype=dtype,
                        backends=bk,
                        metrics={
                            "time_ms": t["median"],
                            "time": t,
                            "tflops": 0.3 * L / K / ms,
                            "gbps": 50 * L / K / ms,
                            "rel_err": 1e-3,
                            "memory": {
                                "peak_allocated_bytes": 1e6 * L / K * (L / K if be == "math" else 1)
                            },
                        },
                        time_samples=s,
                    )

    def quality(self):
        for model, skill in (("transformer", 1.0), ("mamba2", 0.82), ("hybrid_30", 0.97)):
            for width in (64, 128, 256):
                for pairs in (8, 32, 128):
                    acc = min(
                        1.0, skill * (0.55 + 0.15 * np.log2(width / 32)) * (1.1 - pairs / 512)
                    )
                    self.add(
                        "mqar",
                        model,
                        512,
                        size="",
                        dtype="float32",
                        params={"width": width, "kv_pairs": pairs, "seq_len": 512, "lr": 1e-3},
                        metrics={"accuracy": float(acc)},
                    )
            for L in (1 * K, 2 * K, 4 * K, 8 * K, 16 * K):
                for depth in (0.0, 0.25, 0.5, 0.75, 1.0):
                    if model == "mamba2" and L == 16 * K and depth == 0.5:
                        self.add(
                            "niah",
                            model,
                            L,
                            "timeout",
                            size="",
                            dtype="float32",
                            params={"depth": depth, "train_length": 4 * K},
                        )
                        continue
                    acc = (
                        skill
                        if L <= 4 * K
                        else skill * (0.9 if model == "transformer" else 0.6) ** (L / (4 * K))
                    )
                    self.add(
                        "niah",
                        model,
                        L,
                        size="",
                        dtype="float32",
                        params={"depth": depth, "train_length": 4 * K},
                        metrics={"accuracy": float(acc)},
                    )
            buckets = {}
            for start, end in ((0, 4 * K), (4 * K, 16 * K), (16 * K, 32 * K), (32 * K, 64 * K)):
                base_bpb = 1.05 - 0.05 * np.log2(end / (4 * K) + 1)
                factor = {
                    "transformer": 1.0,
                    "mamba2": 1.03 if end <= 4 * K else (1.0 if end <= 32 * K else 0.93),
                    "hybrid_30": 0.99,
                }[model]
                buckets[f"{start}-{end}"] = float(base_bpb * factor)
            self.add(
                "perplexity",
                model,
                64 * K,
                size="",
                dtype="float32",
                metrics={
                    "bpb": float(np.mean(list(buckets.values()))),
                    "bpb_by_bucket": buckets,
                    "tokens": 1e6,
                },
            )
