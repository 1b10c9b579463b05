"""Which architecture family a model preset belongs to, and how the report names it.

One registry, by preset name (conf/model/*.yaml). A preset missing here is its own family: it is
still plotted and tabled, but no family-level comparison (crossovers by family, claims) uses it.
"""

from __future__ import annotations

# preset -> (family, display name)
PRESETS: dict[str, tuple[str, str]] = {
    "transformer": ("transformer", "Transformer"),
    "transformer_mha": ("transformer", "Transformer (MHA)"),
    "mamba2": ("mamba2", "Mamba-2"),
    "mamba1": ("mamba1", "Mamba-1"),
    "hybrid_1_7": ("hybrid", "Hybrid 1:7"),
    "hybrid_30": ("hybrid", "Hybrid 30% attn"),
    "nemotron_h_like": ("hybrid", "Nemotron-H-like"),
    "hf": ("hf", "HF checkpoint"),
    # kernels suite: point.model is the op
    "attention": ("attention", "attention"),
    "ssd": ("ssd", "SSD (Mamba-2 scan)"),
    "selective_scan": ("selective_scan", "selective scan (Mamba-1)"),
    "conv1d": ("conv1d", "causal conv1d"),
}

# The preset a claim about "the Transformer" / "Mamba-2" means when a run has several of a family:
# the GQA Transformer is the one the sizes are matched to.
CANONICAL = {
    "transformer": "transformer",
    "mamba2": "mamba2",
    "mamba1": "mamba1",
    "hybrid": "hybrid_30",
}

# Kernel-level backends that never materialise the L x L attention matrix.
FLASH_CLASS = ("cudnn", "flash", "efficient", "flash_attn")

# Backend kinds that matter for each family (the legend names only these).
KINDS = {
    "transformer": ("attention",),
    "mamba2": ("ssm", "conv"),
    "mamba1": ("ssm", "conv"),
    "hybrid": ("attention", "ssm"),
}
# the decode step with its small ops fused (ModelConfig.fused_decode) and its one-row products
# on the Triton GEMV (decode_gemv), in every family's label: steps that differ there never share
# a legend entry
SHARED_KINDS = ("decode_fused", "decode_gemv")

OPS = ("attention", "ssd", "selective_scan", "conv1d")


def family(model: str) -> str:
    return PRESETS.get(model, (model, model))[0]


def name(model: str) -> str:
    return PRESETS.get(model, (model, model))[1]


def backend_label(model: str, backends: dict[str, str] | None) -> str:
    """'attention=cudnn' for a Transformer, 'conv=triton ssm=triton' for Mamba, 'triton' for a
    kernel op: what ran, where it matters for the family. Empty when nothing is known."""
    if not backends:
        return ""
    if model in OPS:
        return ",".join(v for _, v in sorted(backends.items()))
    kinds = KINDS.get(family(model))
    items = sorted(backends.items())
    if kinds:
        items = [(k, v) for k, v in items if k in (*kinds, *SHARED_KINDS)] or items
    return " ".join(f"{k}={v}" for k, v in items)


def series_label(model: str, size: str, backend: str) -> str:
    """Legend text: 'Mamba-2 1.3b [ssm=triton conv=triton]'."""
    text = name(model) + (f" {size}" if size else "")
    return f"{text} [{backend}]" if backend else text
