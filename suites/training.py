"""The one training loop of the quality suites: AdamW, linear warmup then cosine decay, bf16
autocast on a GPU, gradient clipping, a loss curve for the record. Deterministic for a seed on
CPU (same seed, same batches, same losses), so a CPU test can pin it down.

On a GPU the whole step (forward, backward, clipping, AdamW) is captured once in a CUDA graph
after a few eager steps and replayed: the quality suites' models are tiny (0.1-8M parameters),
so an eager step is hundreds of launches of microsecond kernels and the host sets the pace
(7-43 ms a step on the H200 for 2-layer MQAR models). The math is the same (the learning rate
lives in a device tensor that the schedule fills; autocast without its weight-cast cache, which
capture does not allow), so the mode is an execution detail recorded with the result
(`step_mode`), not part of a point's identity. A capture that fails is recorded
(`graph_error`) and the loop goes on eagerly.

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
    cuda_graph: bool = True  # on a GPU: capture the step after `graph_warmup` eager steps
    graph_warmup: int = 3  # eager steps first (Triton JIT and autotune, optimizer state)

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


class _Graphed:
    """One training step captured in a CUDA graph, over static input buffers."""

    def __init__(self, model, opt, x, y, cfg: TrainConfig, autocast):
        self.x, self.y = x.clone(), y.clone()
        opt.zero_grad(set_to_none=True)  # backward allocates the grads in the graph's pool
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            with autocast:
                logits = model(self.x)
            self.loss = masked_loss(logits, self.y)
            self.loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != self.x.shape or y.shape != self.y.shape:
            raise ValueError(
                f"a CUDA-graph training step needs batches of one shape: captured "
                f"{tuple(self.x.shape)}, got {tuple(x.shape)} (TrainConfig.cuda_graph=false)"
            )
        self.x.copy_(x, non_blocking=True)
        self.y.copy_(y, non_blocking=True)
        self.graph.replay()
        return self.loss.detach().clone()


def train(
    model: torch.nn.Module,
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    cfg: TrainConfig,
    device: str = "cpu",
    on_log: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train `model` in place on `batches` ([B, T] inputs, [B, T] labels) for cfg.steps steps.

    Returns {"loss_curve": [[step, mean loss of the window], ...], "final_loss", "tokens",
    "supervised_tokens", "seconds", "step_mode", "config"} (+ "graph_error" if a capture
    failed). The loss is a mean over supervised positions.
    """
    model.train()
    graphed = device == "cuda" and cfg.cuda_graph and cfg.steps > cfg.graph_warmup
    lr: float | torch.Tensor = torch.tensor(cfg.lr, device=device) if graphed else cfg.lr
    opt = torch.optim.AdamW(
        _param_groups(model, cfg.weight_decay),
        lr=lr,
        betas=tuple(cfg.betas),
        # fused AdamW needs CUDA; foreach is the deterministic CPU path. Capturable keeps its
        # step count and learning rate on the device, as a replayed graph needs
        fused=device == "cuda",
        capturable=graphed,
    )
    autocast = torch.autocast(
        "cuda", dtype=torch.bfloat16, enabled=device == "cuda", cache_enabled=not graphed
    )
    side = torch.cuda.Stream() if graphed else None  # eager warmup off the default stream
    step_fn: _Graphed | None = None
    graph_error = None
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
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(lr_at(step, cfg))  # a queued fill, no host sync
            else:
                group["lr"] = lr_at(step, cfg)
        if graphed and step_fn is None and step == cfg.graph_warmup:
            try:
                step_fn = _Graphed(model, opt, x, y, cfg, autocast)
            except Exception as exc:  # noqa: BLE001 - recorded; the eager step is the same math
                graphed, graph_error = False, f"{type(exc).__name__}: {exc}"[:500]
                opt.zero_grad(set_to_none=True)
        if step_fn is not None:
            loss = step_fn(x, y)
        elif graphed:  # a warmup step, on a side stream as before any capture
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                loss = _eager_step(model, opt, x, y, cfg, autocast)
            torch.cuda.current_stream().wait_stream(side)
        else:
            loss = _eager_step(model, opt, x, y, cfg, autocast)
        window.append(loss)
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
    out = {
        "loss_curve": curve,
        "final_loss": curve[-1][1],
        "tokens": tokens,
        "supervised_tokens": int(supervised),
        "seconds": time.perf_counter() - t0,
        "step_mode": "cuda_graph" if step_fn is not None else "eager",
        "config": asdict(cfg),
    }
    if graph_error:
        out["graph_error"] = graph_error
    return out


def _eager_step(model, opt, x, y, cfg: TrainConfig, autocast) -> torch.Tensor:
    with autocast:
        logits = model(x)
    loss = masked_loss(logits, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    opt.step()
    return loss.detach()
