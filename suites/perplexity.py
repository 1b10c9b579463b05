"""Perplexity as bits per byte, by token position, on real long-form text.

Small byte-level language models (vocabulary 256: one token is one byte, so bits per byte is
tokenizer-free by construction) of each architecture are trained with the same token budget on
the training documents, then scored on windows of L bytes cut from held-out documents. The
loss of position t is bucketed by t, so "does the model use long context" is the slope across
buckets, and lengths beyond the training length show extrapolation.

One point per model x evaluation length; the points of a model share one trained model (cached
on disk by a key over every training and corpus setting). model=hf: a transformers checkpoint
(suite.model_overrides.hf_source), not trained, scored on the same windows with its own
tokenizer, by byte position (suites/quality/pretrained.py).

    make bench ARGS="suite=perplexity"
    make bench ARGS="suite=perplexity suite.perplexity.corpus.source=folder \
                     suite.perplexity.corpus.path=/data/books"

Record: metrics.bpb, metrics.bpb_by_bucket {"<start>-<end>": bpb} (positions [start, end)),
metrics.tokens (scored tokens), metrics.loss_curve, metrics.train_tokens, metrics.corpus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.point import Point
from suites.quality import points as Q
from suites.quality.corpus import CorpusConfig

USES_MODELS = True
VOCAB = 256  # bytes


@dataclass
class PerplexityConfig:
    models: list[str] | None = None  # null: the suite's models
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    lengths: list[Any] | None = None  # evaluation window lengths; null: the sweep's
    train_length: int = 1024
    width: int = 256
    n_layer: int = 8
    attn_head_dim: int = 64
    lr: float = 1e-3
    steps: int = 2000
    batch_size: int = 16
    warmup: float = 0.05
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_windows: int = 32  # windows of L bytes from the held-out documents
    buckets: list[int] | None = None  # position edges; null: 0, 64, 256, 1k, 4k, ... up to L
    eval_tokens: int = 65536  # tokens per evaluation batch
    model_overrides: dict[str, Any] = field(default_factory=dict)
    cache_dir: str = "~/.cache/ctxbench/data"


CONFIG = PerplexityConfig
TRAIN_KEYS = (
    "train_length",
    "width",
    "n_layer",
    "attn_head_dim",
    "lr",
    "steps",
    "batch_size",
    "warmup",
    "weight_decay",
    "grad_clip",
)


def bucket_edges(length: int, edges: list[int] | None = None) -> list[int]:
    """Position edges [0, e1, ..., length]: the given ones below length, or powers of 4 from 64."""
    if edges is None:
        edges, e = [0], 64
        while e < length:
            edges.append(e)
            e *= 4
    inner = sorted({int(e) for e in edges if 0 < int(e) < length})
    return [0, *inner, length]


def bits_per_byte(
    nll: np.ndarray, nbytes: np.ndarray | None = None, edges: list[int] | None = None
) -> dict[str, Any]:
    """nll [N, T]: natural-log loss of each predicted token; nbytes [N, T]: UTF-8 bytes each
    token stands for (None: one byte a token). bits per byte = sum(nll) / ln 2 / sum(bytes),
    overall and per position bucket [start, end). Returns {"bpb", "bpb_by_bucket", "tokens",
    "bytes"}."""
    nll = np.asarray(nll, dtype=np.float64)
    nbytes = np.ones_like(nll) if nbytes is None else np.asarray(nbytes, dtype=np.float64)
    if nll.shape != nbytes.shape or nll.ndim != 2:
        raise ValueError(f"nll {nll.shape} and nbytes {nbytes.shape} must be the same [N, T]")
    T = nll.shape[1]
    by_bucket = {}
    for a, b in zip(bucket_edges(T, edges)[:-1], bucket_edges(T, edges)[1:], strict=True):
        by_bucket[f"{a}-{b}"] = float(nll[:, a:b].sum() / math.log(2) / nbytes[:, a:b].sum())
    return {
        "bpb": float(nll.sum() / math.log(2) / nbytes.sum()),
        "bpb_by_bucket": by_bucket,
        "tokens": int(nll.size),
        "bytes": int(nbytes.sum()),
    }


def expand(ctx, models: list[str] | None = None, contexts: list[int] | None = None):
    """Points of this section; lm_eval calls it too (its own models and one length) so that
    its points name the same trained models."""
    from suites.modelbench import lengths

    cfg: PerplexityConfig = ctx.cfg.suite.perplexity
    contexts = contexts or lengths(cfg.lengths, "suite.perplexity.lengths") or ctx.contexts
    shared = {k: getattr(cfg, k) for k in TRAIN_KEYS}
    shared.update(
        corpus=vars(cfg.corpus),
        eval_windows=cfg.eval_windows,
        buckets=cfg.buckets,
        eval_tokens=cfg.eval_tokens,
        cache_dir=cfg.cache_dir,
    )
    return [
        Q.point(ctx, "perplexity", name, L, cfg.batch_size, {**shared, "overrides": ovr})
        for name in (models or Q.model_names(ctx, cfg.models))
        for ovr in [Q.model_overrides(ctx, name, cfg.model_overrides)]
        for L in contexts
    ]


def _model_overrides(point: Point) -> dict[str, Any]:
    return Q.tiny_overrides(point, vocab_size=VOCAB)


def _corpus_config(point: Point) -> CorpusConfig:
    raw = {k: (list(v) if isinstance(v, tuple) else v) for k, v in point.param("corpus")}
    return CorpusConfig(**raw)


def preflight(point: Point, ctx) -> str | None:
    from suites.quality import pretrained, tiny

    if point.model == "hf":  # a checkpoint, scored as it is (suites/quality/pretrained.py)
        return Q.backend_reason(point) or pretrained.check(Q.thaw_overrides(point))
    return Q.backend_reason(point) or tiny.check(point.model, point.size, _model_overrides(point))


def train_windows(corpus, length: int, count: int, seed: int):
    """`count` random [length + 1] byte windows of the training documents -> inputs, labels."""
    import torch

    data = np.frombuffer(b"\n\n".join(corpus.train), dtype=np.uint8)
    if len(data) <= length + 1:
        raise ValueError(f"training text ({len(data)} bytes) shorter than a window of {length}")
    starts = np.random.default_rng(seed).integers(0, len(data) - length - 1, size=count)
    win = torch.from_numpy(np.stack([data[s : s + length + 1] for s in starts]).astype(np.int64))
    return win[:, :-1], win[:, 1:]


def eval_windows(corpus, length: int, count: int) -> np.ndarray:
    """Up to `count` non-overlapping [length + 1] windows from the held-out documents, in order,
    each starting fresh (position 0 has no context)."""
    out = []
    for doc in corpus.eval:
        arr = np.frombuffer(doc, dtype=np.uint8)
        for s in range(0, len(arr) - length - 1 + 1, length):
            out.append(arr[s : s + length + 1])
            if len(out) == count:
                return np.stack(out)
    if not out:
        raise ValueError(f"held-out documents are all shorter than {length + 1} bytes")
    return np.stack(out)


def _train_key(point: Point) -> dict[str, Any]:
    return {
        **{k: point.param(k) for k in TRAIN_KEYS},
        "corpus": vars(_corpus_config(point)),
        "model": point.model,
        "size": point.size,
        "overrides": _model_overrides(point),
        "device": point.device,
        "backends": dict(point.backends),
        "seed": point.seed,
    }


def _train(point: Point, corpus, device: str):
    import torch

    from suites.training import train

    T, steps, bs = point.param("train_length"), point.param("steps"), point.param("batch_size")
    x, y = train_windows(corpus, T, steps * bs, point.seed)
    torch.manual_seed(point.seed)
    model, notes = Q.build_tiny(point, device, _model_overrides(point))
    cfg = Q.train_config(point, point.param("lr"))
    # windows are drawn at random already: take them in order, batch by batch
    batches = ((x[s : s + bs], y[s : s + bs]) for s in range(0, steps * bs, bs))
    result = train(model, batches, cfg, device)
    keys = ("loss_curve", "final_loss", "tokens", "seconds", "step_mode", "graph_error")
    info = {k: result.get(k) for k in keys}
    info.update(model=notes, corpus=corpus.info, train_bytes_available=corpus.train_bytes)
    info["epochs"] = result["tokens"] / max(1, corpus.train_bytes)
    return model.state_dict(), info


def position_nll(model, windows: np.ndarray, batch: int, device: str) -> np.ndarray:
    """windows [N, L + 1] bytes -> nll [N, L] (nats) of predicting byte t+1 from bytes <= t."""
    import torch
    import torch.nn.functional as F

    out = []
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device == "cuda")
    with torch.no_grad():
        for s in range(0, len(windows), batch):
            w = torch.from_numpy(windows[s : s + batch].astype(np.int64)).to(device)
            with autocast:
                logits = model(w[:, :-1])
            nll = F.cross_entropy(logits.float().transpose(1, 2), w[:, 1:], reduction="none")
            out.append(nll.cpu().numpy())
    return np.concatenate(out)


def trained(point: Point, device: str, corpus=None):
    """(state_dict, training info, trained_here) of this point's model: cached or trained now."""
    from suites.quality import corpus as C
    from suites.quality.cache import cached_state

    corpus = corpus or C.load(_corpus_config(point))
    # the content's digest too: a changed folder or dataset must not reuse an old model
    key = {**_train_key(point), "corpus_sha256_16": corpus.info["sha256_16"]}
    build = lambda: _train(point, corpus, device)  # noqa: E731
    return cached_state("lm-model", key, build, point.param("cache_dir"))


def run(point: Point) -> dict[str, Any]:
    from suites.quality import corpus as C
    from suites.quality import tiny

    device = tiny.device_of(point)
    corpus = C.load(_corpus_config(point))
    if point.model == "hf":
        from suites.quality import pretrained

        windows = eval_windows(corpus, point.context, point.param("eval_windows"))
        return pretrained.run(point, corpus, windows, Q.thaw_overrides(point), device)
    state, info, trained_here = trained(point, device, corpus)
    model, notes = Q.build_tiny(point, device, _model_overrides(point))
    model.load_state_dict(state)
    model.eval()
    L = point.context
    windows = eval_windows(corpus, L, point.param("eval_windows"))
    nll = position_nll(model, windows, max(1, point.param("eval_tokens") // L), device)
    edges = point.param("buckets")
    scores = bits_per_byte(nll, None, list(edges) if edges else None)
    return {
        "metrics": {
            **scores,
            "windows": len(windows),
            "train_length": point.param("train_length"),
            "beyond_training": L > point.param("train_length"),
            "loss_curve": info["loss_curve"],
            "final_loss": info["final_loss"],
            "train_tokens": info["tokens"],
            "train_epochs": info["epochs"],
            "train_s": info["seconds"] if trained_here else 0.0,
            "train_step_mode": info.get("step_mode"),  # cuda_graph or eager
            "graph_error": info.get("graph_error"),
            "trained_here": trained_here,
            "params": notes["params"],
            "corpus": corpus.info,
        },
        "model": {**notes, "overrides": _model_overrides(point)},
        "backends_ran": notes["kernel_backends"],
    }
