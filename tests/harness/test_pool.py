"""The local pool with fake GPUs: one pinned slot per GPU, longest expected group first, the
OOM-skip rule whichever slot runs a group, and workers that die mid-point."""

from __future__ import annotations

import os
import threading
import time

import pytest
from rich.console import Console

from harness.env import Gpu, Hardware
from harness.isolate import run_isolated
from harness.plan import Planned
from harness.point import Point, freeze
from harness.pool import CPU_SLOT, expected_seconds, slots_for
from harness.progress import PlainProgress
from harness.runner import Runner
from harness.store import Store
from harness.timing import TimingConfig

from .conftest import selftest_point


def fake_hw(n: int, name: str = "FakeGPU 80GB") -> Hardware:
    gpus = tuple(Gpu(i, name, 80 * 10**9, (9, 0), f"GPU-fake-{i}") for i in range(n))
    return Hardware("cuda", gpus, 80 * 10**9, name)


class FakeMeasure:
    """Stands in for run_isolated: no process, no CUDA. Remembers who ran what, and when."""

    def __init__(self, seconds: float = 0.05, oom_above: int | None = None):
        self.seconds, self.oom_above = seconds, oom_above
        self.calls: list[dict] = []
        self.lock = threading.Lock()

    def __call__(self, point: Point, timeout: float, env: dict | None = None) -> dict:
        t0 = time.perf_counter()
        time.sleep(self.seconds)
        with self.lock:
            self.calls.append({"point": point, "env": env, "t0": t0, "t1": time.perf_counter()})
        if point.model == "oom_above" and self.oom_above and point.context > self.oom_above:
            return {"status": "oom", "reason": "CUDA out of memory (fake)"}
        return {"status": "ok", "reason": "", "metrics": {"time_ms": 1.0}}


def run(store: Store, points, slots, measure, **kw) -> dict:
    runner = Runner(store, "t", timeout_s=30.0, measure_fn=measure, slots=slots, **kw)
    return runner.run([Planned(p) for p in points], PlainProgress(len(points), Console(quiet=True)))


def test_one_slot_per_selected_gpu_pinned_in_nvml_order():
    slots = slots_for(fake_hw(3))
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "1", "2"]
    assert all(s.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" for s in slots)  # CUDA's = NVML's
    assert [s.gpu["uuid"] for s in slots] == [f"GPU-fake-{i}" for i in range(3)]
    # a job's own allocation (SLURM sets CUDA_VISIBLE_DEVICES): only those GPUs get workers
    assert [s.gpu["index"] for s in slots_for(fake_hw(4), visible="1,3")] == [1, 3]
    assert [s.gpu["index"] for s in slots_for(fake_hw(4), visible="GPU-fake-2")] == [2]
    assert slots_for(Hardware("cpu")) == [CPU_SLOT]


def test_every_gpu_works_and_each_record_names_the_gpu_that_ran_it(tmp_path):
    points = [selftest_point("ok", context=L, slow_s=i) for i in range(6) for L in (1024, 2048)]
    measure = FakeMeasure(seconds=0.1)
    counts = run(Store(tmp_path), points, slots_for(fake_hw(3)), measure)
    assert counts == {"ok": 12}
    records = Store(tmp_path).records()
    assert sorted(r["hash"] for r in records) == sorted(p.hash for p in points)
    pinned = {c["point"].hash: c["env"]["CUDA_VISIBLE_DEVICES"] for c in measure.calls}
    for rec in records:
        assert str(rec["gpu"]["index"]) == pinned[rec["hash"]]  # the record says where it ran
        assert rec["gpu"]["name"] == "FakeGPU 80GB" and rec["host"]
    assert len(set(pinned.values())) == 3
    # a group's points never overlap in time (the OOM rule needs the shorter outcome first)...
    by_group: dict = {}
    for c in measure.calls:
        by_group.setdefault(c["point"].group(), []).append(c)
    for calls in by_group.values():
        calls.sort(key=lambda c: c["t0"])
        assert calls[0]["point"].context < calls[1]["point"].context
        assert calls[0]["t1"] <= calls[1]["t0"]
    # ... while different groups do run at the same time
    calls = sorted(measure.calls, key=lambda c: c["t0"])
    assert any(b["t0"] < a["t1"] for a, b in zip(calls, calls[1:], strict=False))


def test_longest_expected_group_goes_first(tmp_path):
    # expected seconds grow with slow_s; two points a group: group totals 6, 8, 10, 14
    costs = [1, 2, 3, 5]
    points = [selftest_point("slow", context=L, slow_s=s) for s in costs for L in (1024, 2048)]
    measure = FakeMeasure(seconds=0.1)
    run(Store(tmp_path), points, slots_for(fake_hw(2)), measure)
    heads = [c["point"] for c in sorted(measure.calls, key=lambda c: c["t0"])]
    heads = [p.param("slow_s") for p in heads if p.context == 1024]
    assert set(heads[:2]) == {5, 3}  # the two longest start at once
    assert heads[2:] == [2, 1]


def test_one_slot_keeps_the_plan_order(tmp_path):
    points = [selftest_point("slow", context=1024, slow_s=s) for s in (1, 5, 3)]
    measure = FakeMeasure(seconds=0.0)
    run(Store(tmp_path), points, [CPU_SLOT], measure)
    assert [c["point"].param("slow_s") for c in measure.calls] == [1, 5, 3]
    assert [c["env"] for c in measure.calls] == [None] * 3  # CPU: nothing to pin


def test_oom_skip_rule_holds_whichever_slot_runs_the_group(tmp_path):
    lengths = (1024, 4096, 8192, 16384, 32768)
    failing = [selftest_point("oom_above", context=L) for L in lengths]
    others = [selftest_point("ok", context=L, batch=b) for b in (2, 4) for L in lengths]
    measure = FakeMeasure(seconds=0.05, oom_above=4096)
    run(Store(tmp_path), failing + others, slots_for(fake_hw(3)), measure)
    got = {(r["point"]["model"], r["point"]["context"]): r for r in Store(tmp_path).records()}
    assert [got["oom_above", L]["status"] for L in lengths] == [
        "ok",
        "ok",
        "oom",
        "skipped",
        "skipped",
    ]
    assert "8K" in got["oom_above", 16384]["reason"] and got["oom_above", 16384]["gpu"] is None
    ran = [c["point"].context for c in measure.calls if c["point"].model == "oom_above"]
    assert ran == [1024, 4096, 8192]  # never 16K, 32K
    assert len(measure.calls) == 3 + 10  # the other groups are untouched by that OOM


def test_a_worker_dying_mid_point_costs_that_point_only(tmp_path):
    points = [
        selftest_point("exit", context=1024),
        selftest_point("signal", context=1024),
        selftest_point("ok", context=1024),
    ]
    counts = run(Store(tmp_path), points, slots_for(fake_hw(2)), run_isolated)
    assert counts == {"crashed": 2, "ok": 1}
    got = Store(tmp_path).records()
    records = {r["point"]["model"] + str(r["point"]["context"]): r for r in got}
    assert len(records) == 3 and records["ok1024"]["metrics"]["time_ms"] > 0
    assert "code 3" in records["exit1024"]["reason"]
    assert "SIGSEGV" in records["signal1024"]["reason"]
    assert records["exit1024"]["gpu"]["uuid"].startswith("GPU-fake-")


def test_the_slot_environment_reaches_the_worker_only():
    import torch

    if torch.get_num_threads() < 2:
        pytest.skip("needs 2 cores to tell a thread limit from the default")
    res = run_isolated(selftest_point("ok"), 60, env={"OMP_NUM_THREADS": "1"})
    assert res["status"] == "ok", res
    assert res["device_facts"]["threads"] == 1  # applied before the worker imported torch
    assert res["device_facts"]["worker_start"] == "spawn"  # torch reads it at import: no fork
    assert os.environ.get("OMP_NUM_THREADS") != "1"  # the orchestrator's own is untouched


def test_forked_workers_see_the_orchestrators_environment_of_now(monkeypatch):
    """Workers fork from a server that imported torch (isolate.py); what the orchestrator sets
    after that server started still reaches them, as it would a spawned worker."""
    first = run_isolated(selftest_point("ok"), 60)
    assert first["device_facts"]["worker_start"] == "forkserver"
    monkeypatch.setenv("TRITON_CACHE_AUTOTUNING", "0")
    later = run_isolated(selftest_point("ok"), 60)
    assert later["device_facts"]["worker_start"] == "forkserver"
    assert later["device_facts"]["triton_cache_autotuning"] == "0"


def test_worker_start_method_is_checked(monkeypatch):
    monkeypatch.setenv("CTXBENCH_WORKER_START", "fork")
    with pytest.raises(ValueError, match="valid choices: forkserver, spawn"):
        run_isolated(selftest_point("ok"), 60)
    monkeypatch.setenv("CTXBENCH_WORKER_START", "spawn")
    assert run_isolated(selftest_point("ok"), 60)["device_facts"]["worker_start"] == "spawn"


def test_workers_keep_triton_autotune_results_on_disk_unless_told_otherwise():
    res = run_isolated(selftest_point("ok"), 60)
    assert res["device_facts"]["triton_cache_autotuning"] == "1"
    res = run_isolated(selftest_point("ok"), 60, env={"TRITON_CACHE_AUTOTUNING": "0"})
    assert res["device_facts"]["triton_cache_autotuning"] == "0"  # the user's choice stands


def _model_point(suite: str, model: str, L: int, **params) -> Point:
    return Point(
        suite=suite,
        model=model,
        size="1.3b",
        context=L,
        batch=1,
        dtype="bfloat16",
        device="cuda",
        params=freeze({"overrides": {}, **params}),
        timing=freeze(vars(TimingConfig(warmup=2, min_reps=5, min_time_s=1.0, max_time_s=15.0))),
    )


def test_expected_seconds_follows_the_cost_model():
    prefill = lambda m, L: expected_seconds(_model_point("prefill", m, L, canary=True))
    assert prefill("transformer", 1 << 20) > prefill("transformer", 1 << 16) > 10.0
    assert prefill("transformer", 1 << 20) > 2 * prefill("mamba2", 1 << 20)  # quadratic attention
    decode = lambda m, L: expected_seconds(
        _model_point("decode", m, L, gen_tokens=128, min_samples=512, cuda_graphs=True)
    )
    assert decode("transformer", 1 << 20) > decode("transformer", 1 << 12)
    memory = lambda phase: expected_seconds(
        _model_point("memory", "transformer", 1 << 21, phases=[phase], decode_steps=2)
    )
    assert memory("prefill") > 20 * memory("decode")  # a decode probe fills its cache, no prefill
    frontier = lambda limit: expected_seconds(
        _model_point("frontier", "transformer", 1 << 16, phase="prefill", max_context=1 << 22,
                     resolution=3, round_to=1024, probe="memory", probe_timeout_s=limit)
    )  # fmt: skip
    # probes predicted past the limit are not run, so they cost nothing in the plan either
    assert frontier(60.0) < frontier(600.0) < frontier(1e6)
    bogus = _model_point("prefill", "no_such_model", 4096)
    assert expected_seconds(bogus) < expected_seconds(_model_point("nope", "x", 1 << 20))


def test_needle_cells_of_one_model_form_one_chain_other_models_do_not():
    """Depth changes what is evaluated, not what is trained: the cells of one model share a
    chain (one slot trains the model, the rest reuse it); another model is another chain."""
    from harness.pool import by_group

    def cell(model, depth, L):
        return Point(
            suite="niah", model=model, size="1.3b", context=L, batch=32, dtype="float32",
            device="cpu", params=freeze({"depth": depth, "steps": 10}),
        )  # fmt: skip

    cells = [
        cell(m, d, L) for m in ("transformer", "mamba2") for d in (0.0, 1.0) for L in (64, 256)
    ]
    chains = by_group([Planned(c) for c in cells])
    assert len(chains) == 2
    assert all(len(chain) == 4 for chain in chains.values())
    other = [cell("transformer", 0.0, 64), Point(**{**vars(cell("transformer", 0.0, 64)),
             "params": freeze({"depth": 0.0, "steps": 20})})]  # fmt: skip
    assert len(by_group([Planned(p) for p in other])) == 2  # another training: another chain


class HintedMeasure(FakeMeasure):
    """Also takes the orchestrator's `hints`, as run_isolated does."""

    def __call__(self, point, timeout, env=None, hints=None):
        out = super().__call__(point, timeout, env)
        self.calls[-1]["hints"] = hints
        return out


def test_the_frontier_waits_for_its_sweep_and_is_handed_the_lengths_it_ran(tmp_path):
    frontier_params = dict(phase="prefill", max_context=1 << 22, resolution=3, round_to=1024,
                           probe="memory", probe_timeout_s=60.0)  # fmt: skip
    search = [_model_point("frontier", m, 1 << 16, **frontier_params) for m in ("transformer",)]
    sweep = [_model_point("prefill", m, L, canary=True) for m in ("transformer", "mamba2")
             for L in (1 << 12, 1 << 16)]  # fmt: skip
    decode = [_model_point("decode", "transformer", 1 << 12, gen_tokens=8)]
    measure = HintedMeasure(seconds=0.05)
    # the frontier first in the plan, on two slots: without the wait it would start at once
    run(Store(tmp_path), search + sweep + decode, slots_for(fake_hw(2)), measure)
    calls = {(c["point"].suite, c["point"].model, c["point"].context): c for c in measure.calls}
    fr = calls[("frontier", "transformer", 1 << 16)]
    own_sweep = [calls[("prefill", "transformer", L)] for L in (1 << 12, 1 << 16)]
    assert fr["t0"] >= max(c["t1"] for c in own_sweep)  # after its own model's prefills
    by_hash = {c["point"].hash: c["point"].context for c in own_sweep}
    # handed exactly its model's prefill lengths (not mamba2's, not the decode sweep's)
    assert sorted(fr["hints"]["ran"]) == sorted((L, h) for h, L in by_hash.items())
    assert all(c["hints"] is None for k, c in calls.items() if k[0] != "frontier")


def test_points_predicted_past_the_time_limit_are_not_started(tmp_path):
    """run.time_limit_s: a point the cost model says would still be running at the limit is left
    unmeasured (no record: the next run takes it); shorter points of other groups still run."""
    from harness.pool import DEFERRED, Pool

    long_group = [selftest_point("ok", context=L) for L in (1024, 1 << 20)]
    other = [selftest_point("ok", context=1024, batch=2)]
    cost = lambda p: 1000.0 if p.context > 1024 else 0.1  # noqa: E731 - planted predictions
    store = Store(tmp_path)
    measure = FakeMeasure(seconds=0.01)
    runner = Runner(store, "t", timeout_s=30.0, measure_fn=measure, deadline=time.monotonic() + 60)
    points = long_group + other
    progress = PlainProgress(len(points), Console(quiet=True))
    counts = Pool(runner, [CPU_SLOT], cost=cost).run([Planned(p) for p in points], progress)
    assert counts == {"ok": 2, DEFERRED: 1}
    recorded = {r["point"]["context"] for r in store.records()}
    assert recorded == {1024} and len(store.records()) == 2
    # without a limit the same plan measures everything
    runner = Runner(Store(tmp_path / "b"), "t", timeout_s=30.0, measure_fn=measure)
    counts = Pool(runner, [CPU_SLOT], cost=cost).run([Planned(p) for p in points], progress)
    assert counts == {"ok": 3}


def test_a_point_past_a_failed_length_is_skipped_not_deferred(tmp_path):
    """The time limit never holds back a point the OOM rule records as skipped at once (it
    would stay unmeasured on every later run)."""
    from harness.pool import DEFERRED, Pool

    points = [selftest_point("oom_above", context=L) for L in (1024, 2048, 1 << 20)]
    cost = lambda p: 1000.0 if p.context > 2048 else 0.1  # noqa: E731 - planted predictions
    store = Store(tmp_path)
    runner = Runner(store, "t", timeout_s=30.0, measure_fn=FakeMeasure(0.01, oom_above=1024),
                    deadline=time.monotonic() + 60)  # fmt: skip
    progress = PlainProgress(len(points), Console(quiet=True))
    counts = Pool(runner, [CPU_SLOT], cost=cost).run([Planned(p) for p in points], progress)
    assert counts == {"ok": 1, "oom": 1, "skipped": 1} and DEFERRED not in counts
    assert [r["status"] for r in store.records()] == ["ok", "oom", "skipped"]
