"""A Point: one measurement at one setting. Frozen and hashable; its hash is the resume key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from harness import MEASURE_VERSION
from harness.units import format_length

Pairs = tuple[tuple[str, Any], ...]


def freeze(mapping: dict[str, Any] | None) -> Pairs:
    """dict -> sorted tuple of pairs, lists turned into tuples, so a Point stays hashable."""
    if not mapping:
        return ()
    return tuple(sorted((k, _freeze_value(v)) for k, v in mapping.items()))


def _freeze_value(v: Any) -> Any:
    if isinstance(v, dict):
        return freeze(v)
    if isinstance(v, list | tuple):
        return tuple(_freeze_value(x) for x in v)
    return v


@dataclass(frozen=True)
class Point:
    suite: str  # measurement module in suites/, e.g. "kernels"
    model: str  # model preset, or the op for kernel points
    size: str  # size preset ("" where it does not apply)
    context: int  # tokens
    batch: int
    dtype: str  # bfloat16 | float16 | float32
    device: str  # cuda | cpu
    backends: Pairs = ()  # (("attention", "cudnn"), ...)
    seed: int = 0
    params: Pairs = ()  # measurement-specific settings
    timing: Pairs = ()  # repetition settings (they change what is measured)

    @property
    def hash(self) -> str:
        payload = json.dumps(
            {"point": self.to_dict(), "measure_version": MEASURE_VERSION},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]

    def group(self) -> tuple:
        """Everything but the context length: the unit of the OOM-skip rule."""
        return tuple(getattr(self, f.name) for f in fields(self) if f.name != "context")

    def param(self, name: str, default: Any = None) -> Any:
        return dict(self.params).get(name, default)

    @property
    def backend_map(self) -> dict[str, str]:
        return dict(self.backends)

    def label(self) -> str:
        backends = f" [{','.join(v for _, v in self.backends)}]" if self.backends else ""
        # a starred size: shape overrides apply (tiny smoke models), not the preset's shape;
        # the quality suites train their own widths: the width, not the preset it is built from
        if self.param("width"):
            size = f" w{self.param('width')}"
        else:
            size = f" {self.size}{'*' if self.param('overrides') else ''}" if self.size else ""
        where = f"L={format_length(self.context)} B={self.batch}"
        phase = (
            f" ({self.param('phase')})" if self.param("phase") else ""
        )  # frontier's two searches
        return f"{self.suite}:{self.model}{size}{backends}{phase} {where}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for key in ("backends", "params", "timing"):
            d[key] = _thaw(getattr(self, key))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Point:
        d = dict(d)
        for key in ("backends", "params", "timing"):
            d[key] = freeze(d.get(key))
        return cls(**d)


def _thaw(pairs: Pairs) -> dict[str, Any]:
    out = {}
    for k, v in pairs:
        if isinstance(v, tuple) and v and all(isinstance(x, tuple) and len(x) == 2 for x in v):
            out[k] = _thaw(v)
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return out
