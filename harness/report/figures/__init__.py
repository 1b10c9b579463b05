"""Every figure of a report, in reading order: speed, memory, quality, kernels.

Figures are inline SVG (matplotlib, deterministic ids, no dates). Each has units on its axes, a
legend naming the kernel backend of each line, and failed points marked instead of dropped.

Drawing is most of a render's time, so the figure makers run in forked worker processes while the
caller computes crossovers and the ledger; results are collected in a fixed order, so the page does
not depend on which worker finished first. Where fork is unavailable they run in order, inline.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from harness.report.facts import Facts
from harness.report.figures import kernels, memory, quality, speed
from harness.report.figures.base import Figure

SECTIONS = [
    ("Speed", [speed.ttft, speed.decode, speed.throughput, speed.utilization, speed.energy]),
    ("Memory", [memory.vram, memory.frontier]),
    ("Quality", [quality.mqar, quality.niah, quality.perplexity]),
    ("Kernels", [kernels.fastest, kernels.per_op]),
]
MAKERS = [(section, make) for section, makers in SECTIONS for make in makers]

_FACTS: Facts | None = None  # what forked workers read: inherited, never pickled


def _make(i: int) -> tuple[list[Figure], list[str]]:
    facts = _FACTS
    before = len(facts.notes)
    figs = MAKERS[i][1](facts)
    made = facts.notes[before:]
    del facts.notes[before:]  # notes travel with the result, the same inline or from a worker
    return figs, made


class Pending:
    """Figures being drawn; `result()` -> ([(section, figures)] without empty sections, notes)."""

    def __init__(self, facts: Facts, workers: int | None = None):
        global _FACTS
        self.facts = facts
        workers = workers if workers is not None else min(os.cpu_count() or 1, 4)
        self.pool = None
        if workers > 1 and "fork" in multiprocessing.get_all_start_methods():
            _FACTS = facts
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            # the slow makers first, so the two-core case ends together
            order = sorted(
                range(len(MAKERS)), key=lambda i: MAKERS[i][1] not in (kernels.per_op, memory.vram)
            )
            self.futures = {i: self.pool.submit(_make, i) for i in order}

    def result(self) -> tuple[list[tuple[str, list[Figure]]], list[str]]:
        global _FACTS
        if self.pool is not None:
            try:
                done = [self.futures[i].result() for i in range(len(MAKERS))]
            finally:
                self.pool.shutdown()
                _FACTS = None
        else:
            _FACTS = self.facts
            done = [_make(i) for i in range(len(MAKERS))]
            _FACTS = None
        sections: dict[str, list[Figure]] = {}
        notes: list[str] = []
        for (section, _), (figs, made_notes) in zip(MAKERS, done, strict=True):
            sections.setdefault(section, []).extend(figs)
            notes.extend(made_notes)
        return [(s, f) for s, f in sections.items() if f], notes


def all_figures(facts: Facts, workers: int | None = 1) -> list[tuple[str, list[Figure]]]:
    """[(section, figures)] with empty sections left out; notes land in facts.notes."""
    sections, notes = Pending(facts, workers).result()
    facts.notes.extend(notes)
    return sections


__all__ = ["Figure", "Pending", "all_figures"]
