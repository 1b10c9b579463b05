"""Analytic cost model of a native model: parameters, FLOPs, bytes per decode step, memory.

The speed suites divide measured times by these (MFU, MBU) and preflight predicts OOM from
`memory(...)["total"]`, so every formula is written out here and nowhere else.

FLOP conventions (multiply-add = 2 FLOPs; elementwise work, norms and softmax are not counted):
- linear layers: 2 * in * out per token; the LM head runs on the last position only in prefill
  (`forward(ids, last_only=True)`, what prefill benchmarks time) and on the one token in decode;
- causal attention over L tokens: 4 * H * hd * L^2 / 2 (PEERS.md's convention); a decode step at
  position L attends to L + 1 keys: 4 * H * hd * (L + 1);
- Mamba-2 SSD, chunked (chunk Q), per token: 2QGN (C B^T) + 2QHP (intra-chunk output, computed
  over the full chunk as the kernels do) + 2HPN (chunk states) + 2HPN (state to output); a decode
  step: 5HPN (state decay, input, output);
- Mamba-1 selective scan per token: 7 * d_inner * N (exp, decay, input, output); depthwise conv:
  2 * width * channels per token.

Memory phases: "prefill" is forward(ids, last_only=True) without a cache (what a prefill
benchmark runs); "prefill_cache" is allocate_cache(B, L) + prefill(ids, cache); "decode" is a
cache of L tokens plus one step. Activations are the largest set of tensors alive at once in a
no-grad forward, layer by layer, as the code in this package allocates them (see each _*_peak).
"""

from __future__ import annotations

import math

import torch

PHASES = ("prefill", "prefill_cache", "decode")
WORKSPACE = 64 * 2**20  # cuBLAS / cuDNN workspaces and allocator slack, bytes
DTYPE_BYTES = {"float32": 4, "fp32": 4, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2}


def nbytes_of(dtype) -> int:
    if isinstance(dtype, torch.dtype):
        return torch.empty((), dtype=dtype).element_size()
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"dtype: unknown {dtype!r}; valid: {', '.join(DTYPE_BYTES)}")
    return DTYPE_BYTES[dtype]


def param_counts(cfg, d_ff: int | None = None) -> dict[str, int]:
    """Parameters by component; `total` equals sum(p.numel()) of the built model (tied embeddings
    counted once). d_ff overrides cfg.d_ff (used while solving d_ff: auto)."""
    d, V = cfg.d_model, cfg.vocab_size
    d_ff = cfg.d_ff if d_ff is None else d_ff
    di, W = cfg.d_inner, cfg.d_conv
    H, hd, Hkv = cfg.heads, cfg.head_dim, cfg.kv_heads or cfg.heads
    attn = d * (H + 2 * Hkv) * hd + H * hd * d
    GN, Hs = cfg.ngroups * cfg.d_state, cfg.nheads_ssm
    conv_dim = di + 2 * GN
    mamba2 = d * (2 * di + 2 * GN + Hs) + conv_dim * (W + 1) + 3 * Hs + di + di * d
    R, N1 = cfg.dt_rank or math.ceil(d / 16), cfg.d_state_m1
    mamba1 = d * 2 * di + di * (W + 1) + di * (R + 2 * N1) + R * di + di + di * N1 + di + di * d
    out = {
        "embedding": V * d,
        "attention": cfg.count("A") * attn,
        "mamba2": cfg.count("M") * mamba2,
        "mamba1": cfg.count("S") * mamba1,
        "mlp": cfg.count("-") * 3 * d * d_ff,
        "norm": (cfg.n_layer + 1) * d,
        "lm_head": 0 if cfg.tie_embeddings else V * d,
    }
    out["total"] = sum(out.values())
    return out


class CostModel:
    def __init__(self, cfg):
        self.cfg = cfg

    def params(self) -> dict[str, int]:
        return param_counts(self.cfg)

    # ---- FLOPs -------------------------------------------------------------------------------

    def _linear_flops_per_token(self) -> float:
        """2 * (all matrix parameters of the layers), i.e. without embedding, norms, conv, A/D."""
        c, p = self.cfg, self.params()
        conv = c.d_conv + 1
        conv_m2 = c.count("M") * (
            (c.d_inner + 2 * c.ngroups * c.d_state) * conv + 3 * c.nheads_ssm + c.d_inner
        )
        conv_m1 = c.count("S") * (c.d_inner * conv + c.d_inner * c.d_state_m1 + 2 * c.d_inner)
        return 2.0 * (p["attention"] + p["mlp"] + p["mamba2"] - conv_m2 + p["mamba1"] - conv_m1)

    def _scan_flops_per_token(self) -> float:
        c = self.cfg
        Q, G, N, H, P = c.chunk_size, c.ngroups, c.d_state, c.nheads_ssm, c.headdim
        conv_dim = c.d_inner + 2 * G * N
        m2 = 2 * Q * G * N + 2 * Q * H * P + 4 * H * P * N + 2 * c.d_conv * conv_dim
        m1 = 7 * c.d_inner * c.d_state_m1 + 2 * c.d_conv * c.d_inner
        return c.count("M") * m2 + c.count("S") * m1

    def prefill_flops(self, batch: int, L: int) -> float:
        """Forward over L tokens per sequence, logits of the last position only."""
        c = self.cfg
        attn = c.count("A") * 4 * c.heads * c.head_dim * L * L / 2
        per_seq = L * (self._linear_flops_per_token() + self._scan_flops_per_token()) + attn
        return batch * (per_seq + 2.0 * c.d_model * c.vocab_size)

    def decode_flops(self, batch: int, L: int) -> float:
        """One decode step for a token at position L (L tokens already cached)."""
        c = self.cfg
        H, P, N = c.nheads_ssm, c.headdim, c.d_state
        conv_dim = c.d_inner + 2 * c.ngroups * N
        attn = c.count("A") * 4 * c.heads * c.head_dim * (L + 1)
        m2 = c.count("M") * (5 * H * P * N + 2 * c.d_conv * conv_dim)
        m1 = c.count("S") * (7 * c.d_inner * c.d_state_m1 + 2 * c.d_conv * c.d_inner)
        lin = self._linear_flops_per_token() + 2.0 * c.d_model * c.vocab_size
        return batch * (lin + attn + m2 + m1)

    # ---- bytes and memory --------------------------------------------------------------------

    def decode_bytes(self, batch: int, L: int, dtype) -> float:
        """HBM bytes of one decode step at position L: every weight read once (the embedding
        only for the batch's rows unless tied to the LM head), K/V of L + 1 positions read and
        one written, SSM and conv states read and written, logits written."""
        c, b, p = self.cfg, nbytes_of(dtype), self.params()
        weights = (p["total"] - p["embedding"]) * b
        weights += (p["embedding"] if c.tie_embeddings else batch * c.d_model) * b
        kv_row = 2 * c.kv_heads * c.head_dim * b  # K and V of one position, one layer
        kv = c.count("A") * batch * kv_row * (L + 2)
        state = self.memory(batch, L, dtype, phase="decode")
        states = 2 * (state["ssm_state"] + state["conv_state"])
        return float(weights + kv + states + batch * c.vocab_size * b)

    def cache_bytes(self, batch: int, max_len: int, dtype) -> dict[str, int]:
        """Exactly what allocate_cache(batch, max_len, dtype) allocates."""
        c, b = self.cfg, nbytes_of(dtype)
        sb = nbytes_of(c.ssm_state_dtype)
        conv_dim = c.d_inner + 2 * c.ngroups * c.d_state
        return {
            "kv_cache": c.count("A") * 2 * batch * c.kv_heads * max_len * c.head_dim * b,
            "ssm_state": batch
            * sb
            * (
                c.count("M") * c.nheads_ssm * c.headdim * c.d_state
                + c.count("S") * c.d_inner * c.d_state_m1
            ),
            "conv_state": batch
            * b
            * (c.d_conv - 1)
            * (c.count("M") * conv_dim + c.count("S") * c.d_inner),
        }

    def memory(self, batch: int, L: int, dtype, phase: str = "prefill") -> dict[str, int]:
        """Bytes by component at (batch, L): weights, kv_cache, ssm_state, conv_state,
        activations, total. See the module docstring for the phases."""
        if phase not in PHASES:
            raise ValueError(f"phase: unknown {phase!r}; valid: {', '.join(PHASES)}")
        b = nbytes_of(dtype)
        out = {"weights": self.params()["total"] * b}
        if phase == "prefill":
            out.update(kv_cache=0, ssm_state=0, conv_state=0)
        else:
            out.update(self.cache_bytes(batch, L, dtype))
        if phase == "decode":
            out["activations"] = self._decode_activations(batch, L, b)
        else:
            out["activations"] = self._prefill_activations(batch, L, b)
        out["total"] = sum(out.values())
        return {k: int(v) for k, v in out.items()}

    def _prefill_activations(self, batch: int, L: int, b: int) -> int:
        c = self.cfg
        n = batch * L  # tokens
        peaks = [self._mlp_peak(batch, L, b)]
        if "A" in c.pattern:
            peaks.append(self._attention_peak(n, b))
        if "M" in c.pattern:
            peaks.append(self._mamba2_peak(batch, L, b))
        if "S" in c.pattern:
            peaks.append(self._mamba1_peak(n, b))
        rope = L * c.head_dim * b if "A" in c.pattern else 0  # cos, sin [L, hd / 2] each
        residual = 2 * n * c.d_model * b  # the residual stream and the normed layer input
        logits = batch * c.vocab_size * 4
        return residual + max(peaks) + rope + logits + WORKSPACE

    def _attention_peak(self, n: int, b: int) -> int:
        """qkv, roped q and k, one q-sized rope temporary, the attention output, a q-sized copy
        for backends that want contiguous inputs, the log-sum-exp, the output projection."""
        c = self.cfg
        q, kv = c.heads * c.head_dim, c.kv_heads * c.head_dim
        return n * (
            (q + 2 * kv) * b + (q + kv) * b + q * b + q * b + q * b + c.heads * 4 + c.d_model * b
        )

    def _mlp_peak(self, batch: int, L: int, b: int) -> int:
        """Chunked over seq_chunk tokens: gate and up for one chunk, the output buffer."""
        c = self.cfg
        if "-" not in c.pattern:
            return 0
        chunk = batch * min(L, c.seq_chunk)
        return chunk * (2 * c.d_ff + c.d_model) * b + (
            batch * L * c.d_model * b if L > c.seq_chunk else 0
        )

    def _ssd_workspace(self, batch: int, L: int, b: int) -> int:
        """kernels/ssd's intermediates: the state entering each chunk (in the input dtype),
        float32 dt and its cumulative sum per head, float32 C B^T per chunk."""
        c = self.cfg
        chunks = math.ceil(L / c.chunk_size)
        states = batch * chunks * c.nheads_ssm * c.headdim * c.d_state * b
        dts = 2 * batch * c.nheads_ssm * L * 4
        cb = batch * chunks * c.ngroups * c.chunk_size**2 * 4
        return states + dts + cb

    def _mamba2_peak(self, batch: int, L: int, b: int) -> int:
        """Max over the mixer's three phases: conv (xBC in and out), scan (conv output, dt, y,
        SSD workspace), gate and norm (y, z, gated), each plus the output projection's result."""
        c = self.cfg
        n = batch * L
        conv_dim = c.d_inner + 2 * c.ngroups * c.d_state
        conv = n * (2 * conv_dim + c.nheads_ssm) * b
        scan = n * (conv_dim + c.nheads_ssm + c.d_inner) * b + self._ssd_workspace(batch, L, b)
        gate = n * 3 * c.d_inner * b
        return max(conv, scan, gate) + n * c.d_model * b

    def _mamba1_peak(self, n: int, b: int) -> int:
        """conv output, x_proj output, dt, z, y and a float32 d_inner-wide scan temporary."""
        c = self.cfg
        di = c.d_inner
        return n * ((4 * di + c.dt_rank + 2 * c.d_state_m1 + c.d_model) * b + di * 4)

    def _decode_activations(self, batch: int, L: int, b: int) -> int:
        """Attention scores and probabilities over the whole buffer (float32, then dtype), the
        logits, a few d_model-wide vectors."""
        c = self.cfg
        scores = batch * c.heads * L * (4 + 4 + b) if "A" in c.pattern else 0
        widest = max(c.d_ff if "-" in c.pattern else 0, 2 * c.d_inner, c.d_model)
        return scores + batch * (c.vocab_size * (b + 4) + 4 * widest * b) + WORKSPACE
