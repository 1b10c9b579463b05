"""A transformers checkpoint (model=hf, suite.model_overrides.hf_source) in the perplexity suite:
scored as it is, with its own tokenizer, on the same held-out byte windows as the models trained
here, in bits per byte by byte position, so the two line up whatever the tokenizer.

Each window's bytes are decoded as UTF-8 (a character cut at the window's edge, or any invalid
byte, is dropped: the bytes scored are the decoded text's), tokenized without special tokens,
and prefixed with the tokenizer's BOS (else EOS) so that the first token is predicted too. A
token's loss and its bytes (to the next token's start) are counted at the byte where it starts. A
window longer than the checkpoint's positions is an error, never silently truncated.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def source(overrides: dict[str, Any]) -> str:
    return str(overrides.get("hf_source") or "")


def check(overrides: dict[str, Any], tokens: int | None = None) -> str | None:
    """Why this checkpoint cannot be scored here (None: fine): none named, its config not
    readable, or sequences of `tokens` past its positions (a skip, not a failed point)."""
    if not source(overrides):
        return "model=hf needs a checkpoint: +suite.model_overrides.hf_source=<folder or hub id>"
    from pathlib import Path

    if tokens is None or not Path(source(overrides)).is_dir():
        return None  # a hub id is read in the worker, not here (no network wait in planning)
    try:
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(source(overrides)).get_text_config()
    except Exception as exc:  # a folder without a config
        return f"checkpoint {source(overrides)!r}: its config cannot be read ({exc})"
    return past_positions(tokens, getattr(cfg, "max_position_embeddings", None))


def past_positions(tokens: int, limit: int | None) -> str | None:
    if limit is not None and tokens > limit:
        return f"sequences of {tokens} tokens are past the checkpoint's {limit} positions"
    return None


def load_model(src: str, device: str, dtype=None):
    """(model, notes): the checkpoint's own weights, as it is; bf16 on a GPU (as the models
    trained here run) unless `dtype` says otherwise."""
    import torch

    import models

    dtype = dtype or (torch.bfloat16 if device == "cuda" else torch.float32)
    model = models.create("hf", hf_source=src, hf_weights="pretrained", device=device, dtype=dtype)
    model = model.eval()
    notes = {"weights": "pretrained", "hf_source": src, "params": model.num_params(),
             "kernel_backends": model.kernel_backends(), "trained_here": False}  # fmt: skip
    return model, notes


def load(src: str, device: str):
    """(model, fast tokenizer, notes): the checkpoint's own weights and tokenizer."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(src)
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"{src}: bits per byte by position needs a fast tokenizer (offsets)")
    model, notes = load_model(src, device)
    return model, tok, notes


def max_positions(model) -> int | None:
    cfg = model.hf.config.get_text_config()
    return getattr(cfg, "max_position_embeddings", None)


def window_scores(model, tok, window: bytes, device: str, limit: int | None):
    """-> (nll [n] nats at each token's first byte, bytes [n] that token's bytes there, tokens
    predicted), n the decoded text's UTF-8 bytes."""
    import torch
    import torch.nn.functional as F

    text = window.decode("utf-8", errors="ignore")
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    prefix = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    if prefix is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start a window")
    ids = [prefix, *enc["input_ids"]]
    too_long = past_positions(len(ids), limit)
    if too_long:
        raise ValueError(
            f"a window of {len(window)} bytes: {too_long}; lower suite.perplexity.lengths "
            "(no silent truncation)"
        )
    x = torch.tensor([ids], device=device)
    with torch.no_grad():
        logits, target = model(x)[0, :-1], x[0, 1:]
        # in slices: [tokens, vocabulary] in fp32 at once can be many GB
        parts = [
            F.cross_entropy(logits[s : s + 4096].float(), target[s : s + 4096], reduction="none")
            for s in range(0, logits.shape[0], 4096)
        ]
        nll = torch.cat(parts).cpu().numpy()
    # Each token owns the bytes from its start to the next token's (the first from byte 0, the
    # last to the end): every byte counted once, even where a tokenizer's offsets leave out
    # spaces or are empty; its loss and its bytes go to the position of its start, so a bucket
    # holds whole tokens.
    starts = np.concatenate([[0], np.cumsum([len(c.encode()) for c in text])])  # char -> byte
    n = int(starts[-1])
    lo = [int(starts[a]) for a, _ in enc["offset_mapping"]]
    for i in range(len(lo)):
        lo[i] = 0 if i == 0 else min(max(lo[i], lo[i - 1]), n)
    out, scored = np.zeros(n), np.zeros(n)
    for i, loss in enumerate(nll):
        end = lo[i + 1] if i + 1 < len(lo) else n
        if lo[i] < n:
            out[lo[i]] += loss
            scored[lo[i]] += end - lo[i]
        else:  # a trailing token past the last byte (none of its own): the last byte's
            out[n - 1] += loss
    return out, scored, len(nll)


def run(point, corpus, windows: np.ndarray, overrides: dict[str, Any], device: str) -> dict:
    """The perplexity record of a checkpoint: bits per byte overall and by byte-position bucket."""
    from suites.perplexity import bits_per_byte

    model, tok, notes = load(source(overrides), device)
    L, limit = point.context, max_positions(model)
    nll, scored, tokens = np.zeros((len(windows), L)), np.zeros((len(windows), L)), 0
    for i, w in enumerate(windows):
        a, s, n = window_scores(model, tok, bytes(w[:L]), device, limit)
        nll[i, : len(a)], scored[i, : len(s)] = a, s  # len <= L: invalid bytes are dropped
        tokens += n
    edges = point.param("buckets")
    scores = bits_per_byte(nll, scored, list(edges) if edges else None)
    scores["tokens"] = tokens  # tokens predicted (bits_per_byte counted byte positions)
    return {
        "metrics": {
            **scores,
            "windows": len(windows),
            "tokens_per_byte": tokens / scores["bytes"],
            "trained_here": False,
            "params": notes["params"],
            "corpus": corpus.info,
        },  # fmt: skip
        "model": notes,
        "backends_ran": notes["kernel_backends"],
    }


# ---- the synthetic recall tasks (mqar, niah) on a checkpoint, zero-shot ---------------------


def token_offset(checkpoint_vocab: int, task_vocab: int) -> int:
    """Where the task's token ids land in the checkpoint's vocabulary: its middle, away from the
    special and byte tokens a tokenizer puts first and the rare merges it puts last."""
    if task_vocab > checkpoint_vocab:
        raise ValueError(
            f"the task's vocabulary ({task_vocab}) is larger than the checkpoint's "
            f"({checkpoint_vocab}): lower its vocab_size"
        )
    return (checkpoint_vocab - task_vocab) // 2


def shift_tokens(x, y, offset: int):
    """Task ids -> checkpoint ids (labels IGNORE stay IGNORE)."""
    from suites.training import IGNORE

    return x + offset, y.where(y == IGNORE, y + offset)


def zero_shot(point, overrides: dict[str, Any], x, y, task_vocab: int, device: str) -> dict:
    """A synthetic recall task's test set scored on a checkpoint as it is (no training): the
    argmax over its whole vocabulary at every scored position, the task's ids moved into the
    middle of that vocabulary. -> the metrics and model notes of the record."""
    from suites.quality import tiny

    model, notes = load_model(source(overrides), device)
    too_long = past_positions(x.shape[1], max_positions(model))
    if too_long:
        raise ValueError(f"{too_long} (no silent truncation)")
    offset = token_offset(model.hf.config.get_text_config().vocab_size, task_vocab)
    xs, ys = shift_tokens(x, y, offset)
    acc, scored = tiny.accuracy(model, xs, ys, max(1, 65536 // x.shape[1]), device)
    metrics = {"accuracy": acc, "scored_positions": scored, "trained_here": False,
               "zero_shot": True, "token_offset": offset, "params": notes["params"]}  # fmt: skip
    return {"metrics": metrics, "model": notes, "backends_ran": notes["kernel_backends"]}
