"""One sentence of the report's summary, with the anchor of where its numbers come from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Sentence:
    text: str
    anchor: str = ""
