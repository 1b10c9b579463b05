"""Trainable models for the quality suites: a preset (conf/model) scaled down to a width and depth
that train in minutes, plus the evaluation helpers they share.

The presets keep their architecture (layer letters, attention ratio, MLP or not, Mamba's
expand/d_state); only the shape is overridden. Hybrids are checked to really be hybrids at the
chosen depth: `hybrid_1_7` at 4 layers rounds to no attention layer, and a point that says
"hybrid" must not silently measure pure Mamba-2.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from suites.training import IGNORE

# Presets whose pattern must contain both attention and SSM layers.
HYBRIDS = ("hybrid_1_7", "hybrid_30", "nemotron_h_like")


def overrides(
    preset: str,
    width: int,
    n_layer: int,
    vocab_size: int,
    attn_head_dim: int = 64,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """ModelConfig overrides for a tiny `preset`: d_model=width, multi-head attention with heads
    of attn_head_dim (at least one head); everything else (Mamba expand, d_state, headdim) as
    the preset has it. `extra` (per-preset overrides from the suite config) comes last."""
    heads = max(1, width // attn_head_dim)
    out: dict[str, Any] = {
        "d_model": width,
        "n_layer": n_layer,
        "vocab_size": vocab_size,
        "heads": heads,
        "kv_heads": heads,
    }
    out.update(extra or {})
    return out


def check(preset: str, size: str, ovr: dict[str, Any]) -> str | None:
    """Why this tiny model cannot be built or would not be what its name says (None: fine)."""
    import models

    if preset == "hf":
        return (
            "a transformers checkpoint is not trained here: the quality suites score it as it "
            "is (suites/quality/pretrained.py; lm_eval with weights=pretrained)"
        )
    try:
        cfg = models.config(preset, size, **ovr)
    except ValueError as exc:
        return f"model {preset} with {ovr}: {exc}"
    if preset in HYBRIDS and ("A" not in cfg.pattern or not set("MS") & set(cfg.pattern)):
        return (
            f"{preset} at n_layer={cfg.n_layer} has pattern {cfg.pattern!r}, not a hybrid; "
            f"raise n_layer for it (model_overrides.{preset}.n_layer)"
        )
    return None


def build(preset: str, size: str, ovr: dict[str, Any], device: str, backends: dict[str, str]):
    """The model in fp32 (master weights; training autocasts to bf16 on a GPU).

    On CPU, Mamba-1's `torch` scan is the step-by-step reference (one Python step per token,
    ~10x slower to train than the rest); it is swapped for the chunked torch scan, the same
    recurrence in ~3 sqrt(T) batched steps (kernels/selective_scan/chunked.py, the backward of
    the Triton scan). Returns (model, notes) with notes for the record.
    """
    import models

    model = models.create(
        preset, size, device=device, dtype=torch.float32, backends=backends, **ovr
    )
    notes: dict[str, Any] = {"pattern": model.cfg.pattern, "params": model.num_params()}
    if device == "cpu" and "S" in model.cfg.pattern and model.backends.get("ssm") == "torch":
        from kernels.selective_scan.chunked import selective_scan_chunked

        for layer in model.layers:
            if layer.letter == "S":
                layer.mixer.scan = selective_scan_chunked
        notes["mamba1_scan"] = "chunked torch (CPU training)"
    notes["kernel_backends"] = model.kernel_backends()
    return model, notes


@torch.no_grad()
def accuracy(
    model, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int, device: str
) -> tuple[float, int]:
    """Share of scored positions (labels != IGNORE) where the argmax is the label; and how many
    positions were scored. inputs, labels: [N, T]."""
    model.eval()
    hits = total = 0
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    for s in range(0, inputs.shape[0], batch_size):
        x = inputs[s : s + batch_size].to(device)
        y = labels[s : s + batch_size].to(device)
        with autocast:
            logits = model(x)
        mask = y != IGNORE
        hits += int((logits.argmax(-1)[mask] == y[mask]).sum())
        total += int(mask.sum())
    if total == 0:
        raise ValueError("no scored positions in the evaluation set")
    return hits / total, total


def tensors(arrays: dict, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """numpy inputs/labels -> int64 tensors (the first n rows)."""
    x = torch.from_numpy(arrays["inputs"][:n].astype(np.int64))  # a writable int64 copy
    y = torch.from_numpy(arrays["labels"][:n].astype(np.int64))
    return x, y


def device_of(point) -> str:
    return "cuda" if point.device == "cuda" else "cpu"
