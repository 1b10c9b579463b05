"""The quality claims in the ledger: recall intervals from the binomial sampling error of each
accuracy, carried to the mean difference and to the relative drop (a tie band only where no
sample counts were recorded); perplexity compared only within the training length."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from harness.report import ledger
from harness.report.ledger import claims as claims_mod
from harness.report.ledger.custom import ACCURACY_TIE, _accuracy_estimate, _mean_var
from tests.harness.test_report_ledger import facts_of
from tests.report import synth


def test_more_samples_give_a_narrower_interval():
    acc = pd.Series([0.8, 0.6])
    wide = _mean_var(acc, pd.Series([50, 50]))
    narrow = _mean_var(acc, pd.Series([5000, 5000]))
    assert narrow < wide / 50
    assert _mean_var(pd.Series([1.0]), pd.Series([100])) > 0  # 100% still has a width


def test_difference_and_relative_drop_intervals():
    vt, vs = (
        _mean_var(pd.Series([0.9]), pd.Series([100])),
        _mean_var(pd.Series([0.5]), pd.Series([100])),
    )
    d, note = _accuracy_estimate(0.9, 0.5, (vt, vs), relative=False)
    assert d.value == pytest.approx(0.4) and d.lo < 0.4 < d.hi
    assert d.hi - d.lo == pytest.approx(2 * 1.96 * math.sqrt(vt + vs))
    assert "sampling" in note
    r, _ = _accuracy_estimate(0.9, 0.5, (vt, vs), relative=True)
    assert r.value == pytest.approx(4 / 9) and 0.2 < r.lo < r.value < r.hi < 0.7


def test_without_sample_counts_a_tie_band():
    var = _mean_var(pd.Series([0.9]), pd.Series([float("nan")]))
    d, note = _accuracy_estimate(0.9, 0.5, (var, var), relative=False)
    assert (d.lo, d.hi) == pytest.approx((0.4 - ACCURACY_TIE, 0.4 + ACCURACY_TIE))
    assert "tie" in note


def test_perplexity_claim_leaves_out_positions_past_the_training_length():
    """The claim compares models within their context: a bucket past the training length
    measures extrapolation (on the H200 the 2K-trained Transformer's 4K-8K bucket read 52%
    worse than Mamba-2's and "contradicted" the claim's 4K-32K range)."""
    records = synth.Builder(0).full().records
    for r in records:
        if r["point"]["suite"] == "perplexity":
            r["metrics"]["train_length"] = 16 * 1024
    claims = ledger.load([claims_mod.SHIPPED])
    claims.claims = [c for c in claims.claims if c.id == "ppl-by-length"]
    (v,) = ledger.evaluate(facts_of(records), claims)
    labels = [c.obs.label for c in v.checks]
    assert len(labels) == 2 and all("32K-64K" not in x and "16K-32K" not in x for x in labels)
    assert any("past the 16K-token training length" in m for m in v.missing)
