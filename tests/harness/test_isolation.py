"""Faults injected into workers become records with the right status; the sweep goes on."""

from __future__ import annotations

import pytest
from rich.console import Console

from harness.isolate import run_isolated
from harness.plan import Planned
from harness.progress import PlainProgress
from harness.runner import Runner
from harness.store import Store

from .conftest import selftest_point

EXPECTED = {
    "ok": "ok",
    "oom": "oom",
    "hang": "timeout",
    "exit": "crashed",
    "signal": "crashed",
    "raise": "crashed",
    "invalid": "invalid_output",
    "cuda_error": "cuda_error",
}


def _run(store: Store, points, timeout: float = 4.0) -> list[dict]:
    runner = Runner(store, "test", timeout_s=timeout)
    progress = PlainProgress(len(points), Console(quiet=True))
    runner.run([Planned(p) for p in points], progress)
    return store.records()


@pytest.mark.slow
def test_every_fault_is_recorded_and_later_points_still_run(tmp_path):
    behaviours = list(EXPECTED) + ["ok"]  # an ok point after every fault
    points = [selftest_point(b, context=1024 * (i + 1)) for i, b in enumerate(behaviours)]
    records = _run(Store(tmp_path), points)
    assert [r["point"]["model"] for r in records] == behaviours
    for rec in records:
        assert rec["status"] == EXPECTED[rec["point"]["model"]], rec
    by = {r["point"]["model"]: r for r in records}
    assert "code 3" in by["exit"]["reason"]
    assert "SIGSEGV" in by["signal"]["reason"]
    assert "planted exception" in by["raise"]["reason"]
    assert "Traceback" in by["raise"]["traceback"]
    assert by["hang"]["wall_s"] < 30
    assert records[-1]["status"] == "ok" and records[-1]["metrics"]["time_ms"] > 0
    assert len(records[-1]["samples"]["time_ms"]) >= 2


def test_oom_skips_longer_lengths_of_the_same_group_only(tmp_path):
    planted = [selftest_point("oom_above", context=L) for L in (1024, 8192, 16384, 32768)]
    other = [selftest_point("ok", context=L, batch=2) for L in (1024, 32768)]
    records = _run(Store(tmp_path), planted + other)
    status = [(r["point"]["model"], r["point"]["context"], r["status"]) for r in records]
    assert status == [
        ("oom_above", 1024, "ok"),
        ("oom_above", 8192, "oom"),
        ("oom_above", 16384, "skipped"),
        ("oom_above", 32768, "skipped"),
        ("ok", 1024, "ok"),
        ("ok", 32768, "ok"),
    ]
    assert "8K" in records[2]["reason"] and "oom" in records[2]["reason"]


def test_resume_skips_completed_points_and_keeps_the_oom_rule(tmp_path):
    points = [selftest_point("oom_above", context=L) for L in (1024, 8192, 16384)]
    store = Store(tmp_path)
    _run(store, points[:2])
    calls = []

    def fake_measure(point, timeout):
        calls.append(point)
        return run_isolated(point, timeout)

    runner = Runner(store, "test", timeout_s=4.0, measure_fn=fake_measure)
    runner.run([Planned(p) for p in points], PlainProgress(3, Console(quiet=True)))
    assert calls == []  # 1K and 8K are done; 16K is skipped because 8K ran out of memory
    assert [r["status"] for r in store.records()] == ["ok", "oom", "skipped"]


def test_retry_statuses_are_measured_again(tmp_path):
    store = Store(tmp_path)
    p = selftest_point("raise")
    _run(store, [p])
    seen = []
    runner = Runner(
        store,
        "t",
        4.0,
        retry=["crashed"],
        measure_fn=lambda pt, t: seen.append(pt) or {"status": "ok", "reason": ""},
    )
    runner.run([Planned(p)], PlainProgress(1, Console(quiet=True)))
    assert seen == [p]
    assert [r["status"] for r in store.records()] == ["crashed", "ok"]
