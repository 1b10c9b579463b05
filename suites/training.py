"""The one training loop of the quality suites: AdamW, linear warmup then cosine decay, bf16
autocast on a GPU, gradient clipping, a loss curve for the record. Deterministic for a seed on
CPU (same seed, same batches, same losses), so a CPU test can pin it down.

    from suites.training import TrainConfig, train, shuffled_batches
    result = train(model, shuffled_batches(inputs, labels, 64, seed=0), TrainConfig(steps=200))
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

IGNORE = -100  # label of positions that carry no loss (the Zoology / HF convention)


@dataclass
class TrainConfig:
    steps: int = 1000
    lr: float = 1e-3
    warmup: float = 0.1  # share of the steps spent warming up linearly from 0
    min_lr_ratio: float = 0.1  # the cosine ends at lr * min_lr_ratio
    weight_decay: float = 0.1  # on matrices only; norms, biases and SSM scalars are not decayed
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    grad_clip: float = 1.0
    log_every: int = 10  # loss-curve resolution (steps); the logged value is the window's mean

    def __post_init__(self):
        if self.steps <= 0 or self.lr <= 0:
            raise ValueError(f"steps and lr must be positive, got {self.steps}, {self.lr}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup is a share of the steps in [0, 1), got {self.warmup}")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate before optimizer step `step` (0-based)."""
    warm = int(cfg.warmup * cfg.steps)
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = (step - warm) / max(1, cfg.steps - warm)
    cosine = 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return cfg.lr * (cfg.min_lr_ratio + (1.0 - cfg.min_lr_ratio) * cosine)


def shuffled_batches(
    inputs: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless epochs over [N, T] inputs/labels, reshuffled each epoch by a seeded generator."""
    n = inputs.shape[0]
    if n < batch_size:
        raise ValueError(f"{n} training examples are fewer than one batch of {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=gen)
        for s in range(0, n - batch_size + 1, batch_size):
            idx = order[s : s + batch_size]
            yield inputs[idx], labels[idx]


def masked_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """logits [B, T, V], labels [B, T] (IGNORE where no loss) -> mean cross-entropy, fp32."""
    return F.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE
    )


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, keep = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else keep).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": keep, "weight_decay": 0.0}]


def train(
    model: torch.nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    cfg: TrainConfig,
    device: str = "cpu",
    on_log: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train `model` in place on `batches` ([B, T] inputs, [B, T] labels) for cfg.steps steps.

    Returns {"loss_curve": [[step, mean loss of the window], ...], "final_loss", "tokens",
    "supervised_tokens", "seconds", "config"}. The loss is a mean over supervised positions.
    """
    model.train()
    opt = torch.optim.AdamW(
        _param_groups(model, cfg.weight_decay),
        lr=cfg.lr,
        betas=tuple(cfg.betas),
        # fused AdamW needs CUDA; foreach is the deterministic CPU path
        fused=device == "cuda",
    )
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    curve: list[list[float]] = []
    window: list[torch.Tensor] = []
    tokens = supervised = 0
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        x, y = next(batches)
        # counted before the copy, on the batch's own device: an int() of a GPU tensor here
        # would stop the host every step and leave the GPU idle while it queues the next one
        counted = (y != IGNORE).sum()
        supervised = supervised + counted
        if device == "cuda" and not x.is_cuda:
            # a copy from pageable memory blocks the host until the GPU has drained its queue;
            # from pinned memory it is queued like a kernel
            x, y = x.pin_memory(), y.pin_memory()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        with autocast:
            logits = model(x)
        loss = masked_loss(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        window.append(loss.detach())
        tokens += x.numel()
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            # one host sync per window, not per step
            mean = torch.stack(window).mean().item()
            if not math.isfinite(mean):
                raise FloatingPointError(f"training loss is {mean} at step {step + 1}")
            curve.append([step + 1, round(mean, 5)])
            window.clear()
            if on_log:
                on_log(step + 1, mean)
    model.eval()
    return {
        "loss_curve": curve,
        "final_loss": curve[-1][1],
        "tokens": tokens,
        "supervised_tokens": int(supervised),
        "seconds": time.perf_counter() - t0,
        "config": asdict(cfg),
    }
