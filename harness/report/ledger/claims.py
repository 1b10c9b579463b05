"""Claims files: conf/claims.yaml (shipped) plus any the user adds (`--claims FILE`, or the run's
config `run.claims`). A later file's claim replaces an earlier one with the same id. A file that
cannot be read, or an entry without an id, becomes a ledger row saying so: it never stops the
report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from harness.env import REPO_ROOT

SHIPPED = REPO_ROOT / "conf" / "claims.yaml"


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    source: str = ""
    quantity: str = ""
    condition: str = ""
    expect: Any = None
    measure: Any = None  # user claims: a measurement dict, or {expect key: dict or [dicts]}
    origin: str = ""  # file name it came from
    error: str = ""  # why it could not be read (then it is untestable)


@dataclass
class ClaimSet:
    claims: list[Claim] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def _entry(raw: Any, origin: str, index: int) -> Claim:
    if not isinstance(raw, dict) or not raw.get("id"):
        return Claim(
            id=f"{origin}#{index + 1}",
            text=str(raw)[:200],
            origin=origin,
            error="entry has no id (each claim needs id, text and expect)",
        )
    return Claim(
        id=str(raw["id"]),
        text=str(raw.get("text", "")),
        source=str(raw.get("source", "")),
        quantity=str(raw.get("quantity", "")),
        condition=str(raw.get("condition", "")),
        expect=raw.get("expect"),
        measure=raw.get("measure"),
        origin=origin,
    )


def load(paths: list[Path | str]) -> ClaimSet:
    out = ClaimSet()
    by_id: dict[str, Claim] = {}
    for path in paths:
        path = Path(path)
        origin = path.name
        out.files.append(str(path))
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            entries = doc.get("claims") if isinstance(doc, dict) else None
            if not isinstance(entries, list):
                raise ValueError("top level must be a mapping with a `claims:` list")
        except (OSError, ValueError, yaml.YAMLError) as exc:
            c = Claim(
                id=f"{origin}",
                text="(file could not be read)",
                origin=origin,
                error=f"{path}: {exc.__class__.__name__}: {exc}",
            )
            by_id[c.id] = c
            continue
        for i, raw in enumerate(entries):
            c = _entry(raw, origin, i)
            by_id.pop(c.id, None)  # a redefinition moves to where it was last defined
            by_id[c.id] = c
    out.claims = list(by_id.values())
    return out
