"""ModelConfig: one validated dataclass describes every native model (Transformer, Mamba, hybrid).

A model is a preset (conf/model/<name>.yaml: the architecture) at a size (conf/size/<size>.yaml:
the shape), plus overrides. `config(name, size, **overrides)` merges them in that order, resolves
the derived fields (the layer pattern, `kv_heads: null`, `d_ff: auto`) and validates once.

The layer pattern uses Megatron's hybrid notation, one letter per layer, each layer being
`x = x + mixer(norm(x))`:  A attention, M Mamba-2, S Mamba-1 (selective scan), - SwiGLU MLP.
A Llama block is therefore two layers ("A-"), and a size's `n_layer` counts layers in that sense:
Mamba-2 1.3B has 48 "M" layers, the Transformer at that size 24 "A-" blocks (48 layers).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

CONF = Path(__file__).resolve().parents[1] / "conf"
LETTERS = {"A": "attention", "M": "mamba2", "S": "mamba1", "-": "mlp"}
MIXERS = ("M", "S")
# Fields that define a shape: overriding one means the model is no longer the size's shape, so
# neither the size's parameter count nor its d_ff apply (d_ff becomes "auto": 8/3 d_model, as
# SwiGLU models use, unless given).
SHAPE_FIELDS = ("d_model", "n_layer", "vocab_size", "pattern", "heads", "kv_heads", "expand")


@dataclass
class ModelConfig:
    name: str = "custom"
    size: str = ""
    # shape
    d_model: int = 2048
    n_layer: int = 48  # layers in Megatron's counting (len(pattern))
    vocab_size: int = 50280
    tie_embeddings: bool = True
    norm_eps: float = 1e-5
    # layer pattern: explicit, or generated from attn_ratio / mixer / mlp (see `make_pattern`)
    pattern: str = ""
    attn_ratio: float = 0.0  # share of mixer layers that are attention
    mixer: str = "M"  # the SSM letter of generated patterns: M (Mamba-2) or S (Mamba-1)
    mlp: bool = False  # generated patterns put an MLP layer after every mixer
    # attention (Llama-style: RoPE, GQA, no biases)
    heads: int = 16
    kv_heads: int | None = None  # None: multi-head attention (kv_heads = heads)
    head_dim: int = 0  # 0: d_model // heads
    rope_theta: float = 10000.0
    # MLP (SwiGLU)
    d_ff: int | str = "auto"  # "auto": match target_params (or 8/3 d_model when there is none)
    # Mamba-2 and Mamba-1 share expand and d_conv
    expand: int = 2
    d_conv: int = 4
    headdim: int = 64  # Mamba-2
    d_state: int = 128  # Mamba-2
    ngroups: int = 1  # Mamba-2
    chunk_size: int = 256  # Mamba-2 SSD chunk
    d_state_m1: int = 16  # Mamba-1
    dt_rank: int = 0  # Mamba-1; 0: ceil(d_model / 16)
    ssm_state_dtype: str = "float32"  # dtype of the decode-time SSM state
    # Attention decode step over the static KV cache: "triton" (kernels.decode_attention, split-KV
    # flash decoding), "matmul" (two batched matrix products), "split_s" (the probabilities x V
    # product split along the cache), or "auto": triton on a GPU, matmul on the CPU. The record's
    # kernel_backends names the one that ran (models/README.md, "Attention decode step").
    decode_attention: str = "auto"
    # Decode step with its small ops fused into Triton kernels: each residual add and the next
    # RMSNorm (kernels.norm, ~6 fewer launches a layer), Mamba-2's gated output norm (~9 fewer)
    # and, in attention layers, RoPE with the KV-cache write (kernels.rope_step, ~15 fewer); a
    # step at batch 1 is launch-bound. Off in the model; the decode and throughput suites turn
    # it on for their GPU points (suite.decode.fused, suite.throughput.fused; the published H200
    # run measured without it). Needs CUDA (or Triton's interpreter); a compiled step keeps the
    # torch ops for inductor to fuse.
    fused_decode: bool = False
    # The decode step's one-row products (projections, MLP, lm_head): "cublas" (F.linear) or
    # "triton" (kernels.gemv, models/linear.py): cuBLAS's batch-1 GEMVs read the weights at about
    # half the H200's bandwidth, and they are most of a 1.3B model's step (models/README.md).
    decode_gemv: str = "cublas"
    # runtime
    seq_chunk: int = 65536  # no-grad forward runs MLPs over this many tokens at a time
    target_params: float = 0.0  # the size's parameter count this model is matched to
    init_std: float = 0.02
    # model=hf only: any transformers causal LM, as it is
    hf_source: str = ""  # a local folder or a hub id
    hf_weights: str = "random"  # random | pretrained

    def __post_init__(self):
        if self.name == "hf":
            _check(bool(self.hf_source), "hf_source", "model=hf needs hf_source=<folder or hub id>")
            _check(
                self.hf_weights in ("random", "pretrained"),
                "hf_weights",
                f"must be 'random' or 'pretrained', got {self.hf_weights!r}",
            )
            return
        for name in (
            "d_model",
            "vocab_size",
            "heads",
            "expand",
            "d_conv",
            "headdim",
            "d_state",
            "ngroups",
            "chunk_size",
            "d_state_m1",
            "seq_chunk",
        ):
            _check(
                int(getattr(self, name)) == getattr(self, name) and getattr(self, name) > 0,
                name,
                f"must be a positive integer, got {getattr(self, name)!r}",
            )
        _check(self.mixer in MIXERS, "mixer", f"must be one of {MIXERS}, got {self.mixer!r}")
        _check(
            isinstance(self.fused_decode, bool),
            "fused_decode",
            f"must be true or false, got {self.fused_decode!r}",
        )
        _check(
            self.decode_gemv in DECODE_GEMV,
            "decode_gemv",
            f"must be one of {DECODE_GEMV}, got {self.decode_gemv!r}",
        )
        _check(
            self.decode_attention in DECODE_ATTENTION,
            "decode_attention",
            f"must be one of {DECODE_ATTENTION}, got {self.decode_attention!r}",
        )
        _check(
            0.0 <= self.attn_ratio <= 1.0, "attn_ratio", f"must be in [0, 1], got {self.attn_ratio}"
        )
        if not self.pattern:
            self.pattern = make_pattern(self.n_layer, self.attn_ratio, self.mixer, self.mlp)
        bad = sorted(set(self.pattern) - set(LETTERS))
        _check(
            not bad,
            "pattern",
            f"unknown letter(s) {bad} in {self.pattern!r}; valid letters: "
            + ", ".join(f"{k} ({v})" for k, v in LETTERS.items()),
        )
        _check(
            self.n_layer == len(self.pattern),
            "n_layer",
            f"{self.n_layer} != len(pattern) = {len(self.pattern)}",
        )
        if self.kv_heads is None:
            self.kv_heads = self.heads
        _check(
            self.kv_heads > 0 and self.heads % self.kv_heads == 0,
            "kv_heads",
            f"heads ({self.heads}) must be divisible by kv_heads ({self.kv_heads})",
        )
        if self.head_dim == 0:
            _check(
                self.d_model % self.heads == 0,
                "heads",
                f"d_model ({self.d_model}) must be divisible by heads ({self.heads})",
            )
            self.head_dim = self.d_model // self.heads
        _check(self.head_dim % 2 == 0, "head_dim", f"must be even for RoPE, got {self.head_dim}")
        _check(
            self.d_inner % self.headdim == 0,
            "headdim",
            f"d_inner (expand*d_model = {self.d_inner}) must be divisible by headdim "
            f"({self.headdim})",
        )
        _check(
            self.nheads_ssm % self.ngroups == 0,
            "ngroups",
            f"Mamba-2 heads ({self.nheads_ssm}) must be divisible by ngroups ({self.ngroups})",
        )
        if self.dt_rank == 0:
            self.dt_rank = math.ceil(self.d_model / 16)
        if self.d_ff == "auto":
            self.d_ff = solve_d_ff(self)
        _check(
            isinstance(self.d_ff, int) and self.d_ff > 0,
            "d_ff",
            f"must be a positive integer or 'auto', got {self.d_ff!r}",
        )
        _check(
            self.ssm_state_dtype in ("float32", "bfloat16", "float16"),
            "ssm_state_dtype",
            f"must be float32, bfloat16 or float16, got {self.ssm_state_dtype!r}",
        )

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def nheads_ssm(self) -> int:
        return self.d_inner // self.headdim

    def count(self, letter: str) -> int:
        return self.pattern.count(letter)

    def build(self, device="cpu", dtype=None, backends: dict[str, str] | None = None, meta=False):
        """Allocate the model (random weights). meta=True: shapes only, no memory (7B, 70B)."""
        import torch

        dtype = dtype or torch.float32
        if self.name == "hf":
            from models.hf import build_hf

            return build_hf(self, device=device, dtype=dtype, meta=meta)
        from models.stack import Model

        return Model(self, device="meta" if meta else device, dtype=dtype, backends=backends)

    def cost(self):
        """The analytic cost model (models/cost.py); model=hf gets hf_cost.HFCost, an
        approximation."""
        if self.name == "hf":
            from models.hf_cost import HFCost

            return HFCost(self)
        from models.cost import CostModel

        return CostModel(self)

    def to_dict(self) -> dict:
        return asdict(self)


DECODE_ATTENTION = ("auto", "triton", "matmul", "split_s")
DECODE_GEMV = ("cublas", "triton")  # models/linear.py


def _check(ok: bool, field_name: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{field_name}: {message}")


def make_pattern(n_layer: int, attn_ratio: float, mixer: str, mlp: bool) -> str:
    """Mixer layers with attention evenly spaced among them, an MLP after each mixer if `mlp`.

    With mlp, n_layer must be even (n_layer // 2 mixers). Attention layer i of k sits at mixer
    index floor((i + 1/2) * n_mixers / k): centred in its share, so 3 of 24 land at 4, 12, 20
    (Jamba puts its one attention layer in the middle of each 8-layer block, too).
    """
    _check(n_layer > 0, "n_layer", f"must be positive, got {n_layer}")
    _check(
        not mlp or n_layer % 2 == 0,
        "n_layer",
        f"must be even when every mixer is followed by an MLP, got {n_layer}",
    )
    n_mix = n_layer // 2 if mlp else n_layer
    n_attn = round(attn_ratio * n_mix)
    attn_at = {int((i + 0.5) * n_mix / n_attn) for i in range(n_attn)} if n_attn else set()
    mixers = ["A" if i in attn_at else mixer for i in range(n_mix)]
    return "".join(m + "-" for m in mixers) if mlp else "".join(mixers)


def solve_d_ff(cfg: ModelConfig) -> int:
    """The d_ff (a multiple of 64) that puts the total parameter count nearest target_params."""
    n_mlp = cfg.count("-")
    if n_mlp == 0:
        return 4 * cfg.d_model  # unused: no MLP layers
    if cfg.target_params <= 0:
        return 64 * math.ceil(8 * cfg.d_model / 3 / 64)
    from models.cost import param_counts

    base = param_counts(cfg, d_ff=0)["total"]
    per_unit = n_mlp * 3 * cfg.d_model  # params per unit of d_ff
    d_ff = 64 * round((cfg.target_params - base) / per_unit / 64)
    _check(
        cfg.d_model // 2 <= d_ff <= 8 * cfg.d_model,
        "d_ff",
        f"'auto' cannot match {cfg.target_params:.3g} parameters with pattern {cfg.pattern!r} "
        f"at d_model {cfg.d_model} (it would need d_ff = {d_ff}); set d_ff explicitly",
    )
    return d_ff


# ---------------------------------------------------------------------------------------------
# Presets (conf/model) and sizes (conf/size)

SIZE_ONLY_KEYS = ("name", "published")  # size YAML keys that are not ModelConfig fields


def preset_names() -> list[str]:
    return sorted(p.stem for p in (CONF / "model").glob("*.yaml"))


def size_names() -> list[str]:
    return sorted((p.stem for p in (CONF / "size").glob("*.yaml")), key=_size_order)


def _size_order(name: str) -> float:
    scale = {"m": 1e6, "b": 1e9}
    try:
        return float(name[:-1]) * scale[name[-1].lower()]
    except (KeyError, ValueError):
        return float("inf")


def load_yaml(kind: str, name: str) -> dict:
    valid = preset_names() if kind == "model" else size_names()
    if name not in valid:
        what = "model preset" if kind == "model" else "size"
        raise ValueError(f"unknown {what} {name!r}; valid names: {', '.join(valid)}")
    return yaml.safe_load((CONF / kind / f"{name}.yaml").read_text()) or {}


def size_info(size: str) -> dict:
    """The size YAML as written (includes `published`: parameter counts of published models)."""
    return load_yaml("size", size)


def config(name: str, size: str = "1.3b", **overrides) -> ModelConfig:
    """Preset `name` at `size`, with overrides (any ModelConfig field). Validated, not allocated."""
    preset = load_yaml("model", name)
    shape = {k: v for k, v in load_yaml("size", size).items() if k not in SIZE_ONLY_KEYS}
    if "params" in shape:
        shape["target_params"] = float(shape.pop("params"))
    valid = {f.name for f in fields(ModelConfig)}
    for source, keys in (
        ("conf/model/" + name, preset),
        ("conf/size/" + size, shape),
        ("overrides", overrides),
    ):
        unknown = sorted(set(keys) - valid)
        _check(
            not unknown,
            unknown[0] if unknown else "",
            f"unknown field(s) {unknown} in {source}; valid fields: {', '.join(sorted(valid))}",
        )
    merged = {**shape, **preset, **overrides, "name": name, "size": size}
    if any(k in overrides for k in SHAPE_FIELDS):
        # Not the size's shape any more: neither its parameter count nor its d_ff apply.
        merged["target_params"] = overrides.get("target_params", 0.0)
        merged["d_ff"] = overrides.get("d_ff", "auto")
    if "pattern" in overrides and "n_layer" not in overrides:
        merged["n_layer"] = len(overrides["pattern"])
    elif merged.get("pattern") and "n_layer" not in overrides:
        merged["n_layer"] = len(merged["pattern"])
    return ModelConfig(**merged)


def create(
    name: str, size: str = "1.3b", device="cpu", dtype=None, backends=None, meta=False, **overrides
):
    return config(name, size, **overrides).build(
        device=device, dtype=dtype, backends=backends, meta=meta
    )


__all__ = ["ModelConfig", "config", "create", "preset_names", "size_names", "size_info"]
