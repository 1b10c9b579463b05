"""HTML ids, made in one place so figures, tables, crossovers and the ledger link to the same
targets. Ids are ASCII slugs: stable across renders and safe in a URL fragment."""

from __future__ import annotations

import re


def slug(*parts) -> str:
    text = "-".join(str(p) for p in parts if p not in (None, ""))
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def figure(
    kind: str, size: str = "", batch: int | None = None, dtype: str = "", variant: str = ""
) -> str:
    return "fig-" + slug(kind, size, f"b{batch}" if batch is not None else "", dtype, variant)


def point(hash_: str) -> str:
    return "pt-" + slug(hash_)


def claim(claim_id: str) -> str:
    return "claim-" + slug(claim_id)


POINTS = "points"  # the table of every point
CROSSOVERS = "crossovers"
LEDGER = "ledger"
COMPARE = "compare"
