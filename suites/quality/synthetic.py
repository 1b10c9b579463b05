"""Synthetic recall data: MQAR (Zoology's multi-query associative recall) and a key-value needle
in a haystack. Pure functions of their parameters and seed (numpy's PCG64), vectorised so that
100k examples take seconds; `load_*` wraps them in the parameter-keyed `datasets` cache.

Every example is (inputs [T], labels [T]): labels[t] is the token the model must predict after
reading inputs[: t + 1], or IGNORE (-100) where there is nothing to score.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from suites.quality.cache import cached_arrays

IGNORE = -100


def _distinct_rows(rng: np.random.Generator, n: int, pool: int, k: int, chunk: int = 2048):
    """[n, k] ints, each row k distinct values from range(pool) in uniformly random order.

    Few keys from a large pool (Zoology: 16 of 4095): iid draws, rows with a repeat drawn again
    (rejection keeps the law uniform). Otherwise the k smallest of `pool` uniform draws per row,
    in chunks so memory stays at chunk x pool."""
    if k * 4 <= pool:
        out = rng.integers(pool, size=(n, k))
        while True:
            s = np.sort(out, axis=1)
            bad = np.flatnonzero((s[:, 1:] == s[:, :-1]).any(axis=1))
            if not len(bad):
                return out
            out[bad] = rng.integers(pool, size=(len(bad), k))
    out = np.empty((n, k), dtype=np.int64)
    for s0 in range(0, n, chunk):
        m = min(chunk, n - s0)
        noise = rng.random((m, pool))
        order = np.argsort(noise, axis=1)[:, :k]
        out[s0 : s0 + m] = order
    return out


def _weighted_distinct_rows(rng: np.random.Generator, n: int, weights: np.ndarray, k: int):
    """[n, k] distinct indices per row, drawn without replacement with probability ~ weights
    (Gumbel top-k: the same law as numpy's choice(replace=False, p=weights), vectorised)."""
    keys = np.log(weights)[None, :] - np.log(-np.log(rng.random((n, len(weights)))))
    return np.argsort(-keys, axis=1)[:, :k]


@dataclass(frozen=True)
class MQARSpec:
    """Zoology's `multiquery_ar` parameters. Keys come from [1, vocab/2), values from
    [vocab/2, vocab); the gap from the end of the key-value block to a key's query follows a
    power law (p(g) ~ power_a * g^(power_a - 1)), so most queries are near, some far."""

    num_examples: int
    seq_len: int
    kv_pairs: int
    vocab_size: int = 8192
    power_a: float = 0.01
    random_non_queries: bool = True
    seed: int = 0

    def check(self) -> str | None:
        """Why these parameters cannot make data (None if they can)."""
        if self.seq_len % 2:
            return f"seq_len must be even, got {self.seq_len}"
        if 4 * self.kv_pairs > self.seq_len:
            return f"kv_pairs={self.kv_pairs} needs seq_len >= {4 * self.kv_pairs}"
        if self.vocab_size // 2 - 1 < self.kv_pairs or self.vocab_size <= self.seq_len:
            return f"vocab_size={self.vocab_size} too small for seq_len/kv_pairs"
        return None


def mqar(spec: MQARSpec) -> dict[str, np.ndarray]:
    """-> {"inputs": [N, seq_len] int32, "labels": [N, seq_len] int32}."""
    reason = spec.check()
    if reason:
        raise ValueError(f"mqar: {reason}")
    rng = np.random.default_rng(spec.seed)
    n, k, L = spec.num_examples, spec.kv_pairs, spec.seq_len
    context = 2 * k
    half = spec.vocab_size // 2
    keys = _distinct_rows(rng, n, half - 1, k) + 1  # [N, k] in [1, half)
    values = _distinct_rows(rng, n, spec.vocab_size - half, k) + half  # [N, k] in [half, vocab)
    kvs = np.stack([keys, values], axis=2).reshape(n, context)  # k0 v0 k1 v1 ...

    space = (L - context) // 2  # query slots: even offsets after the key-value block
    p = spec.power_a * np.arange(1, space + 1) ** (spec.power_a - 1)
    gaps = _weighted_distinct_rows(rng, n, p / p.sum(), k)  # [N, k]
    rows = np.arange(n)[:, None]
    queries = np.zeros((n, L - context + 1), dtype=np.int64)
    queries[rows, 2 * gaps] = keys
    examples = np.concatenate([kvs, queries], axis=1)  # [N, L + 1]
    labels = np.full((n, L + 1), IGNORE, dtype=np.int64)
    labels[rows, 2 * gaps + context + 1] = values
    inputs, labels = examples[:, :-1], labels[:, 1:]  # next-token: the value is due at its key
    if spec.random_non_queries:
        noise = rng.integers(spec.vocab_size, size=inputs.shape)
        inputs = np.where(inputs == 0, noise, inputs)
    return {"inputs": inputs.astype(np.int32), "labels": labels.astype(np.int32)}


# NIAH vocabulary: 0 pad, 1 needle marker, 2 query marker, then keys, values, filler.
NEEDLE, QUERY, FIRST = 1, 2, 3
NEEDLE_LEN = 3  # NEEDLE key value
QUERY_LEN = 2  # QUERY key  (the value is due after the key)


@dataclass(frozen=True)
class NIAHSpec:
    """A haystack of random filler tokens holding `needles` key-value needles
    ([NEEDLE, key, value], distinct keys), followed by one query [QUERY, key] per needle in random
    order. The target needle (needle 0) sits at `depth` (0 = start of the haystack, 1 = end; None:
    uniform, for training); the others at random places. `label_all`: score every query
    (training) or only the target's (evaluation of one depth)."""

    num_examples: int
    length: int
    vocab_size: int = 512
    needles: int = 4
    depth: float | None = None
    label_all: bool = True
    seed: int = 0

    @property
    def n_keys(self) -> int:
        return (self.vocab_size - FIRST) // 4  # keys and values a quarter each, filler half

    @property
    def haystack(self) -> int:
        return self.length - QUERY_LEN * self.needles

    def check(self) -> str | None:
        slots = self.haystack // NEEDLE_LEN
        if slots < self.needles:
            return f"length {self.length} too short for {self.needles} needles"
        if self.n_keys < self.needles:
            return f"vocab_size={self.vocab_size} too small for {self.needles} distinct keys"
        if self.depth is not None and not 0.0 <= self.depth <= 1.0:
            return f"depth must be in [0, 1], got {self.depth}"
        return None


def niah(spec: NIAHSpec) -> dict[str, np.ndarray]:
    """-> {"inputs", "labels": [N, length] int32, "target_pos": [N] start of the target needle}."""
    reason = spec.check()
    if reason:
        raise ValueError(f"niah: {reason}")
    rng = np.random.default_rng(spec.seed)
    n, m, nk = spec.num_examples, spec.needles, spec.n_keys
    filler_lo = FIRST + 2 * nk
    inputs = rng.integers(filler_lo, spec.vocab_size, size=(n, spec.length))
    labels = np.full((n, spec.length), IGNORE, dtype=np.int64)
    keys = _distinct_rows(rng, n, nk, m) + FIRST  # [N, m]
    values = rng.integers(nk, size=(n, m)) + FIRST + nk  # [N, m]

    # The haystack is cut into needle-sized slots; needles take distinct slots.
    slots = spec.haystack // NEEDLE_LEN
    chosen = _distinct_rows(rng, n, slots, m)  # [N, m]
    if spec.depth is not None:
        target = round(spec.depth * (slots - 1))
        # move whichever needle drew the target slot out of the way, then pin needle 0 there
        clash = chosen[:, 1:] == target
        chosen[:, 1:][clash] = chosen[:, :1].repeat(m - 1, axis=1)[clash]
        chosen[:, 0] = target
    rows = np.arange(n)[:, None]
    start = chosen * NEEDLE_LEN  # [N, m]
    inputs[rows, start] = NEEDLE
    inputs[rows, start + 1] = keys
    inputs[rows, start + 2] = values

    order = np.argsort(rng.random((n, m)), axis=1)  # query order
    q0 = spec.haystack + QUERY_LEN * np.arange(m)[None, :]  # [1, m] query starts
    inputs[rows, q0] = QUERY
    inputs[rows, q0 + 1] = np.take_along_axis(keys, order, axis=1)
    answer = np.take_along_axis(values, order, axis=1)
    if spec.label_all:
        labels[rows, q0 + 1] = answer
    else:
        is_target = order == 0
        labels[rows, q0 + 1] = np.where(is_target, answer, IGNORE)
    return {
        "inputs": inputs.astype(np.int32),
        "labels": labels.astype(np.int32),
        "target_pos": start[:, 0].astype(np.int32),
    }


def _load(kind: str, spec: Any, fn, cache_dir: str) -> tuple[dict[str, np.ndarray], dict]:
    return cached_arrays(kind, asdict(spec), lambda: fn(spec), cache_dir)


def load_mqar(spec: MQARSpec, cache_dir: str):
    """(arrays, {"cache_key", "from_cache"}) through the cache."""
    return _load("mqar", spec, mqar, cache_dir)


def load_niah(spec: NIAHSpec, cache_dir: str):
    return _load("niah", spec, niah, cache_dir)
