"""Progress: a live bar and a table of recent points on a terminal, one plain line otherwise."""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from harness.units import format_length

STYLE = {
    "ok": "green",
    "skipped": "dim",
    "deferred": "dim",
    "oom": "yellow",
    "invalid_output": "magenta",
}


def headline(result: dict[str, Any]) -> str:
    """The one number worth printing for a finished point."""
    m = result.get("metrics") or {}
    if m.get("time_ms") is not None:
        extra = f", batch {m['batch']}" if "batch" in m else ""
        return f"{m['time_ms']:.3f} ms{extra}"
    if m.get("accuracy") is not None:  # mqar, niah
        return f"accuracy {m['accuracy']:.1%}"
    if m.get("bpb") is not None:  # perplexity
        return f"{m['bpb']:.3f} bits per byte"
    if m.get("passkey_by_length") or m.get("rolling_bpb") is not None:  # lm_eval
        keys = ", ".join(f"{k} {v:.0%}" for k, v in (m.get("passkey_by_length") or {}).items())
        bpb = m.get("rolling_bpb")
        return "; ".join(x for x in (keys and f"passkey {keys}", bpb and f"{bpb:.3f} bpb") if x)
    if m.get("max_context"):
        top, ff = format_length(m["max_context"]), m.get("first_failure")
        if ff is None:
            return f"runs up to {top} (the search's maximum)"
        why = m.get("failure_status") or "fails"
        why = "time limit" if m.get("limited_by") == "time" else why
        probes = f", {m['probes_run']} probes" if "probes_run" in m else ""
        return f"runs up to {top}; {format_length(ff)}: {why}{probes}"
    peaks = [m[k]["peak_allocated_bytes"] for k in ("prefill_memory", "decode_memory") if k in m]
    if peaks and all(p is not None for p in peaks):
        return "peak " + " / ".join(f"{p / 1e9:.2f} GB" for p in peaks)
    return result.get("reason", "").splitlines()[0][:120] if result.get("reason") else ""


class PlainProgress:
    def __init__(self, total: int, console: Console):
        self.total, self.done, self.console = total, 0, console
        self.counts: Counter[str] = Counter()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def point(self, label: str, status: str, detail: str) -> None:
        self.done += 1
        self.counts[status] += 1
        line = f"[{self.done}/{self.total}] {status:<14} {label}  {detail}"
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def message(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


class RichProgress(PlainProgress):
    def __init__(self, total: int, console: Console):
        super().__init__(total, console)
        self.bar = Progress(
            TextColumn("[bold]ctxbench"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
        )
        self.task = self.bar.add_task("points", total=total)
        self.rows: list[tuple[str, str, str]] = []
        self.live = Live(self._render(), console=console, refresh_per_second=4)

    def _render(self):
        table = Table(show_header=True, header_style="bold", expand=False)
        for col in ("status", "point", "result"):
            table.add_column(col)
        for status, label, detail in self.rows[-12:]:
            table.add_row(f"[{STYLE.get(status, 'red')}]{status}", label, detail)
        return Group(table, self.bar)

    def __enter__(self):
        self.live.__enter__()
        return self

    def __exit__(self, *exc):
        self.live.__exit__(*exc)

    def point(self, label: str, status: str, detail: str) -> None:
        self.done += 1
        self.counts[status] += 1
        self.rows.append((status, label, detail))
        self.bar.advance(self.task)
        self.live.update(self._render())

    def message(self, text: str) -> None:
        self.live.console.print(text, markup=False, highlight=False)


def make(total: int, mode: str = "auto") -> PlainProgress:
    console = Console(stderr=False)
    rich_mode = mode == "rich" or (mode == "auto" and sys.stdout.isatty())
    return RichProgress(total, console) if rich_mode else PlainProgress(total, console)
