"""The cost model of model=hf (models/hf.py): parameters counted exactly, FLOPs and memory
approximated from the checkpoint's config."""

from __future__ import annotations

import torch

from models.config import ModelConfig
from models.hf import _hf_config


class HFCost:
    """A rough cost model for model=hf (the native CostModel needs the native layer pattern).

    Parameters are counted exactly (on the meta device). FLOPs: 2 * non-embedding parameters per
    token plus the causal attention term of every module whose class name ends in "Attention";
    memory: weights, that KV cache, and 16 d_model-wide activations per token. SSM states are not
    modelled (0): treat predictions for SSM and hybrid checkpoints as a lower bound."""

    approximate = True

    def __init__(self, cfg: ModelConfig):
        from transformers import AutoModelForCausalLM

        self.hf_cfg = _hf_config(cfg.hf_source).get_text_config()
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(_hf_config(cfg.hf_source))
        emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
        total = sum(p.numel() for p in model.parameters())
        self.n_attn = sum(type(m).__name__.endswith("Attention") for m in model.modules())
        self._params = {"embedding": emb.numel(), "lm_head": 0 if head is emb else head.numel()}
        self._params["other"] = total - sum(self._params.values())
        self._params["total"] = total
        c = self.hf_cfg
        self.d = c.hidden_size
        self.heads = getattr(c, "num_attention_heads", 0) or 0
        self.kv_heads = getattr(c, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(c, "head_dim", None) or (self.d // self.heads if self.heads else 0)
        self.vocab = c.vocab_size

    def params(self) -> dict[str, int]:
        return dict(self._params)

    def _dense(self) -> float:
        return 2.0 * (self._params["total"] - self._params["embedding"])

    def prefill_flops(self, batch: int, L: int) -> float:
        attn = self.n_attn * 4 * self.heads * self.head_dim * L * L / 2
        return batch * (L * self._dense() + attn)

    def decode_flops(self, batch: int, L: int) -> float:
        return batch * (self._dense() + self.n_attn * 4 * self.heads * self.head_dim * (L + 1))

    def decode_bytes(self, batch: int, L: int, dtype) -> float:
        from models.cost import nbytes_of

        b = nbytes_of(dtype)
        kv = self.n_attn * 2 * batch * self.kv_heads * self.head_dim * (L + 2) * b
        return float(self._params["total"] * b + kv)

    def memory(self, batch: int, L: int, dtype, phase: str = "prefill") -> dict[str, int]:
        from models.cost import WORKSPACE, nbytes_of

        b = nbytes_of(dtype)
        kv = (
            0
            if phase == "prefill"
            else self.n_attn * 2 * batch * self.kv_heads * self.head_dim * L * b
        )
        out = {
            "weights": self._params["total"] * b,
            "kv_cache": kv,
            "ssm_state": 0,
            "conv_state": 0,
            "activations": 16 * batch * L * self.d * b + WORKSPACE,
        }
        out["total"] = sum(out.values())
        return out
