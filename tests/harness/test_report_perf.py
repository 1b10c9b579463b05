"""Rendering a report from 10,000 records takes under 10 s on the 2-core CPU test machine."""

from __future__ import annotations

import time

import pytest

from harness.report import render
from harness.store import Store
from tests.report import synth

BUDGET_S = 10.0


@pytest.mark.slow
def test_ten_thousand_records_render_within_budget(tmp_path):
    run = synth.big_run(tmp_path / "results" / "big", n=10_000)
    assert len(Store(run).latest_by_hash()) == 10_000
    t0 = time.perf_counter()
    out = render(run, tmp_path / "reports" / "big")
    elapsed = time.perf_counter() - t0
    assert elapsed < BUDGET_S, (
        f"render took {elapsed:.1f} s for 10,000 records (budget {BUDGET_S} s)"
    )
    html = out.read_text()
    assert html.count('<tr id="pt-') == 10_000  # nothing dropped to make the budget
    assert "not drawn (see the table)" in html  # figures capped, and the report says so
    print(f"10,000 records rendered in {elapsed:.1f} s")
