"""The model speed suites on CPU at tiny shapes: they measure, gate on the canary, bisect."""

from __future__ import annotations

import math
import shutil
from dataclasses import replace

import pytest
import torch

import kernels
from harness.errors import InvalidOutput
from harness.point import Point, freeze
from suites import decode, frontier, memory, prefill, throughput
from tests.suites.cpu_point import cpu_point
from tests.suites.speed_points import TIMING, TINY, _point


def _frontier_point(model: str, size: str = "1.3b", **params) -> Point:
    """A prefill frontier search from 1K up to 1M on the CPU; `params` change its settings."""
    search = {"phase": "prefill", "max_context": 1 << 20, "resolution": 3, "round_to": 64,
              "probe": "memory", "probe_timeout_s": 60}  # fmt: skip
    return Point(suite="frontier", model=model, size=size, context=1024, batch=1,
                 dtype="float32", device="cpu", params=freeze({**search, **params}),
                 timing=TIMING)  # fmt: skip


@pytest.mark.parametrize("model", ["transformer", "mamba2", "mamba1", "hybrid_1_7"])
def test_prefill_measures_ttft_with_canary(model):
    out = prefill.run(_point("prefill", model, canary=True))
    m = out["metrics"]
    assert m["time_ms"] > 0 and m["tokens_per_s"] > 0 and m["tflops"] > 0
    assert m["canary"]["passed"] and m["canary"]["rel_err"] < 1e-3
    # an attention-only cache rewinds instead of a second prefill; an SSM state cannot
    assert m["canary"]["rewound"] is (model == "transformer")
    assert m["mfu"] is None and "no datasheet peak" in m["peak_note"]  # CPU: no made-up peak
    assert m["energy"] is None and "NVML" in m["energy_null_reason"]
    assert m["predicted_memory"]["total"] > 0
    assert len(out["samples"]["time_ms"]) >= 3


@pytest.mark.parametrize("model", ["transformer", "mamba2"])
def test_decode_eager_times_every_token(model):
    out = decode.run(
        _point("decode", model, context=128, gen_tokens=8, cuda_graphs=False, min_samples=24)
    )
    m = out["metrics"]
    assert len(out["samples"]["time_ms"]) >= 24 and len(out["samples"]["time_ms"]) % 8 == 0
    assert m["time"]["p99"] is None  # 24..48 samples cannot support a p99
    assert m["tokens_per_s"] > 0 and m["gbps"] > 0 and m["cuda_graphs"] is False


@pytest.mark.skipif(not shutil.which("cc"), reason="torch.compile on the CPU needs a C compiler")
def test_compiled_decode_step_matches_the_eager_one_and_is_recorded():
    import models

    model = models.create("transformer", **{**TINY, "n_layer": 2, "d_model": 64}).eval()
    ids = torch.randint(0, 64, (1, 1))
    eager = decode.Stepper(model, model.allocate_cache(1, 16), ids, graphs=False)
    compiled = decode.Stepper(model, model.allocate_cache(1, 16), ids, graphs=False, compile=True)
    outs = [[s().clone() for _ in range(5)] for s in (eager, compiled)]
    for a, b in zip(*outs, strict=True):
        assert torch.allclose(a, b, atol=1e-4, rtol=1e-4)


def test_decode_compile_option_reaches_the_step_and_the_record(monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: compiled.append(kw) or fn)
    out = decode.run(
        _point("decode", "transformer", 16, gen_tokens=4, cuda_graphs=False, min_samples=4,
               compile=True)
    )  # fmt: skip
    assert compiled == [{"dynamic": False}]
    assert out["metrics"]["compiled"] is True and out["cold"]["setup_s"] >= 0


def wrong_ssd(*args, **kwargs):
    """A planted chunked scan that is 10% off; its decode step stays right."""
    out = kernels.get("ssd", "torch")(*args, **kwargs)
    return (out[0] * 1.1, *out[1:]) if isinstance(out, tuple) else out * 1.1


def test_planted_wrong_kernel_makes_the_canary_fail(monkeypatch):
    monkeypatch.setitem(kernels.REGISTRY["ssd"], "planted", f"{__name__}:wrong_ssd")
    monkeypatch.setitem(
        kernels.REGISTRY["ssd_step"], "planted", kernels.REGISTRY["ssd_step"]["torch"]
    )
    planted = freeze({"attention": "math", "ssm": "planted", "conv": "torch"})
    with pytest.raises(InvalidOutput, match="canary"):
        prefill.run(_point("prefill", "mamba2", backends=planted, canary=True))


def test_rewound_canary_catches_a_wrong_attention_prefill(monkeypatch):
    """The Transformer's canary reads back the K/V its prefill wrote: a prefill attention that is
    off (the fast long-context path) still shows against the decode step's own attention."""
    import models.attention as attention_module
    from kernels.attention import attention as real_attention

    def off(q, k, v, backend, causal):
        return 1.1 * real_attention(q, k, v, backend=backend, causal=causal)

    monkeypatch.setattr(attention_module, "attention_kernel", off)
    with pytest.raises(InvalidOutput, match="canary"):
        prefill.run(_point("prefill", "transformer", canary=True))


def test_memory_prediction_matches_measured_cpu_allocations_within_5_percent():
    p = _point("memory", "transformer", context=1 << 20, phases=["decode"], decode_steps=1)
    m = memory.run(p)["metrics"]
    measured = (
        m["decode_memory"]["peak_allocated_bytes"] - m["decode_memory"]["baseline_allocated_bytes"]
    )
    predicted = m["predicted"]["decode"]["total"] - m["predicted"]["decode"]["weights"]
    assert predicted > 100e6  # the KV cache dominates: a meaningful comparison
    assert abs(measured - predicted) / predicted < 0.05, (measured, predicted)


def test_throughput_finds_the_largest_batch_by_search():
    out = throughput.run(
        _point(
            "throughput",
            "mamba2",
            context=64,
            gen_tokens=4,
            max_batch=8,
            cuda_graphs=False,
            min_samples=4,
        )
    )
    m = out["metrics"]
    assert m["batch"] == 8  # nothing runs out of memory below the cap
    assert [s["batch"] for s in m["search"]] == [1, 2, 4, 8]
    assert m["tokens_per_s"] > 0


def test_throughput_steps_down_when_the_timed_decode_runs_out_of_memory(monkeypatch):
    """The search's eager steps fit; the graph capture's own memory pool need not: the batch
    drops by the search's resolution instead of the point failing."""
    import torch

    real = throughput.timed_decode

    def graph_pool_limit(bench, at):
        if at.batch > 6:
            raise torch.OutOfMemoryError("CUDA out of memory (planted)")
        return real(bench, at)

    monkeypatch.setattr(throughput, "timed_decode", graph_pool_limit)
    p = _point("throughput", "mamba2", context=64, gen_tokens=4, max_batch=8, cuda_graphs=False,
               min_samples=4)  # fmt: skip
    m = throughput.run(p)["metrics"]
    assert m["batch"] == 6  # 8 -> 7 -> 6, each failed try recorded
    assert m["canary"]["passed"]
    assert [s["status"] for s in m["search"][-2:]] == ["oom at graph capture"] * 2
    assert m["tokens_per_s"] > 0


def test_frontier_bisection_finds_a_planted_frontier_in_log2_steps():
    point = _frontier_point("oom_above", "", probe="selftest", oom_above=5000, slow_s=0.0)
    from suites import selftest

    def probe(p):  # in-process: the selftest probe raises instead of allocating
        try:
            selftest.run(p)
            return {"status": "ok"}
        except Exception as exc:
            from harness.errors import classify

            return {"status": classify(exc)[0]}

    m = frontier.search(point, probe)
    contexts = [s["context"] for s in m["steps"]]
    assert contexts[:4] == [1024, 2048, 4096, 8192]  # doubling until the first failure
    assert len(contexts) == 4 + 3  # then exactly `resolution` log2 bisection steps
    assert m["max_context"] <= 5000 < m["first_failure"]
    assert m["first_failure"] / m["max_context"] <= 2 ** (1 / 8) * 1.05  # within 2^(1/8)
    assert m["failure_status"] == "oom" and m["limited_by"] == "failure"
    assert frontier.max_probes(point) == math.ceil(math.log2(1024)) + 1 + 3


def test_frontier_stops_at_a_probe_predicted_past_its_time_limit_without_bisecting():
    point = _frontier_point("transformer")
    ran = []

    def probe(p):
        ran.append(p.context)
        return {"status": "ok"}

    m = frontier.search(point, probe, predict=lambda p: 10.0 if p.context < 8192 else 100.0)
    assert ran == [1024, 2048, 4096]  # 8K is predicted at 100 s > 60 s: never run
    assert m["max_context"] == 4096 and m["first_failure"] == 8192
    assert m["failure_status"] == "not_run" and m["limited_by"] == "time"
    assert "predicted 100 s > probe_timeout_s=60" in m["steps"][-1]["reason"]


@pytest.mark.slow
def test_frontier_probes_run_in_isolated_workers():
    point = _frontier_point("oom_above", "", max_context=8192, resolution=1, round_to=1024,
                            probe="selftest", oom_above=2048, slow_s=0.0)  # fmt: skip
    m = frontier.run(point)["metrics"]
    assert [s["status"] for s in m["steps"]] == ["ok", "ok", "oom", "oom"]  # 1K 2K 4K then 3K
    assert m["max_context"] == 2048


def test_a_frontier_point_probes_from_inside_its_own_worker():
    """As the runner measures it: the frontier point in a worker, its probes in workers of that
    worker (multiprocessing refused them children while workers were daemonic: every frontier
    that needed a probe crashed)."""
    from harness.isolate import run_isolated

    point = _frontier_point("oom_above", "", max_context=8192, resolution=1, round_to=1024,
                            probe="selftest", oom_above=2048, slow_s=0.0)  # fmt: skip
    res = run_isolated(point, 300)
    assert res["status"] == "ok", (res.get("reason"), res.get("traceback"))
    assert [s["status"] for s in res["metrics"]["steps"]] == ["ok", "ok", "oom", "oom"]


def test_frontier_reuses_the_lengths_its_sweep_ran_and_probes_only_past_them():
    point = _frontier_point("transformer", resolution=2)
    ran = []

    def probe(p):  # runs up to 5000 tokens
        ran.append(p.context)
        return {"status": "ok" if p.context <= 5000 else "oom"}

    m = frontier.search(point, probe, ran=[(2048, "h2k"), (3000, "h3k")])
    assert ran[0] == 4096  # 1K and 2K are implied by the sweep's 3000-token point: not probed
    assert [s.get("implied_by") for s in m["steps"][:2]] == ["h3k", "h3k"]
    assert m["probes_run"] == len(ran) == 2 + 2  # 4K ok, 8K oom, then two bisection steps
    assert m["max_context"] <= 5000 < m["first_failure"]


def test_frontier_hints_are_the_same_models_successful_sweep_lengths():
    def rec(suite, model, L, status="ok", **extra):
        p = Point(suite=suite, model=model, size="1.3b", context=L, batch=1, dtype="float32",
                  device="cpu", params=freeze({"overrides": {}, **extra}))  # fmt: skip
        return {"hash": p.hash, "point": p.to_dict(), "status": status}

    point = Point(suite="frontier", model="transformer", size="1.3b", context=1 << 16, batch=1,
                  dtype="float32", device="cpu",
                  params=freeze({"overrides": {}, "phase": "prefill"}))  # fmt: skip
    mine = [rec("prefill", "transformer", L, canary=True) for L in (4096, 1 << 20)]
    others = [
        rec("prefill", "transformer", 1 << 21, status="oom"),  # failures are not reused
        rec("decode", "transformer", 1 << 21),  # the other phase
        rec("prefill", "mamba2", 1 << 22),  # another model
        rec("prefill", "transformer", 1 << 22, overrides={"n_layer": 2}),  # another shape
        {"hash": "x", "point": {"suite": "prefill"}, "status": "ok"},  # another layout
    ]
    got = frontier.hints(point, mine + others)
    assert got == {"ran": [(4096, mine[0]["hash"]), (1 << 20, mine[1]["hash"])]}
    assert frontier.hints(point, others) == {}


class CallCountingMeter:
    """An energy meter whose 'joules' are the model's prefill calls inside its region."""

    calls = 0  # bumped by the wrapped prefill

    def __init__(self, device):
        self.null_reason, self.joules = "", None

    def __enter__(self):
        self.start = CallCountingMeter.calls
        return self

    def __exit__(self, *exc):
        self.joules = float(CallCountingMeter.calls - self.start)

    def result(self, tokens):
        return {"joules": self.joules, "joules_per_token": self.joules / tokens, "tokens": tokens}


@pytest.fixture
def counting_meter(monkeypatch):
    import harness.energy
    from suites import modelbench

    real_build = modelbench.build

    def build(point):
        bench = real_build(point)
        prefill_fn = bench.model.prefill

        def counted(*args, **kwargs):
            CallCountingMeter.calls += 1
            return prefill_fn(*args, **kwargs)

        bench.model.prefill = counted
        return bench

    monkeypatch.setattr(modelbench, "build", build)
    monkeypatch.setattr(harness.energy, "EnergyMeter", CallCountingMeter)


@pytest.fixture
def slow_prompts(monkeypatch):
    """The cost model puts every prefill call past the timing cap."""
    import harness.pool

    monkeypatch.setattr(harness.pool, "one_prefill_seconds", lambda point, cost=None: 1e9)


@pytest.mark.parametrize("short_cold_start", [False, True])
def test_prefill_energy_per_token_counts_the_calls_in_its_region(
    counting_meter, request, short_cold_start
):
    """One joule per call: joules per token must be exactly 1 / (batch x context), whichever
    way the point is timed (it was off by one call: half the truth for a 1M prompt)."""
    if short_cold_start:
        request.getfixturevalue("slow_prompts")
    out = prefill.run(_point("prefill", "transformer", 64, canary=True, cold_prompt=16))
    assert out["cold"]["prompt_tokens"] == (16 if short_cold_start else 64)
    m = out["metrics"]
    assert m["energy"]["joules"] >= 1
    assert m["energy"]["joules_per_token"] == pytest.approx(1 / 64)


def test_long_prompt_takes_its_cold_start_on_a_short_one(slow_prompts, monkeypatch):
    import models.stack

    tuned = []

    def spy(self, b, t, cache):
        tuned.append((b, t, cache.max_len))

    monkeypatch.setattr(models.stack.Model, "pretune", spy)
    out = prefill.run(_point("prefill", "hybrid_1_7", 64, canary=True, cold_prompt=16))
    assert out["cold"]["prompt_tokens"] == 16 and out["cold"]["warmup_calls"] == 0
    assert out["cold"]["pretune_ms"] >= 0  # the warm-up at L, recorded apart (MEASUREMENT.md)
    assert len(out["samples"]["time_ms"]) == 1 and out["metrics"]["stopped_by"] == "max_time"
    assert out["metrics"]["canary"]["passed"]  # the timed call's output is what it checks
    assert tuned == [(1, 64, 64)]  # once, at the prompt's length, with the prefill's cache


def test_only_prompts_predicted_past_the_timing_cap_get_a_short_cold_start():
    from harness.pool import expected_seconds

    long, short = (
        _point("prefill", "transformer", L, canary=True, overrides={}) for L in (65536, 64)
    )
    assert prefill.cold_prompt_for(short) is None
    assert prefill.cold_prompt_for(long) == prefill.COLD_PROMPT  # the default, not named
    assert "cold_prompt" not in dict(long.params)  # so the point's identity does not change
    off = _point("prefill", "transformer", 65536, canary=True, overrides={}, cold_prompt=None)
    assert prefill.cold_prompt_for(off) is None
    odd = replace(long, context=65536 + 5)
    assert prefill.cold_prompt_for(odd) % 16 == 5  # Triton's divisibility by 16 kept
    assert expected_seconds(long) < expected_seconds(off) * 0.7  # one call of L, not two


@pytest.mark.parametrize("arch", ["hybrid_30", "mamba1"])
def test_pretune_runs_one_layer_of_each_kind_at_the_length(arch, monkeypatch):
    """Whatever is tuned or planned per length (Mamba's conv, Mamba-1's scan chunk, the SSD's
    chunk-count bucket, attention's plan) is seen once at [batch, L], off the clock."""
    import models

    m = models.create(arch, **TINY)
    seen = []
    for i, layer in enumerate(m.layers):
        real = layer.mixer.forward

        def spy(x, *a, _i=i, _real=real, cache=None, **k):
            seen.append((m.cfg.pattern[_i], tuple(x.shape), cache is caches.layers[_i]))
            return _real(x, *a, cache=cache, **k)

        monkeypatch.setattr(layer.mixer, "forward", spy)
    caches = m.allocate_cache(2, 40)
    m.pretune(2, 40, caches)  # the kernels' store-the-final-state variants, as the prefill runs
    kinds = list(dict.fromkeys(m.cfg.pattern))
    assert len(kinds) >= (2 if arch.startswith("hybrid") else 1)
    assert seen == [(k, (2, 40, m.cfg.d_model), True) for k in kinds]


def test_the_short_cold_start_plans_a_layer_of_each_kind_by_its_flops():
    """One attention layer is most of a hybrid's long prefill: the plan counts it by FLOPs."""
    from harness import pool
    from suites.modelbench import model_config as cfg

    hybrid, dense = (
        _point("prefill", arch, 1 << 20, canary=True, overrides={})
        for arch in ("hybrid_1_7", "transformer")
    )
    layers = len(set(cfg(hybrid).pattern)) / cfg(hybrid).n_layer  # counted as layers: 3/48
    share = pool._pretune_share(cfg(hybrid), cfg(hybrid).cost(), hybrid)
    assert share > 4 * layers  # by FLOPs: over a quarter
    n = cfg(dense).n_layer
    assert pool._pretune_share(cfg(dense), cfg(dense).cost(), dense) == pytest.approx(
        2 / n, rel=0.05
    )


def test_prefill_of_a_transformers_checkpoint_with_its_canary(tmp_path):
    """model=hf through the prefill suite: token ids below the checkpoint's own vocabulary (64,
    not the preset's), and the canary prefills again (transformers' caches do not rewind)."""
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=128)  # fmt: skip
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    point = replace(
        cpu_point(
            "prefill", "hf", 64, 1, {"overrides": {"hf_source": str(tmp_path)}, "canary": True}
        ),
        timing=TIMING,
    )
    m = prefill.run(point)["metrics"]
    assert m["canary"]["passed"] and m["canary"]["rewound"] is False
    assert m["time_ms"] > 0
