"""The report's statistics: the exact order-statistic bootstrap, log-log crossovers with their
interval, slopes and interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.report import crossovers, stats
from harness.report.data import Run, table
from harness.report.facts import Facts, fmt_len
from tests.report import synth


@pytest.mark.parametrize("n", [4, 7, 64, 301])
def test_order_statistic_bootstrap_matches_brute_force_resampling(n):
    rng = np.random.default_rng(n)
    x = rng.lognormal(0.0, 0.4, n)
    (med, p90), (m0, q0) = stats.boot_order_stats(x, "key", (0.5, 0.9), n_boot=40_000)
    idx = rng.integers(0, n, size=(40_000, n))
    res = np.sort(x[idx], axis=1)
    k50, k90 = stats._ranks(n, (0.5, 0.9))
    for fast, slow in (
        (med, res[:, k50 - 1]),
        (p90, res[:, k90 - 1]),
        (p90 / med, res[:, k90 - 1] / res[:, k50 - 1]),
    ):
        qs = [5, 25, 50, 75, 95]
        np.testing.assert_allclose(np.percentile(fast, qs), np.percentile(slow, qs), rtol=0.02)
    assert m0 == np.sort(x)[k50 - 1] and q0 == np.sort(x)[k90 - 1]
    # jointly drawn: the two order statistics come from the same resamples
    assert (
        abs(np.corrcoef(med, p90)[0, 1] - np.corrcoef(res[:, k50 - 1], res[:, k90 - 1])[0, 1])
        < 0.05
    )


def test_bootstrap_is_seeded_by_key_and_refuses_tiny_samples():
    x = [1.0, 2.0, 3.0, 4.0, 5.0]
    a, b = stats.boot_medians(x, "h1")[0], stats.boot_medians(x, "h1")[0]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, stats.boot_medians(x, "h2")[0])
    assert stats.boot_medians([1.0, 2.0], "h") is None
    assert stats.boot_medians([1.0, float("nan"), 2.0], "h") is None  # NaN does not count


def test_loglog_slope_and_interpolation_are_exact_on_power_laws():
    xs = np.array([1024, 4096, 16384, 65536])
    assert stats.loglog_slope(xs, 3e-6 * xs**1.5) == pytest.approx(1.5)
    ys = np.stack([xs**1.0, xs**2.0])
    np.testing.assert_allclose(stats.loglog_slope(xs, ys), [1.0, 2.0])
    assert stats.loglog_interp(1024, 4096, 1024**2, 4096**2, 2048) == pytest.approx(2048**2)


def _facts(records) -> Facts:
    recs = {r["hash"]: r for r in records}
    return Facts(Run(dir=None, manifest={}, records=recs, df=table(list(recs.values())), torn=0))


def _power_series(b, model, coeff, power, lengths, noise=0.0, n=40):
    for L in lengths:
        ms = coeff * L**power
        # raw noise (not re-centred): the sample median misses the truth as a real one does
        s = list(ms * np.exp(b.rng.normal(0.0, noise, n))) if noise else [ms] * n
        b.add(
            "prefill",
            model,
            L,
            metrics={"time_ms": float(np.median(s)), "time": {"count": n}},
            backends=b.model_backends(model),
            time_samples=s,
        )


def test_crossover_of_two_power_laws_is_found_where_they_cross():
    """Transformer t = L^2 / 1e6, Mamba-2 t = L / 1000: equal at L = 1000 exactly; log-log
    interpolation between 512 and 2048 is exact for power laws."""
    b = synth.Builder(0)
    lengths = [128, 512, 2048, 8192]
    _power_series(b, "transformer", 1e-6, 2.0, lengths)
    _power_series(b, "mamba2", 1e-3, 1.0, lengths)
    found = crossovers.all_crossovers(_facts(b.records))
    x = next(c for c in found if c.suite == "prefill")
    assert x.at == pytest.approx(1000.0, rel=1e-9)
    assert x.below == "Transformer" and x.above == "Mamba-2"
    assert "Mamba-2 overtakes Transformer at" in x.text()
    assert x.bracket == (512, 2048) and "between measured 512 and 2K" in x.text()
    assert x.lo == x.hi == pytest.approx(1000.0)  # identical samples: no spread, no width


def test_crossover_interval_comes_from_the_samples_and_stays_in_the_bracket():
    b = synth.Builder(3)
    lengths = [256, 1024, 4096, 16384]
    _power_series(b, "transformer", 1e-6, 2.0, lengths, noise=0.03)
    _power_series(b, "mamba2", 1e-3, 1.0, lengths, noise=0.03)
    x = next(c for c in crossovers.all_crossovers(_facts(b.records)) if c.suite == "prefill")
    assert 256 < x.lo < x.at < x.hi < 4096
    assert 700 < x.at < 1400
    assert x.hi / x.lo < 2  # 3% noise on 40 samples pins the crossing well inside the bracket


def test_no_crossover_in_range_says_who_is_better_and_by_how_much():
    b = synth.Builder(0)
    _power_series(b, "transformer", 2e-3, 1.0, [1024, 4096])
    _power_series(b, "mamba2", 1e-3, 1.0, [1024, 4096])
    x = next(c for c in crossovers.all_crossovers(_facts(b.records)) if c.suite == "prefill")
    assert x.at is None
    assert (
        x.text() == "no crossover in range: Mamba-2 is better at every length from 1K to 4K (by 2×)"
    )


def test_estimate_text_and_lengths_in_prose():
    assert stats.Estimate(5.06, 4.77, 5.17).text() == "5.06 [4.77, 5.17]"
    assert stats.Estimate(0.31, 0.31, 0.31, "<").text() == "< 0.31"
    assert stats.Estimate.exact(5.6e-18).text() == "0"
    assert fmt_len(24576) == "24K" and fmt_len(1048576) == "1M" and fmt_len(23100.4) == "22.6K"
    assert fmt_len(float("nan")) == "–"
    assert math.isclose(stats.crossing(1000, 4000, 1.0, -1.0), 2000.0)


def test_crossover_interval_covers_the_true_crossing_in_most_repeats():
    """The 95% interval is a claim about repeats of the measurement: over 40 noisy repeats of the
    same two power laws (true crossing 1000 tokens) it must contain 1000 nearly always."""
    hits = 0
    for seed in range(40):
        b = synth.Builder(100 + seed)
        _power_series(b, "transformer", 1e-6, 2.0, [256, 1024, 4096], noise=0.03, n=15)
        _power_series(b, "mamba2", 1e-3, 1.0, [256, 1024, 4096], noise=0.03, n=15)
        xs = [
            c for c in crossovers.all_crossovers(_facts(b.records)) if c.suite == "prefill" and c.at
        ]
        hits += any(c.lo <= 1000 <= c.hi for c in xs)
    assert hits >= 34


def test_sort_keys_read_the_same_whatever_the_last_bit():
    """A crossover or ratio computed on another CPU can differ in its last bit; the report's
    data-v must not (a committed report re-rendered elsewhere must match byte for byte)."""
    import math

    from harness.report.tables import cell, sort_key

    v = 93206.9735982136
    w = math.nextafter(v, math.inf)
    assert repr(v) != repr(w) and sort_key(v) == sort_key(w) == "93206.9735982"
    assert cell("num", v) == cell("num", w)
    assert sort_key(None) == sort_key(float("nan")) == ""
    assert float(sort_key(1234567.891)) == 1234567.891  # sorting still sees the value
