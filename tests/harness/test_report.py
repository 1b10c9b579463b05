"""The first report: from results alone, self-contained, deterministic; partial runs say so."""

from __future__ import annotations

import re

from harness.report import render
from harness.store import Store


def _record(model: str, context: int, status: str, ms: float | None = None, backend="math"):
    point = {
        "suite": "kernels",
        "model": model,
        "size": "",
        "context": context,
        "batch": 1,
        "dtype": "float32",
        "device": "cpu",
        "backends": {"attention": backend},
        "seed": 0,
        "params": {},
        "timing": {},
    }
    metrics = (
        {"time_ms": ms, "time": {"count": 12, "median": ms, "p90": ms, "p99": None}} if ms else {}
    )
    return {
        "hash": f"{model}-{backend}-{context}",
        "point": point,
        "status": status,
        "reason": "" if status == "ok" else f"planted {status}",
        "metrics": metrics,
    }


def _run_dir(tmp_path, records, planned=None):
    store = Store(tmp_path / "results" / "r1")
    store.write_manifest(
        {
            "run_id": "r1",
            "suite": "kernels",
            "created": "2026-11-22T00:00:00Z",
            "plan": {"points": planned or len(records)},
            "env": {
                "device_name": "TestGPU",
                "packages": {"torch": "9"},
                "git": {"sha": "abc", "dirty": False},
            },
        }
    )
    for r in records:
        store.append(r)
    return store.dir


RECORDS = [
    _record("attention", 1024, "ok", 0.5),
    _record("attention", 4096, "ok", 4.0),
    _record("attention", 16384, "oom"),
    _record("attention", 1024, "ok", 0.3, backend="flash"),
    _record("attention", 4096, "skipped", backend="cudnn"),
]


def test_report_has_environment_table_and_figure_with_failures_marked(tmp_path):
    out = render(_run_dir(tmp_path, RECORDS), tmp_path / "reports" / "r1")
    html = out.read_text()
    assert "TestGPU" in html
    assert html.count("<tr>") == 1 + len(RECORDS)  # header + one row per point
    assert 'id="fig-kernel-attention"' in html and "<svg" in html
    assert "oom (math)" in html  # the failed point is drawn and named, not dropped
    assert "planted oom" in html
    assert "Content-Security-Policy" in html
    assert not re.search(r"(src|href)=\"https?://", html)  # no network request


def test_two_renders_are_byte_identical(tmp_path):
    run = _run_dir(tmp_path, RECORDS)
    a = render(run, tmp_path / "a").read_bytes()
    b = render(run, tmp_path / "b").read_bytes()
    assert a == b


def test_partial_run_renders_and_says_what_is_missing(tmp_path):
    html = render(_run_dir(tmp_path, RECORDS[:2], planned=7), tmp_path / "p").read_text()
    assert "5 planned point(s) have no record yet" in html


def test_empty_run_renders(tmp_path):
    html = render(_run_dir(tmp_path, [], planned=3), tmp_path / "e").read_text()
    assert "No figure" in html and "3 planned point(s)" in html
