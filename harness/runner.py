"""The orchestrator loop: for each planned point not already in the store, measure it in an
isolated worker, classify the outcome and append one record. It never initialises CUDA.

After an OOM (or a timeout) at length L, longer lengths of the same group are recorded as
`skipped` instead of being run: they would fail the same way, slower.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from harness.isolate import run_isolated
from harness.plan import Planned
from harness.point import Point
from harness.progress import PlainProgress, headline
from harness.store import Store, now_iso
from harness.units import format_length

FAILING = ("oom", "timeout")


class Runner:
    def __init__(
        self,
        store: Store,
        run_id: str,
        timeout_s: float,
        retry: list[str] | tuple[str, ...] = (),
        measure_fn: Callable[[Point, float], dict[str, Any]] = run_isolated,
    ):
        self.store, self.run_id, self.timeout_s = store, run_id, timeout_s
        self.retry = set(retry)
        self.measure_fn = measure_fn
        self.failed_at: dict[tuple, tuple[int, str]] = {}  # group -> (shortest failing L, status)

    def _remember_failure(self, point: Point, status: str) -> None:
        if status in FAILING:
            known = self.failed_at.get(point.group())
            if known is None or point.context < known[0]:
                self.failed_at[point.group()] = (point.context, status)

    def pending(self, planned: list[Planned]) -> list[Planned]:
        """Points without a complete record (or whose last status is in `retry`)."""
        latest = self.store.latest_by_hash()
        todo = []
        for item in planned:
            rec = latest.get(item.point.hash)
            if rec is None or rec["status"] in self.retry:
                todo.append(item)
            else:
                self._remember_failure(item.point, rec["status"])
        return todo

    def timeout_for(self, point: Point) -> float:
        """The suite's limit, unless its measurement needs longer (frontier: many probes)."""
        import suites

        module = suites.get(point.suite)
        custom = getattr(module, "timeout_s", None)
        return custom(point, self.timeout_s) if custom else self.timeout_s

    def skip_reason(self, item: Planned) -> str | None:
        if item.skip_reason:
            return item.skip_reason
        failed = self.failed_at.get(item.point.group())
        if failed and item.point.context > failed[0]:
            return f"longer than {format_length(failed[0])}, which failed with {failed[1]}"
        return None

    def run(self, planned: list[Planned], progress: PlainProgress) -> dict[str, int]:
        todo = self.pending(planned)
        already = len(planned) - len(todo)
        if already:
            progress.message(f"resuming: {already} of {len(planned)} points already recorded")
            progress.done += already
        counts: dict[str, int] = {}
        for item in todo:
            status = self._one(item, progress)
            counts[status] = counts.get(status, 0) + 1
        return counts

    def _one(self, item: Planned, progress: PlainProgress) -> str:
        point = item.point
        started = now_iso()
        reason = self.skip_reason(item)
        if reason:
            result: dict[str, Any] = {"status": "skipped", "reason": reason, "wall_s": 0.0}
        else:
            t0 = time.perf_counter()
            result = self.measure_fn(point, self.timeout_for(point))
            result.setdefault("wall_s", time.perf_counter() - t0)
        self._remember_failure(point, result["status"])
        record = {
            "run_id": self.run_id,
            "hash": point.hash,
            "point": point.to_dict(),
            "started": started,
            "ended": now_iso(),
            **result,
        }
        self.store.append(record)
        progress.point(point.label(), result["status"], headline(result))
        return result["status"]
