"""What each shipped claim (conf/claims.yaml) is measured by: expect key -> measurement(s).

These are the same dicts a user's claims file can give under `measure:`. Claims whose test is not
a ratio, value, slope or crossover have their own evaluator in custom.py.
"""

from __future__ import annotations

K = 1024
FA2 = ["flash_attn", "flash"]  # FlashAttention-2: the package if installed, else SDPA's FLASH
FLASH_CLASS = ["cudnn", "flash", "efficient", "flash_attn"]


def _ratio(suite, metric, num, den, **kw):
    return {"kind": "ratio", "suite": suite, "metric": metric, "num": num, "den": den, **kw}


def _slope(suite, metric, model, **kw):
    return {"kind": "slope", "suite": suite, "metric": metric, "model": model, **kw}


SPECS: dict[str, dict[str, list[dict]]] = {
    "bandwidth-128k": {
        "ratio_max": [
            _ratio(
                "decode", "bytes_per_token", "mamba2", "transformer", context_min=128 * K, batch=1
            )
        ]
    },
    "vram-128k": {
        "ratio_max": [
            _ratio("vram", "peak_bytes", "mamba2", "transformer", context_min=128 * K, batch=1)
        ]
    },
    "speed-6x-1m": {
        "ratio_approx": [
            _ratio("prefill", "time_ms", "transformer", "mamba2", context=1024 * K),
            _ratio("decode", "tokens_per_s", "mamba2", "transformer", context=1024 * K),
        ]
    },
    "memory-70-1m": {
        "ratio_approx": [_ratio("vram", "peak_bytes", "mamba2", "transformer", context=1024 * K)]
    },
    "inference-5x": {
        "throughput_ratio_approx": [
            _ratio("throughput", "tokens_per_s", "mamba2", "transformer", context="longest")
        ],
        "latency_ratio_approx": [
            _ratio("prefill", "time_ms", "transformer", "mamba2", context="longest")
        ],
    },
    "scan-n-log-n": {
        "exponent_approx": [
            _slope("kernels", "time_ms", "ssd", context_min=4 * K, per_backend=True),
            _slope("prefill", "time_ms", "mamba2", context_min=4 * K),
        ]
    },
    "short-seq-inferior": {
        "transformer_faster": [
            _ratio("prefill", "time_ms", "mamba2", "transformer", context_max=2 * K),
            _ratio("decode", "time_ms", "mamba2", "transformer", context_max=2 * K),
        ]
    },
    "energy-30-50": {
        "ratio_range": [_ratio("decode", "energy_jpt", "mamba2", "transformer", context_min=32 * K)]
    },
    "decode-tok-s-32k": {
        "ratio_range": [
            _ratio("decode", "tokens_per_s", "ssm", "transformer", context=32 * K, batch=1)
        ]
    },
    "decode-tok-s-128k": {
        "ratio_range": [
            _ratio("decode", "tokens_per_s", "ssm", "transformer", context=128 * K, batch=1)
        ]
    },
    "decode-tok-s-1m": {
        "ssm_tok_s_range": [
            {
                "kind": "value",
                "suite": "decode",
                "metric": "tokens_per_s",
                "model": "ssm",
                "context": 1024 * K,
                "batch": 1,
            }
        ]
    },
    "vram-7b-128k": {
        "ratio_range": [
            _ratio(
                "vram", "peak_bytes", "transformer", "mamba2", context=128 * K, size="7b", batch=1
            ),
            _ratio(
                "decode",
                "predicted_bytes",
                "transformer",
                "mamba2",
                context=128 * K,
                size="7b",
                batch=1,
            ),
        ]
    },
    "attention-matrix-size": {
        "quadratic_memory": [
            _slope(
                "kernels",
                "peak_bytes",
                "attention",
                per_backend=True,
                backend=FLASH_CLASS,
                context_min=4 * K,
            )
        ]
    },
    "hybrid-70-30": {
        "ratio_range": [
            _ratio("prefill", "time_ms", "transformer", "hybrid", context_min=32 * K),
            _ratio("decode", "tokens_per_s", "hybrid", "transformer", context_min=32 * K),
        ]
    },
    "ops-125x": {
        "ratio_approx_128k": [
            _ratio("kernels", "flops", "attention", "ssd", context=128 * K),
            _ratio("kernels", "time_ms", "attention", "ssd", context=128 * K),
        ],
        "ratio_approx_1m": [
            _ratio("kernels", "flops", "attention", "ssd", context=1024 * K),
            _ratio("kernels", "time_ms", "attention", "ssd", context=1024 * K),
        ],
    },
    "ssd-vs-fa2": {
        "crossover_max": [
            {
                "kind": "crossover",
                "suite": "kernels",
                "metric": "time_ms",
                "num": "attention",
                "num_backend": FA2,
                "den": "ssd",
            }
        ],
        "ratio_16k_approx": [
            _ratio("kernels", "time_ms", "attention", "ssd", num_backend=FA2, context=16 * K)
        ],
    },
    "mamba1-5x-throughput": {
        "ratio_range": [_ratio("throughput", "tokens_per_s", "mamba1", "transformer")]
    },
    "samba-128k": {
        "ratio_approx": [
            _ratio("prefill", "tokens_per_s", "hybrid", "transformer", context=128 * K)
        ]
    },
    "ssm-scope-crossover": {
        "crossover_range": [
            {
                "kind": "crossover",
                "suite": "prefill",
                "metric": "time_ms",
                "num": "transformer",
                "den": "ssm",
            }
        ]
    },
    "state-o1-per-token": {
        "ssm_latency_slope_max": [
            _slope("decode", "time_ms", "mamba2"),
            _slope("decode", "time_ms", "mamba1"),
        ],
        "ssm_memory_slope_max": [
            _slope("decode", "peak_bytes", "mamba2"),
            _slope("decode", "peak_bytes", "mamba1"),
        ],
        # the KV cache's growth shows once it outweighs the weights
        "transformer_memory_slope_min": [
            _slope("decode", "peak_bytes", "transformer", context_min=64 * K)
        ],
    },
}

# Why a claim is measured on something narrower or different from what its text says.
NOTES = {
    "samba-128k": "Samba is Mamba + sliding-window attention; measured on this run's hybrid "
    "(30% full attention).",
    "speed-6x-1m": "Prefill time ratio Transformer/Mamba-2 and decode tokens/s ratio "
    "Mamba-2/Transformer.",
    "vram-7b-128k": "Measured peak where the 7B points ran; the cost model's decode total "
    "beside it.",
    "ops-125x": "FLOPs as the kernels suite counts them, and the measured kernel time ratio.",
    "scan-n-log-n": "An exponent near 1 is linear scaling; N log N over 4K-1M would read about "
    "1.1.",
    "state-o1-per-token": "Slopes of decode latency and decode peak memory vs context (O(1) per "
    "token is a slope of 0), and the Transformer's memory slope from 64K, where its KV cache "
    "outweighs the weights. Not its latency slope: at batch 1 a step reads the weights, so it "
    "grows slowly until the cache is far larger (the claim says nothing about that rate).",
    "hybrid-70-30": "Prefill time Transformer/hybrid and decode tokens/s hybrid/Transformer.",
    "decode-tok-s-32k": "Mamba-2 (else Mamba-1) decode tokens/s over the Transformer's, batch 1.",
    "decode-tok-s-128k": "Mamba-2 (else Mamba-1) decode tokens/s over the Transformer's, batch 1.",
}
