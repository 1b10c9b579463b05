import time

import pytest

from harness.timing import TimingConfig, min_count, percentile, summarize, time_fn


def test_p99_is_null_with_too_few_samples():
    s = summarize([1.0] * 50)
    assert s["count"] == 50
    assert s["p90"] is not None
    assert s["p99"] is None
    assert "100" in s["null_reason"]["p99"]


def test_percentiles_present_with_enough_samples():
    xs = [float(i) for i in range(1, 201)]
    s = summarize(xs)
    assert s["median"] == pytest.approx(100.5)
    assert s["p90"] == pytest.approx(percentile(xs, 0.9))
    assert 195 < s["p99"] < 200
    assert "null_reason" not in s


def test_min_count_rule():
    assert min_count(0.9) == 10
    assert min_count(0.99) == 100
    assert percentile([1.0] * 9, 0.9) is None
    assert percentile([1.0] * 10, 0.9) == 1.0


def test_empty_samples_summarize_to_null():
    s = summarize([])
    assert s["count"] == 0 and s["median"] is None


def test_time_fn_keeps_cold_apart_and_meets_min_count_and_duration():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.05 if len(calls) == 1 else 0.002)  # a slow first call, like a JIT

    t = TimingConfig(warmup=2, min_reps=5, min_time_s=0.05, max_time_s=5.0, flush_l2=False)
    res = time_fn(fn, t, "cpu")
    assert res.cold_ms >= 45
    assert max(res.samples_ms) < 40  # the cold call is not among the samples
    assert len(res.samples_ms) >= 5 and sum(res.samples_ms) >= 50
    assert res.warmup_calls == 2
    assert res.stopped_by == "min_reached"
    assert len(calls) == 1 + 2 + len(res.samples_ms)


def test_time_fn_caps_slow_points():
    t = TimingConfig(warmup=0, min_reps=1000, min_time_s=0.1, max_time_s=0.2, flush_l2=False)
    res = time_fn(lambda: time.sleep(0.02), t, "cpu")
    assert res.stopped_by == "max_time"
    assert 3 <= len(res.samples_ms) < 1000


def test_the_cap_holds_against_min_reps_for_calls_near_the_cap():
    """Calls of 0.7x the cap: one sample, not min_reps of them (a 14 s prefill under a 15 s cap
    once ran five times); none is started that would end past the cap."""
    t = TimingConfig(warmup=0, min_reps=5, min_time_s=0.1, max_time_s=0.1, flush_l2=False)
    t0 = time.perf_counter()
    res = time_fn(lambda: time.sleep(0.07), t, "cpu", cold_ms=70.0)
    assert res.stopped_by == "max_time" and len(res.samples_ms) == 1
    assert time.perf_counter() - t0 < 0.14
    quick = TimingConfig(warmup=0, min_reps=50, min_time_s=0.1, max_time_s=0.1, flush_l2=False)
    res = time_fn(lambda: time.sleep(0.02), quick, "cpu", cold_ms=20.0)
    assert res.stopped_by == "max_time" and 3 <= len(res.samples_ms) <= 5
    assert sum(res.samples_ms) <= 100 + 25  # within the cap, give or take one call's jitter


def test_slow_cold_call_skips_warmup_and_a_given_cold_call_is_not_repeated():
    calls = []

    def fn():
        calls.append(1)
        time.sleep(0.01)

    t = TimingConfig(warmup=3, min_reps=2, min_time_s=0.0, max_time_s=0.2, flush_l2=False)
    # the caller ran the cold call (e.g. for its output) and it took longer than max_time_s / 4
    res = time_fn(fn, t, "cpu", cold_ms=80.0)
    assert res.cold_ms == 80.0
    assert res.warmup_calls == 0
    assert len(calls) == len(res.samples_ms) == 2
    calls.clear()
    res = time_fn(fn, t, "cpu", cold_ms=1.0)  # a quick cold call: the warmup runs
    assert res.warmup_calls == 3 and len(calls) == 3 + len(res.samples_ms)


def test_timing_config_rejects_nonsense():
    with pytest.raises(ValueError, match="min_reps"):
        TimingConfig(min_reps=10, max_reps=5)
