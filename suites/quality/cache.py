"""Disk caches keyed by every parameter that shapes their content.

- `cached_arrays`: generated data sets, stored with `datasets` (save_to_disk / load_from_disk).
- `cached_state`: trained model weights plus the training record, so that the points of one
  trained model (NIAH cells, perplexity lengths) train once and every record still carries the
  loss curve.

The key is a hash of the parameters (and a version bumped when generation code changes meaning):
change any parameter and a new entry is made; the old one is left alone. Writes go to a
temporary name and are renamed into place, so a killed worker never leaves a half entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

DATA_VERSION = 1  # bump when a generator's output changes for the same parameters


def cache_key(kind: str, params: dict[str, Any]) -> str:
    payload = json.dumps({"kind": kind, "version": DATA_VERSION, **params}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def resolve_dir(cache_dir: str) -> Path:
    path = Path(os.path.expanduser(cache_dir))
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_arrays(
    kind: str,
    params: dict[str, Any],
    build: Callable[[], dict[str, np.ndarray]],
    cache_dir: str,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays for (kind, params): loaded from the cache or built, saved, returned.

    build() -> {"inputs": [N, T] ints, "labels": [N, T] ints, ...}. Returns the arrays and
    {"cache_key", "from_cache"} for the record.
    """
    import datasets

    datasets.disable_progress_bars()
    key = cache_key(kind, params)
    path = resolve_dir(cache_dir) / f"{kind}-{key}"
    if path.exists():
        ds = datasets.load_from_disk(str(path))
        arrays = {name: _column(ds, name) for name in ds.column_names}
        return arrays, {"cache_key": key, "from_cache": True}
    arrays = build()
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    datasets.Dataset.from_dict(arrays).save_to_disk(str(tmp))
    (tmp / "params.json").write_text(json.dumps({"kind": kind, **params}, indent=1))
    try:
        os.replace(tmp, path)
    except OSError:  # another worker finished the same entry first: theirs is identical
        shutil.rmtree(tmp, ignore_errors=True)
    return arrays, {"cache_key": key, "from_cache": False}


def _column(ds, name: str) -> np.ndarray:
    """A column -> [N] or (equal-length rows) [N, T] array, straight from Arrow (no per-row
    Python)."""
    col = ds.data.column(name).combine_chunks()
    if not hasattr(col, "flatten"):  # scalars per row
        return col.to_numpy()
    flat = col.flatten().to_numpy()
    return flat.reshape(len(col), -1) if len(col) else flat.reshape(0, 0)


def cached_state(
    kind: str,
    params: dict[str, Any],
    build: Callable[[], tuple[dict[str, Any], dict[str, Any]]],
    cache_dir: str,
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(state_dict, info) for (kind, params), from the cache or from build(); plus whether it was
    built here. info must be JSON-serialisable (it is the training record)."""
    import torch

    path = resolve_dir(cache_dir) / f"{kind}-{cache_key(kind, params)}.pt"
    if path.exists():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        return blob["state"], json.loads(blob["info"]), False
    state, info = build()
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    cpu_state = {k: v.detach().to("cpu") for k, v in state.items()}
    torch.save({"state": cpu_state, "info": json.dumps(info), "params": json.dumps(params)}, tmp)
    os.replace(tmp, path)
    return state, info, True
