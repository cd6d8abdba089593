"""Holm's adjustment, the equivalence test (TOST) and the log2 trend, against hand-computed examples; the
study's reading of an interval against its equivalence margin."""

import math

import numpy as np
import pytest
from scipy import stats

from prkd.experiments import study_claims
from prkd.experiments.stats import PairedResult, equivalence_seeds, holm, log2_trend


def test_holm_by_hand():
    # sorted 0.01, 0.02, 0.04, 0.30 with m = 4: 0.04, 0.06, 0.08, 0.30 (monotone already); input order kept
    assert holm([0.04, 0.01, 0.30, 0.02]) == pytest.approx([0.08, 0.04, 0.30, 0.06])
    # monotone step-down: 0.01*3 = 0.03, 0.011*2 = 0.022 -> 0.03, 0.9*1 = 0.9
    assert holm([0.011, 0.01, 0.9]) == pytest.approx([0.03, 0.03, 0.9])
    out = holm([0.5, math.nan, 0.6])  # nan stays out of the family (m = 2)
    assert out[0] == pytest.approx(1.0) and math.isnan(out[1]) and out[2] == pytest.approx(1.0)


def test_tost_by_hand():
    d = np.array([0.05, -0.05, 0.1, -0.1, 0.0])  # mean 0, sd 0.0791, se 0.03536, df 4
    se = d.std(ddof=1) / math.sqrt(5)
    p, reading = equivalence_seeds(d, np.zeros(5), 0.25)
    assert p == pytest.approx(stats.t.sf(0.25 / se, 4))
    assert reading == "equivalent within ±0.25" and p < 0.05
    p, reading = equivalence_seeds(d + 0.3, np.zeros(5), 0.25)
    assert p > 0.05 and reading == "equivalence not shown"
    with pytest.raises(ValueError, match="margin must be > 0"):
        equivalence_seeds(d, np.zeros(5), 0.0)


def test_log2_trend_recovers_a_line_and_its_prediction():
    steps = [128, 128, 512, 512, 2048, 2048]
    diffs = [-1.0 + 0.5 * math.log2(s / 128) + e for s, e in zip(steps, [0.1, -0.1, 0.1, -0.1, 0.1, -0.1])]
    trend = log2_trend(steps, diffs, at_steps=8192)
    assert trend.slope == pytest.approx(0.5)  # dB per doubling of steps
    assert trend.slope_low < 0.5 < trend.slope_high
    assert trend.predicted == pytest.approx(-1.0 + 0.5 * 6)  # 8192 = 128 x 2**6
    assert trend.predicted_low < trend.predicted < trend.predicted_high and trend.n == 6
    with pytest.raises(ValueError, match=">= 2 budgets"):
        log2_trend([128, 128, 128], [0, 1, 2], at_steps=256)


@pytest.mark.parametrize("low, high, expected", [
    (-0.1, 0.2, "holds"),
    (-0.24, 0.24, "holds"),
    (-0.3, 0.1, "not resolved at this precision"),
    (0.1, 0.4, "not resolved at this precision"),
    (-0.25, 0.0, "not resolved at this precision"),  # the margin itself is not within it
    (0.3, 0.9, "refuted"),
    (-0.9, -0.3, "refuted"),
    (math.nan, math.nan, "not resolved at this precision"),
])
def test_equivalence_reads_the_interval_against_the_margin(low, high, expected):
    mid = 0.0 if math.isnan(low) else (low + high) / 2
    result = PairedResult(mid, low, high, 3, math.nan, "t over seeds")
    assert study_claims._equivalence(result, study_claims.EQUIVALENCE_MARGIN_DB) == expected
