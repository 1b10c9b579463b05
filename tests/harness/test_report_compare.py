"""Two runs side by side: points matched, ratios with intervals, and only differences larger than
the run-to-run spread flagged."""

from __future__ import annotations

import numpy as np

from harness.report import compare, data, render
from harness.report.facts import Facts
from tests.report import synth
from tests.report.htmlq import Page

K = 1024


def prefill_run(tmp_path, name, seed, slow=None, backend="cudnn", status=None, **manifest):
    """Prefill points of two models; `slow` = {model: factor} scales that model's times."""
    b = synth.Builder(seed)
    for model in ("transformer", "mamba2"):
        for L in (4 * K, 16 * K, 64 * K):
            ms = synth.prefill_ms(model, L) * (slow or {}).get(model, 1.0)
            s = list(ms * np.exp(b.rng.normal(0, 0.02, 30)))
            st = (status or {}).get((model, L), "ok")
            be = (
                {"attention": backend}
                if model == "transformer"
                else {"ssm": "triton", "conv": "triton"}
            )
            b.add(
                "prefill",
                model,
                L,
                st,
                backends=be,
                time_samples=s if st == "ok" else None,
                metrics={"time_ms": float(np.median(s)), "time": {"count": 30}}
                if st == "ok"
                else {},
            )
    return synth.write(tmp_path / name, b.records, **manifest)


def compared(a, b):
    return compare.compare(
        Facts(data.load(a)), Facts(data.load(b)), lambda env: str(env.get("driver"))
    )


def test_same_code_twice_flags_nothing(tmp_path):
    cmp = compared(prefill_run(tmp_path, "a", 0), prefill_run(tmp_path, "b", 1))
    assert len(cmp.rows) == 6 and cmp.only_a == cmp.only_b == 0
    assert cmp.counts() == {"same": 6}
    assert all(0.95 < r.ratio.value < 1.05 and r.ratio.has_ci for r in cmp.rows)


def test_a_slowdown_beyond_the_spread_is_flagged_with_its_direction(tmp_path):
    cmp = compared(
        prefill_run(tmp_path, "a", 0), prefill_run(tmp_path, "b", 1, slow={"mamba2": 1.3})
    )
    flags = {(r.model, r.context): r.flag for r in cmp.rows}
    assert all(flags[("mamba2", L)] == "slower" for L in (4 * K, 16 * K, 64 * K))
    assert all(flags[("transformer", L)] == "" for L in (4 * K, 16 * K, 64 * K))
    slow = [r for r in cmp.rows if r.model == "mamba2"]
    assert all(1.2 < r.ratio.lo and r.ratio.hi < 1.4 for r in slow)
    ((suite, gmean, n),) = cmp.geomean()
    assert suite == "prefill" and n == 6 and 1.1 < gmean < 1.2


def test_status_changes_are_flagged(tmp_path):
    a = prefill_run(tmp_path, "a", 0)
    b = prefill_run(tmp_path, "b", 1, status={("transformer", 64 * K): "oom"})
    (row,) = [r for r in compared(a, b).rows if r.flag == "status"]
    assert (row.model, row.context, row.note) == ("transformer", 64 * K, "ok → oom")


def test_runs_of_different_backends_are_matched_point_to_point(tmp_path):
    a = prefill_run(tmp_path, "a", 0, backend="cudnn", driver="1")
    b = prefill_run(tmp_path, "b", 1, backend="flash", slow={"transformer": 1.5}, driver="2")
    cmp = compared(a, b)
    t = [r for r in cmp.rows if r.model == "transformer"]
    assert len(cmp.rows) == 6 and len(t) == 3
    assert all(
        (r.backend_a, r.backend_b, r.flag) == ("attention=cudnn", "attention=flash", "slower")
        for r in t
    )
    assert ("driver", "1", "2") in cmp.env_diff


def test_report_with_compare_shows_both_runs(tmp_path):
    a = prefill_run(tmp_path, "a", 0)
    b = prefill_run(tmp_path, "b", 1, slow={"mamba2": 1.3}, sha="ffff000011")
    page = Page(render(a, tmp_path / "out", compare=b, workers=1).read_text())
    rows = page.rows("compare-table")
    assert len(rows) == 6 and sum(r[11] == "slower" for r in rows) == 3
    assert "fig-compare-prefill" in page.ids
    assert "git" in page.texts["compare"] and "ffff000011" in page.texts["compare"]


def _decode_run(path, seed, extra: dict):
    b = synth.Builder(seed)
    for L in (4 * K, 16 * K):
        ms = 2.0 if extra else 3.2
        s = list(ms * np.exp(b.rng.normal(0, 0.02, 30)))
        be = {"ssm": "triton", "conv": "triton"} | extra
        b.add("decode", "mamba2", L, "ok", backends=be, time_samples=s,
              metrics={"time_ms": float(np.median(s)), "time": {"count": 30}})  # fmt: skip
    return synth.write(path, b.records)


FUSED = {"decode_fused": "triton"}


def test_a_fused_decode_step_is_not_paired_with_a_plain_one(tmp_path):
    """Fused and plain decode steps are different measurements: named apart in the legend, never
    compared as one point getting faster."""
    plain, fused = _decode_run(tmp_path / "a", 0, {}), _decode_run(tmp_path / "b", 1, FUSED)
    rows = Facts(data.load(fused)).rows("decode", model="mamba2")
    assert set(rows["decode_step"]) == {"fused"}
    assert set(rows["backend"]) == {"conv=triton decode_fused=triton ssm=triton"}
    cmp = compared(plain, fused)
    assert cmp.rows == [] and cmp.only_a == cmp.only_b == 2


def test_a_step_on_the_triton_gemv_is_not_paired_with_one_on_cublas(tmp_path):
    fused = _decode_run(tmp_path / "a", 0, FUSED)
    gemv = _decode_run(tmp_path / "b", 1, FUSED | {"decode_gemv": "triton"})
    rows = Facts(data.load(gemv)).rows("decode", model="mamba2")
    assert set(rows["decode_step"]) == {"fused+gemv"}
    assert set(rows["backend"]) == {"conv=triton decode_fused=triton decode_gemv=triton ssm=triton"}
    cmp = compared(fused, gemv)
    assert cmp.rows == [] and cmp.only_a == cmp.only_b == 2
