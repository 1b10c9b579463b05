"""The orchestrator's per-point rules: for each planned point not already in the store, measure it
in an isolated worker, classify the outcome and append one record. It never initialises CUDA.
`harness.pool` decides which slot (GPU) runs which group of points, and when.

After an OOM (or a timeout) at length L, longer lengths of the same group are recorded as
`skipped` instead of being run: they would fail the same way, slower. Failures recorded by other
orchestrators sharing the run folder count too: their records are read before each point.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from harness.isolate import run_isolated
from harness.leases import Leases
from harness.plan import Planned
from harness.point import Point
from harness.pool import BLOCKED, CPU_SLOT, Pool, Slot
from harness.progress import PlainProgress, headline
from harness.store import Store, latest_by_hash, now_iso
from harness.units import format_length

FAILING = ("oom", "timeout")
ELSEWHERE = "by_other_job"  # counted, not recorded: another orchestrator recorded the point


class Runner:
    def __init__(
        self,
        store: Store,
        run_id: str,
        timeout_s: float,
        retry: list[str] | tuple[str, ...] = (),
        measure_fn: Callable[..., dict[str, Any]] = run_isolated,
        leases: Leases | None = None,
        slots: list[Slot] | tuple[Slot, ...] = (CPU_SLOT,),
        poll_s: float = 1.0,
        deadline: float | None = None,
    ):
        self.store, self.run_id, self.timeout_s = store, run_id, timeout_s
        self.retry = set(retry)
        self.measure_fn = measure_fn
        self.leases, self.slots, self.poll_s = leases, list(slots) or [CPU_SLOT], poll_s
        self.deadline = deadline  # time.monotonic(): start no point predicted to end after it
        self.failed_at: dict[tuple, tuple[int, str]] = {}  # group -> (shortest failing L, status)
        self.busy_s: Counter[str] = Counter()  # worker seconds by measurement, this session
        self.host = socket.gethostname()
        self._lock = threading.RLock()  # slot threads share failed_at, counts and busy_s
        self._counts: Counter[str] = Counter()  # records per hash, all writers, as read so far
        self._at_start: Counter[str] = Counter()  # the same when this run began
        self._latest: dict[str, dict[str, Any]] = {}
        self._generation = 0

    def _remember_failure(self, point: Point, status: str) -> None:
        if status in FAILING:
            with self._lock:
                known = self.failed_at.get(point.group())
                if known is None or point.context < known[0]:
                    self.failed_at[point.group()] = (point.context, status)

    def pending(self, planned: list[Planned]) -> list[Planned]:
        """Points without a complete record (or whose last status is in `retry`)."""
        records = self.store.records()
        self._generation = self.store.generation
        self._counts = Counter(r["hash"] for r in records)
        self._at_start = Counter(self._counts)
        self._latest = latest_by_hash(records)
        todo = []
        for item in planned:
            rec = self._latest.get(item.point.hash)
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

    def hints_for(self, point: Point) -> dict[str, Any]:
        """What the suite may reuse from this run's records (suites.frontier: the lengths its
        sweep already ran), if its module defines `hints(point, records)`."""
        import suites

        fn = getattr(suites.get(point.suite), "hints", None)
        return fn(point, list(self.store.latest_by_hash().values())) if fn else {}

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
        counts = Pool(self, self.slots, self.poll_s).run(todo, progress)
        if self.leases is not None:
            self.leases.prune()
        return counts

    def _catch_up(self, point: Point) -> dict[str, Any] | None:
        """Read records that appeared since the last look (any writer): remember their failures;
        return the record of `point` if someone recorded it after this run began."""
        with self._lock:  # one slot at a time: polling and counting must not interleave
            new = self.store.poll()
            if self.store.generation != self._generation:  # it read everything again
                self._generation = self.store.generation
                self._counts, self._latest = Counter(), {}
            for rec in new:
                self._counts[rec["hash"]] += 1
                self._latest[rec["hash"]] = rec
                try:
                    self._remember_failure(Point.from_dict(rec["point"]), rec["status"])
                except (KeyError, TypeError):  # a record of another layout: no failure to use
                    pass
            fresh = self._counts[point.hash] > self._at_start[point.hash]
            return self._latest.get(point.hash) if fresh else None

    def run_point(self, item: Planned, slot: Slot, progress: Any) -> str:
        """Measure or skip one point on `slot` and record it; BLOCKED when another orchestrator
        holds it (then the longer points of its group wait for that outcome)."""
        point = item.point
        lease = None
        if self.leases is not None:
            lease = self.leases.acquire(point.hash)
            if lease is None:
                return BLOCKED
        try:
            done = self._catch_up(point)
            if done is not None:
                progress.point(point.label(), done["status"], "recorded by another job")
                return ELSEWHERE
            return self._measure_and_record(item, slot, progress)
        finally:
            if lease is not None:
                self.leases.release(lease)  # after the record: whoever comes next sees it

    def _measure_and_record(self, item: Planned, slot: Slot, progress: Any) -> str:
        point = item.point
        started = now_iso()
        reason = self.skip_reason(item)
        gpu = None
        if reason:
            result: dict[str, Any] = {"status": "skipped", "reason": reason, "wall_s": 0.0}
        else:
            t0 = time.perf_counter()
            timeout = self.timeout_for(point)
            extra: dict[str, Any] = {"env": dict(slot.env)} if slot.env else {}
            if hints := self.hints_for(point):
                extra["hints"] = hints
            # no extras: two-argument measure functions (tests, probes) keep working
            result = self.measure_fn(point, timeout, **extra)
            result.setdefault("wall_s", time.perf_counter() - t0)
            gpu = slot.gpu
        self._remember_failure(point, result["status"])
        record = {
            "run_id": self.run_id,
            "hash": point.hash,
            "point": point.to_dict(),
            "started": started,
            "ended": now_iso(),
            "ended_unix": time.time(),  # orders attempts of one point across writers' files
            "host": self.host,
            "gpu": gpu,  # {index, name, uuid} of the GPU that ran it; null on CPU or if skipped
            **result,
        }
        self.store.append(record)
        with self._lock:
            self.busy_s[point.suite] += float(result.get("wall_s") or 0.0)
        progress.point(point.label(), result["status"], headline(result))
        return result["status"]
