"""compare_stores: two runs of one sweep agree in content whichever GPU ran each point."""

from __future__ import annotations

from harness.compare_stores import compare
from harness.store import Store


def _rec(h: str, status: str, gpu: int, time_ms: float, reason: str = "") -> dict:
    return {
        "hash": h,
        "point": {"model": h, "context": 1024},
        "status": status,
        "reason": reason,
        "gpu": {"index": gpu, "name": "H200", "uuid": f"GPU-{gpu}"}
        if status != "skipped"
        else None,
        "metrics": {"time_ms": time_ms} if status == "ok" else {},
        "wall_s": 3.0 + gpu,
    }


def test_same_content_on_other_gpus_agrees_and_a_status_change_does_not(tmp_path, capsys):
    a, b, c = (Store(tmp_path / n) for n in "abc")
    for store, gpu in ((a, 0), (b, 1)):
        store.append(_rec("p", "ok", gpu, 1.0 + gpu * 0.01))
        store.append(_rec("q", "skipped", gpu, 0, reason="longer than 8K, which failed with oom"))
    assert compare(a.dir, b.dir) == 0
    out = capsys.readouterr().out
    assert "contents agree" in out and "median 1.010" in out and "GPU 1:H200 x1" in out

    c.append(_rec("p", "oom", 1, 0))
    c.append(_rec("q", "skipped", 1, 0, reason="longer than 4K, which failed with oom"))
    assert compare(a.dir, c.dir) == 1
    out = capsys.readouterr().out
    assert "p status: 'ok' != 'oom'" in out and "q reason" in out
