"""The claims ledger as code: predicates, verdicts on runs whose truth is known, bounds from OOMs,
user claims with their own measurement, and claims it cannot test (never a crash)."""

from __future__ import annotations

import yaml

from harness.report import ledger
from harness.report.data import Run, table
from harness.report.facts import Facts
from harness.report.ledger import claims as claims_mod
from harness.report.ledger import judge
from harness.report.stats import Estimate
from tests.report import synth

K = 1024


def facts_of(records, memory=synth.DEVICE_MEMORY, gpus=True) -> Facts:
    recs = {r["hash"]: r for r in records}
    env = {
        "device_name": "GPU",
        "device_memory_bytes": memory,
        "gpus": [{"name": "GPU"}] if gpus else [],
    }
    return Facts(
        Run(dir=None, manifest={"env": env}, records=recs, df=table(list(recs.values())), torn=0)
    )


def claim(cid="c", expect=None, measure=None, **kw) -> ledger.Claim:
    return ledger.Claim(id=cid, text="t", expect=expect, measure=measure, **kw)


def decode_points(b, ratio_by_length: dict[int, float], size="1.3b"):
    """Decode points whose Mamba-2 / Transformer bytes-per-token ratio is the given one."""
    for L, r in ratio_by_length.items():
        for model, bytes_ in (("transformer", 1e10), ("mamba2", 1e10 * r)):
            s = synth.samples(4.0, 50, b.rng)
            b.add(
                "decode",
                model,
                L,
                size=size,
                backends=b.model_backends(model),
                time_samples=s,
                metrics={
                    "time_ms": 4.0,
                    "time": {"count": 50},
                    "tokens_per_s": 250.0,
                    "bytes_per_step": bytes_,
                    "memory": {"peak_allocated_bytes": bytes_},
                },
            )


def verdict_of(cid, records, **kw):
    shipped = {c.id: c for c in ledger.load([claims_mod.SHIPPED]).claims}
    return ledger.evaluate_claim(facts_of(records, **kw), shipped[cid])


def test_predicates_decide_only_when_the_interval_is_on_one_side():
    assert judge.at_most(0.6, Estimate(0.5, 0.45, 0.55))[0] == judge.PASS
    assert judge.at_most(0.6, Estimate(0.7, 0.65, 0.75))[0] == judge.FAIL
    assert judge.at_most(0.6, Estimate(0.58, 0.55, 0.62))[0] == judge.UNKNOWN
    assert judge.approx(6, Estimate.exact(5.0))[0] == judge.PASS  # within x1.25: 4.8-7.5
    assert judge.approx(6, Estimate.exact(4.0))[0] == judge.FAIL
    assert judge.in_range([4, 8], Estimate(8.2, 7.9, 8.5))[0] == judge.UNKNOWN
    assert judge.approx_exponent(1.0, Estimate(1.05, 1.02, 1.08))[0] == judge.PASS
    assert judge.above(1.0)(True, Estimate(1.3, 1.1, 1.5))[0] == judge.PASS
    assert judge.above(1.0)(False, Estimate(1.3, 1.1, 1.5))[0] == judge.FAIL
    # a bound: the Transformer ran out of memory, so Mamba-2 / Transformer < 0.3 for sure
    assert judge.at_most(0.6, Estimate(0.3, 0.3, 0.3, "<"))[0] == judge.PASS
    assert judge.at_least(0.5, Estimate(0.3, 0.3, 0.3, "<"))[0] == judge.FAIL
    assert judge.at_most(0.2, Estimate(0.3, 0.3, 0.3, "<"))[0] == judge.UNKNOWN


def test_shipped_claims_file_parses_and_covers_every_shipped_claim():
    shipped = ledger.load([claims_mod.SHIPPED])
    assert len(shipped.claims) == 26 and not any(c.error for c in shipped.claims)
    ids = [c.id for c in shipped.claims]
    assert len(set(ids)) == 26
    for c in shipped.claims:  # each is measured by a registered measurement or evaluator
        assert c.id in ledger.SPECS or c.id in ledger.CUSTOM, c.id
        assert isinstance(c.expect, dict) and c.text and c.source
    raw = yaml.safe_load(claims_mod.SHIPPED.read_text())
    assert [c["expect"] for c in raw["claims"]] == [c.expect for c in shipped.claims]


def test_supported_contradicted_and_inconclusive_follow_the_numbers():
    b = synth.Builder(0)
    decode_points(b, {128 * K: 0.5, 256 * K: 0.4})
    assert verdict_of("bandwidth-128k", b.records).verdict == ledger.SUPPORTED
    b = synth.Builder(0)
    decode_points(b, {128 * K: 0.8, 256 * K: 0.9, 64 * K: 0.1})  # 64K is below the claim's range
    v = verdict_of("bandwidth-128k", b.records)
    assert v.verdict == ledger.CONTRADICTED and len(v.checks) == 2
    b = synth.Builder(0)
    decode_points(b, {128 * K: 0.5, 256 * K: 0.9})
    v = verdict_of("bandwidth-128k", b.records)
    assert v.verdict == ledger.INCONCLUSIVE and "1 hold, 1 fail" in v.reason
    assert all(c.obs.anchor == "fig-decode-1.3b-b1-bfloat16" for c in v.checks)


def test_an_oom_on_the_denominator_gives_a_bound_not_a_gap():
    b = synth.Builder(0)
    b.add("memory", "transformer", 1024 * K, "oom", backends={"attention": "cudnn"})
    b.add(
        "memory",
        "mamba2",
        1024 * K,
        backends={"ssm": "triton"},
        metrics={"prefill_memory": {"peak_allocated_bytes": 8e9}},
    )
    v = verdict_of("vram-128k", b.records)
    (check,) = v.checks
    assert check.obs.estimate.bound == "<" and check.obs.estimate.value == 0.1  # 8 GB / 80 GB
    assert v.verdict == ledger.SUPPORTED and "oom" in check.obs.note


def test_interpolates_to_a_length_the_run_did_not_measure():
    b = synth.Builder(0)
    for L, t_ms in ((16 * K, 10.0), (64 * K, 40.0)):  # Transformer decode latency grows 4x
        for model, ms in (("transformer", t_ms), ("mamba2", 2.0)):
            b.add(
                "decode",
                model,
                L,
                backends=b.model_backends(model),
                time_samples=synth.samples(ms, 60, b.rng),
                metrics={"time_ms": ms, "time": {"count": 60}, "tokens_per_s": 1000 / ms},
            )
    v = verdict_of("decode-tok-s-32k", b.records)
    (check,) = v.checks
    assert abs(check.obs.estimate.value - 10.0) < 1e-9  # sqrt(10 * 40) / 2 in log-log
    assert "interpolated between 16K and 64K" in check.obs.note
    assert v.verdict == ledger.CONTRADICTED  # 10x is outside the claimed 4-8x


def test_claims_the_run_cannot_test_say_why():
    b = synth.Builder(0)
    b.kernels(contexts=[1024, 4096])
    f = facts_of(b.records)
    shipped = {c.id: c for c in ledger.load([claims_mod.SHIPPED]).claims}
    v = ledger.evaluate_claim(f, shipped["energy-30-50"])
    assert v.verdict == ledger.UNTESTABLE and "does not measure" in v.reason
    kv = ledger.evaluate_claim(facts_of([], gpus=False), shipped["kv-70b-128k"])
    assert kv.verdict == ledger.UNTESTABLE and "42.95 GB" in kv.reason
    unknown = ledger.evaluate_claim(f, claim(expect={"vibes_max": 3}))
    assert unknown.verdict == ledger.UNTESTABLE and "vibes_max" in unknown.reason
    nomeasure = ledger.evaluate_claim(f, claim(expect={"ratio_max": 3}))
    assert nomeasure.verdict == ledger.UNTESTABLE and "measure" in nomeasure.reason
    noexpect = ledger.evaluate_claim(f, claim(expect="fast"))
    assert noexpect.verdict == ledger.UNTESTABLE
    badspec = ledger.evaluate_claim(f, claim(expect={"ratio_max": 3}, measure={"kind": "vibes"}))
    assert badspec.verdict == ledger.UNTESTABLE and "kind must be one of" in badspec.reason


def test_a_user_claim_with_its_own_measurement(tmp_path):
    b = synth.Builder(0)
    b.kernels(contexts=[1024, 4096, 16384])
    mine = tmp_path / "mine.yaml"
    mine.write_text(
        yaml.safe_dump(
            {
                "claims": [
                    {
                        "id": "ssd-slower",
                        "text": "SSD is at least 1.5x slower than cuDNN attention at 4K",
                        "expect": {"ratio_min": 1.5},
                        "measure": {
                            "kind": "ratio",
                            "suite": "kernels",
                            "metric": "time_ms",
                            "num": "ssd",
                            "den": "attention",
                            "den_backend": "cudnn",
                            "context": "4k",
                        },
                    },
                    {
                        "id": "bandwidth-128k",
                        "text": "redefined",
                        "expect": {"ratio_max": 0.1},
                        "measure": {
                            "kind": "value",
                            "suite": "kernels",
                            "model": "conv1d",
                            "context": "1k",
                        },
                    },
                    "not a mapping",
                ]
            }
        )
    )
    cs = ledger.load([claims_mod.SHIPPED, mine, tmp_path / "missing.yaml"])
    by_id = {c.id: c for c in cs.claims}
    assert by_id["bandwidth-128k"].text == "redefined"  # a later file replaces by id
    vs = {v.claim.id: v for v in ledger.evaluate(facts_of(b.records), cs)}
    assert vs["ssd-slower"].verdict == ledger.SUPPORTED  # synthetic SSD is 3.6x cuDNN at 4K
    assert "at 4K" in vs["ssd-slower"].checks[0].obs.label
    assert vs["mine.yaml#3"].verdict == ledger.UNTESTABLE and "no id" in vs["mine.yaml#3"].reason
    assert (
        vs["missing.yaml"].verdict == ledger.UNTESTABLE
        and "missing.yaml" in vs["missing.yaml"].reason
    )


def test_every_shipped_claim_evaluates_on_a_full_run_without_a_ledger_error():
    f = facts_of(synth.Builder(0).full().records)
    verdicts = ledger.evaluate(f, ledger.load([claims_mod.SHIPPED]))
    assert len(verdicts) == 26
    for v in verdicts:
        assert v.verdict in ledger.VERDICTS
        assert "ledger failed" not in v.reason, (v.claim.id, v.reason)
    by = {v.claim.id: v.verdict for v in verdicts}
    # what the synthetic physics implies (tests/report/synth.py)
    assert by["bandwidth-128k"] == ledger.SUPPORTED  # no KV cache: a tiny fraction of the bytes
    assert by["transformers-choke-1m"] == ledger.SUPPORTED  # the Transformer's 1M decode OOMs
    assert by["ppl-by-length"] == ledger.SUPPORTED  # planted per bucket to match the claim
    assert by["ssm-scope-crossover"] == ledger.CONTRADICTED  # planted crossing near 113K
    assert by["vram-7b-128k"] == ledger.UNTESTABLE  # no 7B points


def _p99_records(mamba2_spikes: float):
    b = synth.Builder(0)
    for model, spikes in (("transformer", 0.0), ("mamba2", mamba2_spikes)):
        rng = b.rng
        for L in (4 * K, 64 * K):
            s = list(4.0 * (1 + 0.01 * rng.standard_normal(1000)))
            if spikes:
                s = [v * (1 + spikes) if i % 20 == 0 else v for i, v in enumerate(s)]  # 5% spikes
            b.add(
                "decode",
                model,
                L,
                backends=b.model_backends(model),
                time_samples=s,
                metrics={"time_ms": float(sorted(s)[499]), "time": {"count": 1000}},
            )
    return b.records


def test_p99_claim_uses_the_tail_of_the_raw_samples():
    v = verdict_of("p99-spikes", _p99_records(3.0))
    assert v.verdict == ledger.SUPPORTED and len(v.checks) == 2
    assert all(c.obs.estimate.lo > 2.0 for c in v.checks)  # p99/p50 ~ 4 vs ~ 1.02


def test_p99_claim_is_contradicted_when_neither_model_spikes():
    """Equal tails differ by ~0 with an interval around zero: that is no spike, not a tie."""
    v = verdict_of("p99-spikes", _p99_records(0.0))
    assert v.verdict == ledger.CONTRADICTED, [c.obs.estimate for c in v.checks]


def test_o1_state_claim_is_judged_on_ssm_latency_and_memory_not_transformer_latency():
    """At batch 1 a Transformer step reads its weights first: its latency grows slowly (slope
    0.15 from 1K to 16K on the H200). That is not what the claim says; memory growth is."""
    b = synth.Builder(0)
    for L in (1 << 10, 1 << 14, 1 << 16, 1 << 18, 1 << 20):
        for model, ms, peak in (
            ("transformer", 3.0 * (L / 1024) ** 0.15, 2.7e9 + 9e4 * L),  # weights + KV cache
            ("mamba2", 3.0, 3.1e9),
            ("mamba1", 3.0, 3.1e9),
        ):
            b.add("decode", model, L, backends=b.model_backends(model),
                  time_samples=synth.samples(ms, 50, b.rng),
                  metrics={"time_ms": ms, "time": {"count": 50}, "tokens_per_s": 1e3 / ms,
                           "memory": {"peak_allocated_bytes": peak}})  # fmt: skip
    v = verdict_of("state-o1-per-token", b.records)
    assert v.verdict == ledger.SUPPORTED, v
    keys = {c.key for c in v.checks}
    assert keys == {"ssm_latency_slope_max", "ssm_memory_slope_max", "transformer_memory_slope_min"}


def test_an_untestable_reason_names_the_lengths_it_wanted():
    b = synth.Builder(0)
    decode_points(b, {1 << 10: 0.5, 1 << 14: 0.5})  # decode points, none at >= 128K
    v = verdict_of("bandwidth-128k", b.records)
    assert v.verdict == ledger.UNTESTABLE and "no decode points at >= 128K" in v.reason


def test_kv_70b_claim_reads_available_memory_both_ways():
    """The cache alone (43 GB) against the whole device, and against what the 70B model's own
    weights (141 GB) leave: on a 24 GB card both hold; on an H100 or H200 they disagree."""
    shipped = {c.id: c for c in ledger.load([claims_mod.SHIPPED]).claims}
    claim_ = shipped["kv-70b-128k"]
    small = ledger.evaluate_claim(facts_of([], memory=24e9), claim_)
    assert small.verdict == ledger.SUPPORTED
    for memory in (80e9, 150.75e9):
        v = ledger.evaluate_claim(facts_of([], memory=memory), claim_)
        assert v.verdict == ledger.INCONCLUSIVE, (memory, v)
        assert [c.outcome for c in v.checks] == [judge.FAIL, judge.PASS]
    huge = ledger.evaluate_claim(facts_of([], memory=400e9), claim_)
    assert huge.verdict == ledger.CONTRADICTED


def test_frontier_sentence_names_a_suite_point_past_a_time_limited_search():
    """The Transformer's prefill search stopped at 512K (the 1M probe was predicted past its time
    limit) while the prefill suite ran 1M: the summary must not say it runs only up to 512K."""
    from harness.report import summary

    b = synth.Builder(0)
    b.add("prefill", "transformer", 1024 * synth.K, metrics={"time_ms": 2e5})
    for model, mx, ff, limit in (
        ("transformer", 512 * synth.K, 1024 * synth.K, "time"),
        ("mamba2", 4096 * synth.K, None, None),
    ):
        b.add(
            "frontier",
            model,
            64 * synth.K,
            params={"phase": "prefill"},
            metrics={
                "max_context": mx,
                "first_failure": ff,
                "limited_by": limit,
                "phase": "prefill",
            },
        )
    text = " ".join(s.text for s in summary.failures(facts_of(b.records)))
    assert "the Transformer up to 1M (the prefill suite's point" in text, text
    assert "stopped at 512K" in text and "Mamba-2 up to 4M (the search's maximum)" in text


def test_a_throughput_at_the_searchs_largest_batch_is_a_lower_bound():
    """Mamba-1 ran every batch up to the search's cap: its tokens/s (and its ratio over the
    Transformer's) is only a lower bound, so 3.2x does not contradict a claimed 4-5x; 40x does."""

    def records(mamba1_tok_s):
        b = synth.Builder(0)
        for model, best, tok_s, capped in (
            ("transformer", 704, 1000.0, False),
            ("mamba1", 1024, mamba1_tok_s, True),
        ):
            steps = [{"batch": 2**k, "status": "ok"} for k in range(11) if 2**k <= best]
            steps += [] if capped else [{"batch": best + 32, "status": "oom"}]
            for L in (4 * synth.K, 64 * synth.K):
                b.add(
                    "throughput",
                    model,
                    L,
                    metrics={"batch": best, "tokens_per_s": tok_s, "search": steps},
                )
        return b.records

    low = verdict_of("mamba1-5x-throughput", records(3200.0))
    assert low.verdict == ledger.INCONCLUSIVE, [c.obs.estimate for c in low.checks]
    assert all(c.obs.estimate.bound == ">" for c in low.checks)
    high = verdict_of("mamba1-5x-throughput", records(40000.0))
    assert high.verdict == ledger.CONTRADICTED  # at least 40x: outside 4-5x whatever the cap
