"""The one native model class: embedding, a stack of pre-norm residual layers built from the
layer pattern (A attention, M Mamba-2, S Mamba-1, - MLP), final norm, LM head.

Pure Transformer ("A-A-..."), pure Mamba-2 ("MMM..."), pure Mamba-1 and every hybrid are this
class with different patterns. Interface (shared with the transformers-backed model in hf.py):
forward(ids, last_only) -> logits, allocate_cache, prefill, step, num_params, kernel_backends.
"""

from __future__ import annotations

import torch
from torch import nn

from models.attention import Attention, decode_path
from models.blocks import MLP, RMSNorm, rope_cos_sin
from models.cache import Cache, allocate
from models.linear import use_decode_gemv
from models.mamba1 import Mamba1
from models.mamba2 import Mamba2

CPU_DEFAULTS = {"attention": "math", "ssm": "torch", "conv": "torch"}
CUDA_DEFAULTS = {"attention": "cudnn", "ssm": "triton", "conv": "triton"}


class Layer(nn.Module):
    """x + mixer(norm(x)); `letter` says which mixer."""

    def __init__(self, letter: str, cfg, backends: dict[str, str], **kw):
        super().__init__()
        self.letter = letter
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps, **kw)
        if letter == "A":
            self.mixer = Attention(cfg, backends["attention"], **kw)
        elif letter == "M":
            self.mixer = Mamba2(cfg, backends["ssm"], backends["conv"], **kw)
        elif letter == "S":
            self.mixer = Mamba1(cfg, backends["ssm"], backends["conv"], **kw)
        else:
            self.mixer = MLP(cfg.d_model, cfg.d_ff, cfg.seq_chunk, **kw)

    def forward(self, x: torch.Tensor, **ctx) -> torch.Tensor:
        h = self.mixer(self.norm(x), **ctx)
        # Without autograd, add in place: one residual stream instead of two at long context.
        return x + h if torch.is_grad_enabled() else x.add_(h)

    def step(self, x: torch.Tensor, **ctx) -> torch.Tensor:
        return x + self.mixer.step(self.norm(x), **ctx)


class Model(nn.Module):
    def __init__(self, cfg, device="cpu", dtype=torch.float32, backends=None):
        super().__init__()
        self.cfg = cfg
        device = torch.device(device)
        defaults = CUDA_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS
        unknown = sorted(set(backends or {}) - set(defaults))
        if unknown:
            raise ValueError(f"backends: unknown key(s) {unknown}; valid keys: {sorted(defaults)}")
        self.backends = {**defaults, **(backends or {})}
        kw = {"device": device, "dtype": dtype}
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.d_model, **kw)
        self.layers = nn.ModuleList(Layer(c, cfg, self.backends, **kw) for c in cfg.pattern)
        self.norm_f = RMSNorm(cfg.d_model, cfg.norm_eps, **kw)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False, **kw)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embedding.weight
        if cfg.decode_gemv == "triton":
            use_decode_gemv(self)
        if device.type != "meta":
            self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Random weights: normal(0, init_std) for matrices, residual outputs scaled by
        1/sqrt(n_layer) (GPT-2's rule, one residual write per layer), mamba's own init for the
        SSM parameters, ones for norms."""
        std = self.cfg.init_std
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                out = name.endswith(("wo", "out_proj", "down"))
                nn.init.normal_(module.weight, 0.0, std / self.cfg.n_layer**0.5 if out else std)
        for module in self.modules():
            if isinstance(module, Mamba1 | Mamba2):
                module.reset_parameters()  # after the generic pass: dt_proj has its own init

    def kernel_backends(self) -> dict[str, str]:
        """What runs: attention backend (full sequences), the decode attention path, SSM, conv,
        and the decode step's fused kernels when they are on."""
        out = {}
        if "A" in self.cfg.pattern:
            out["attention"] = self.backends["attention"]
            device = self.embedding.weight.device.type
            out["attention_decode"] = decode_path(self.cfg.decode_attention, device)
        if "M" in self.cfg.pattern or "S" in self.cfg.pattern:
            out["ssm"] = self.backends["ssm"]
            out["conv"] = self.backends["conv"]
        if self.cfg.fused_decode:
            out["decode_fused"] = "triton"  # kernels.norm and kernels.rope_step in the step
        if self.cfg.decode_gemv != "cublas":
            out["decode_gemv"] = self.cfg.decode_gemv  # kernels.gemv for one-row products
        return out

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def cost(self):
        return self.cfg.cost()

    def _rope(self, T: int, device, dtype):
        if "A" not in self.cfg.pattern:
            return None
        return rope_cos_sin(
            torch.arange(T, device=device), self.cfg.head_dim, self.cfg.rope_theta, dtype
        )

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.norm_f(x))

    @torch.inference_mode()
    def pretune(self, batch: int, seqlen: int, cache: Cache | None = None) -> None:
        """Run one layer of each kind once on a random [batch, seqlen] hidden state, so that the
        one-time work that depends on the length is done off the clock: the autotuning keyed by
        it (Mamba's conv, Mamba-1's scan chunk), kernels specialised on length-derived integers,
        attention's plan for the shape and the allocator's growth to a layer's working set.
        With the cache the prefill will write (its contents are overwritten there), so the
        kernel variants that store the final states are the ones compiled."""
        p = next(self.parameters())
        x = torch.randn(batch, seqlen, self.cfg.d_model, device=p.device, dtype=p.dtype)
        rope = self._rope(seqlen, p.device, p.dtype)
        for letter in dict.fromkeys(self.cfg.pattern):
            i = self.cfg.pattern.index(letter)
            self.layers[i](x, rope=rope, cache=cache.layers[i] if cache is not None else None)

    def forward(self, input_ids: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        """input_ids [B, T] -> logits [B, T, V] ([B, 1, V] for the last position if last_only)."""
        x = self.embedding(input_ids)  # [B, T, d_model]
        rope = self._rope(input_ids.shape[1], x.device, x.dtype)
        for layer in self.layers:
            x = layer(x, rope=rope)
        return self._logits(x[:, -1:] if last_only else x)

    def allocate_cache(self, batch: int, max_len: int, dtype: torch.dtype | None = None) -> Cache:
        dtype = dtype or self.embedding.weight.dtype
        return allocate(self.cfg, batch, max_len, dtype, self.embedding.weight.device)

    def prefill(self, input_ids: torch.Tensor, cache: Cache) -> torch.Tensor:
        """Run the prompt from position 0, filling the cache. input_ids [B, T] -> logits [B, 1, V]
        of the last position; afterwards cache.pos == T."""
        B, T = input_ids.shape
        if B != cache.batch or T > cache.max_len:
            raise ValueError(
                f"prefill of [{B}, {T}] tokens does not fit a cache of batch "
                f"{cache.batch} and max_len {cache.max_len}"
            )
        cache.reset()
        x = self.embedding(input_ids)
        rope = self._rope(T, x.device, x.dtype)
        for layer, c in zip(self.layers, cache.layers, strict=True):
            x = layer(x, rope=rope, cache=c)
        cache.pos.fill_(T)
        return self._logits(x[:, -1:])

    def step(self, input_ids: torch.Tensor, cache: Cache) -> torch.Tensor:
        """One decode step at position cache.pos: input_ids [B, 1] -> logits [B, 1, V].
        No host syncs and no shape changes, so it can be captured in a CUDA graph. The caller
        keeps cache.pos < max_len (a step beyond the buffer fails in index_copy_)."""
        x = self.embedding(input_ids)  # [B, 1, d_model]
        # RoPE at this position, once for every attention layer (a step is launch-bound at
        # batch 1: per-layer recomputation cost ~6 small kernels a layer)
        rope = None
        if "A" in self.cfg.pattern:
            rope = rope_cos_sin(cache.pos, self.cfg.head_dim, self.cfg.rope_theta, x.dtype)
        if self.cfg.fused_decode and not torch.compiler.is_compiling():
            return self._fused_step(x, cache, rope)
        for layer, c in zip(self.layers, cache.layers, strict=True):
            x = layer.step(x, cache=c, pos=cache.pos, rope=rope)
        cache.pos.add_(1)
        return self._logits(x)

    def _fused_step(self, x: torch.Tensor, cache: Cache, rope) -> torch.Tensor:
        """Model.step with each residual add fused into the next layer's RMSNorm (and the last
        into the final norm): the same sums and norms, fewer launches (kernels/norm)."""
        from kernels.norm import add_rmsnorm

        h = None  # the last mixer's output, not yet added to the residual stream `x`
        for layer, c in zip(self.layers, cache.layers, strict=True):
            normed, x = add_rmsnorm(x if h is None else h, None if h is None else x,
                                    layer.norm.weight, layer.norm.eps)  # fmt: skip
            h = layer.mixer.step(normed, cache=c, pos=cache.pos, rope=rope)
        normed, _ = add_rmsnorm(h, x, self.norm_f.weight, self.norm_f.eps)
        cache.pos.add_(1)
        return self.lm_head(normed)
