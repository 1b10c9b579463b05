"""Interop with transformers checkpoints.

- `load_hf(path_or_repo_id)`: a Llama/Mistral (`LlamaForCausalLM`, `MistralForCausalLM`), Mamba
  (`MambaForCausalLM`) or Mamba-2 (`Mamba2ForCausalLM`) checkpoint -> the native model, same
  logits as transformers' implementation. Anything else fails, naming what is supported.
- `model=hf` (`build_hf`): any transformers causal LM run as it is, random-initialised from its
  config or with its weights, behind the same interface (forward, allocate_cache, prefill, step).
  Its decode keeps transformers' own cache and a host-side position, so it is not graph-capturable.
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import torch
from torch import nn

from models.config import ModelConfig

SUPPORTED = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "mamba": "MambaForCausalLM",
    "mamba2": "Mamba2ForCausalLM",
}


def _unsupported(source: str, what: str) -> ValueError:
    return ValueError(
        f"load_hf({source!r}): {what}. load_hf converts "
        + ", ".join(f"{v} (model_type {k!r})" for k, v in SUPPORTED.items())
        + f"; to run any other transformers model as it is, use "
        f"models.create('hf', hf_source={source!r})"
    )


def _require(ok: bool, source: str, what: str) -> None:
    if not ok:
        raise _unsupported(source, what)


def _hf_config(source: str):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise ValueError(
            f"load_hf({source!r}): not a transformers checkpoint (expected a folder or "
            f"hub id with a config.json): {exc}"
        ) from exc


# ---- transformers config -> ModelConfig, and state-dict key mapping ---------------------------


def _rope_theta(hf, source: str) -> float:
    params = getattr(hf, "rope_parameters", None) or {}
    scaling = getattr(hf, "rope_scaling", None) or {}
    kind = params.get("rope_type", scaling.get("rope_type", scaling.get("type", "default")))
    _require(kind == "default", source, f"RoPE scaling {kind!r} is not implemented natively")
    return float(params.get("rope_theta", getattr(hf, "rope_theta", 10000.0)))


def _llama(hf, source: str) -> ModelConfig:
    _require(hf.hidden_act == "silu", source, f"hidden_act {hf.hidden_act!r} (expected silu)")
    _require(not getattr(hf, "attention_bias", False), source, "attention_bias=True")
    _require(not getattr(hf, "mlp_bias", False), source, "mlp_bias=True")
    _require(
        getattr(hf, "sliding_window", None) is None,
        source,
        f"sliding-window attention (sliding_window={getattr(hf, 'sliding_window', None)})",
    )
    L = hf.num_hidden_layers
    return ModelConfig(
        name=f"hf-{hf.model_type}",
        d_model=hf.hidden_size,
        n_layer=2 * L,
        pattern="A-" * L,
        vocab_size=hf.vocab_size,
        tie_embeddings=bool(hf.tie_word_embeddings),
        norm_eps=hf.rms_norm_eps,
        heads=hf.num_attention_heads,
        kv_heads=hf.num_key_value_heads or hf.num_attention_heads,
        head_dim=getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads,
        rope_theta=_rope_theta(hf, source),
        d_ff=hf.intermediate_size,
    )


def _llama_keys(hf_sd: dict, cfg: ModelConfig) -> dict:
    sd = {
        "embedding.weight": hf_sd["model.embed_tokens.weight"],
        "norm_f.weight": hf_sd["model.norm.weight"],
    }
    for i in range(cfg.n_layer // 2):
        p, a, m = f"model.layers.{i}.", f"layers.{2 * i}.", f"layers.{2 * i + 1}."
        sd[a + "norm.weight"] = hf_sd[p + "input_layernorm.weight"]
        sd[a + "mixer.wqkv.weight"] = torch.cat(
            [hf_sd[p + f"self_attn.{n}_proj.weight"] for n in "qkv"], dim=0
        )
        sd[a + "mixer.wo.weight"] = hf_sd[p + "self_attn.o_proj.weight"]
        sd[m + "norm.weight"] = hf_sd[p + "post_attention_layernorm.weight"]
        for n in ("gate", "up", "down"):
            sd[m + f"mixer.{n}.weight"] = hf_sd[p + f"mlp.{n}_proj.weight"]
    return sd


def _check_mamba_common(hf, source: str) -> None:
    _require(hf.hidden_act == "silu", source, f"hidden_act {hf.hidden_act!r} (expected silu)")
    _require(not hf.use_bias, source, "use_bias=True (projection biases)")
    _require(hf.use_conv_bias, source, "use_conv_bias=False")


def _mamba(hf, source: str) -> ModelConfig:
    _check_mamba_common(hf, source)
    L = hf.num_hidden_layers
    return ModelConfig(
        name="hf-mamba",
        d_model=hf.hidden_size,
        n_layer=L,
        pattern="S" * L,
        vocab_size=hf.vocab_size,
        tie_embeddings=bool(hf.tie_word_embeddings),
        norm_eps=hf.layer_norm_epsilon,
        expand=hf.expand,
        d_conv=hf.conv_kernel,
        d_state_m1=hf.state_size,
        dt_rank=int(hf.time_step_rank),
        d_ff=1,
    )


def _mamba2(hf, source: str) -> ModelConfig:
    _check_mamba_common(hf, source)
    limit = tuple(getattr(hf, "time_step_limit", (0.0, math.inf)))
    _require(limit == (0.0, math.inf), source, f"time_step_limit {limit} (dt clamping)")
    _require(
        hf.num_heads * hf.head_dim == hf.expand * hf.hidden_size,
        source,
        "num_heads * head_dim != expand * hidden_size (an extra MLP in in_proj)",
    )
    L = hf.num_hidden_layers
    return ModelConfig(
        name="hf-mamba2",
        d_model=hf.hidden_size,
        n_layer=L,
        pattern="M" * L,
        vocab_size=hf.vocab_size,
        tie_embeddings=bool(hf.tie_word_embeddings),
        norm_eps=hf.layer_norm_epsilon,
        expand=hf.expand,
        d_conv=hf.conv_kernel,
        headdim=hf.head_dim,
        d_state=hf.state_size,
        ngroups=hf.n_groups,
        chunk_size=hf.chunk_size,
        d_ff=1,
    )


MIXER_KEYS = {  # native name -> transformers name, inside layers.{i}.mixer
    "S": [
        "in_proj.weight",
        "x_proj.weight",
        "dt_proj.weight",
        "dt_proj.bias",
        "A_log",
        "D",
        "out_proj.weight",
    ],
    "M": ["in_proj.weight", "dt_bias", "A_log", "D", "norm.weight", "out_proj.weight"],
}


def _mamba_keys(hf_sd: dict, cfg: ModelConfig) -> dict:
    sd = {
        "embedding.weight": hf_sd["backbone.embeddings.weight"],
        "norm_f.weight": hf_sd["backbone.norm_f.weight"],
    }
    for i, letter in enumerate(cfg.pattern):
        p, n = f"backbone.layers.{i}.", f"layers.{i}."
        sd[n + "norm.weight"] = hf_sd[p + "norm.weight"]
        for k in MIXER_KEYS[letter]:
            sd[n + "mixer." + k] = hf_sd[p + "mixer." + k]
        sd[n + "mixer.conv_weight"] = hf_sd[p + "mixer.conv1d.weight"][:, 0]  # [C, 1, W] -> [C, W]
        sd[n + "mixer.conv_bias"] = hf_sd[p + "mixer.conv1d.bias"]
    return sd


CONVERT = {
    "llama": (_llama, _llama_keys),
    "mistral": (_llama, _llama_keys),
    "mamba": (_mamba, _mamba_keys),
    "mamba2": (_mamba2, _mamba_keys),
}


def load_hf(source: str, device="cpu", dtype=torch.float32, backends=None):
    """A transformers checkpoint (local folder or hub id) -> the native model with its weights."""
    from transformers import AutoModelForCausalLM

    from models.stack import CPU_DEFAULTS, CUDA_DEFAULTS, Model

    hf_cfg = _hf_config(str(source))
    kind = getattr(hf_cfg, "model_type", None)
    _require(kind in CONVERT, str(source), f"model_type {kind!r} is not supported")
    to_cfg, to_keys = CONVERT[kind]
    cfg = to_cfg(hf_cfg, str(source))
    hf_model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
    hf_sd = hf_model.state_dict()
    if not cfg.tie_embeddings:
        lm_head = hf_sd["lm_head.weight"]
    del hf_model
    sd = to_keys(hf_sd, cfg)
    sd["lm_head.weight"] = sd["embedding.weight"] if cfg.tie_embeddings else lm_head
    defaults = CUDA_DEFAULTS if torch.device(device).type == "cuda" else CPU_DEFAULTS
    model = Model(cfg, device="meta", dtype=dtype, backends={**defaults, **(backends or {})})
    model.to_empty(device=device)
    if cfg.tie_embeddings:
        model.lm_head.weight = model.embedding.weight
    model.load_state_dict(sd, strict=True)
    model.source = str(source)
    return model.eval()


# ---- model=hf: any transformers causal LM, as it is -----------------------------------------


class HFCache:
    """transformers' own cache object (created by the first forward) and the host position."""

    def __init__(self, batch: int, max_len: int):
        self.batch, self.max_len, self.pos, self.hf = batch, max_len, 0, None

    def rewind(self, to: int) -> bool:
        """Never (transformers' caches differ by model): the prefill canary prefills again."""
        return False

    def nbytes(self) -> dict[str, int]:
        total = sum(t.numel() * t.element_size() for t in _tensors(self.hf))
        return {"kv_cache": total, "ssm_state": 0, "conv_state": 0, "total": total}


def _tensors(obj, depth=0):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif depth < 4 and isinstance(obj, list | tuple):
        for o in obj:
            yield from _tensors(o, depth + 1)
    elif depth < 4 and hasattr(obj, "__dict__"):
        for o in vars(obj).values():
            yield from _tensors(o, depth + 1)


class HFModel(nn.Module):
    def __init__(self, cfg: ModelConfig, hf_model):
        super().__init__()
        # the checkpoint's vocabulary, not the preset's: the suites draw token ids below it
        head = hf_model.get_output_embeddings()
        vocab = head.weight.shape[0] if head is not None else cfg.vocab_size
        self.cfg, self.hf = dataclasses.replace(cfg, vocab_size=vocab), hf_model
        params = inspect.signature(hf_model.forward).parameters
        # transformers renamed the cache argument over versions: `past_key_values`, Mamba's
        # `cache_params`, then (5.2x) `cache`; the old names are still accepted there but ignored
        # on output, so use the newest one the model's forward names.
        names = ("cache", "cache_params", "past_key_values")
        self._cache_kw = next((n for n in names if n in params), "past_key_values")

    def forward(self, input_ids: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        out = self.hf(input_ids=input_ids, use_cache=False, logits_to_keep=1 if last_only else 0)
        return out.logits

    def allocate_cache(self, batch: int, max_len: int, dtype=None) -> HFCache:
        return HFCache(batch, max_len)

    def _run(self, ids: torch.Tensor, cache: HFCache) -> torch.Tensor:
        T = ids.shape[1]
        positions = torch.arange(cache.pos, cache.pos + T, device=ids.device)
        out = self.hf(
            input_ids=ids,
            use_cache=True,
            logits_to_keep=1,
            cache_position=positions,
            **({self._cache_kw: cache.hf} if cache.hf is not None else {}),
        )
        cache.hf = next(
            (
                c
                for c in (out.get(n) for n in ("cache", "cache_params", "past_key_values"))
                if c is not None
            ),
            None,
        )
        cache.pos += T
        return out.logits

    def prefill(self, input_ids: torch.Tensor, cache: HFCache) -> torch.Tensor:
        cache.hf, cache.pos = None, 0
        return self._run(input_ids, cache)

    def step(self, input_ids: torch.Tensor, cache: HFCache) -> torch.Tensor:
        return self._run(input_ids, cache)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.hf.parameters())

    def cost(self):
        return self.cfg.cost()

    def kernel_backends(self) -> dict[str, str]:
        from transformers.utils import import_utils as iu

        fast = {
            name: getattr(iu, f"is_{name}_available", lambda: False)()
            for name in ("mamba_ssm", "causal_conv1d", "flash_attn_2")
        }
        return {
            "attention": str(self.hf.config._attn_implementation),
            "fast_kernels": ",".join(k for k, v in fast.items() if v) or "none",
            "decode": "transformers-cache (not graph-capturable)",
        }


def build_hf(cfg: ModelConfig, device="cpu", dtype=torch.float32, meta=False) -> HFModel:
    from transformers import AutoModelForCausalLM

    hf_cfg = _hf_config(cfg.hf_source)
    if meta:
        with torch.device("meta"):
            return HFModel(cfg, AutoModelForCausalLM.from_config(hf_cfg, dtype=dtype))
    if cfg.hf_weights == "pretrained":
        model = AutoModelForCausalLM.from_pretrained(cfg.hf_source, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_config(hf_cfg, dtype=dtype)
    return HFModel(cfg, model.to(device).eval())
