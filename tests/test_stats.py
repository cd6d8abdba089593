"""prkd.experiments.stats: paired t interval over seeds, paired bootstrap over images, verdicts and
formatting."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prkd.experiments.stats import PairedResult, paired_images, paired_seeds

A = [21.0, 20.5, 22.0]
B = [20.0, 20.4, 21.2]


def test_paired_seeds_matches_hand_computation():
    # differences d = [1.0, 0.1, 0.8]; mean = 1.9 / 3
    mean = 1.9 / 3
    # sample variance: sum (d - mean)^2 / (n - 1)
    #   = ((1.0 - 0.6333)^2 + (0.1 - 0.6333)^2 + (0.8 - 0.6333)^2) / 2 = (0.134444 + 0.284444 + 0.027778) / 2
    #   = 0.446667 / 2 = 0.223333, sd = 0.472582
    sd = math.sqrt(((1.0 - mean) ** 2 + (0.1 - mean) ** 2 + (0.8 - mean) ** 2) / 2)
    assert sd == pytest.approx(0.472582, abs=1e-6)
    t975_2 = 4.302652729911275  # Student t quantile, 0.975, 2 degrees of freedom
    half = t975_2 * sd / math.sqrt(3)  # = 4.302653 * 0.272845 (standard error) = 1.173958
    assert half == pytest.approx(1.173958, abs=1e-6)
    # t statistic = mean / (sd / sqrt 3) = 0.633333 / 0.272845 = 2.321219; two-sided p = 2 * (1 -
    # F_t2(2.321219)) = 0.14601
    r = paired_seeds(A, B)
    assert r.mean == pytest.approx(mean, rel=1e-12)
    assert r.low == pytest.approx(mean - half, rel=1e-9)
    assert r.high == pytest.approx(mean + half, rel=1e-9)
    assert r.p_value == pytest.approx(0.14601, abs=1e-5)
    assert (r.n, r.method, r.confidence) == (3, "t over seeds", 0.95)
    assert r.verdict() == "not resolved at this precision"
    assert r.format() == "+0.63 dB [\u22120.54, +1.81]"


def test_paired_seeds_confidence_level_changes_width():
    narrow, wide = paired_seeds(A, B, confidence=0.5), paired_seeds(A, B, confidence=0.99)
    assert wide.low < narrow.low < narrow.mean < narrow.high < wide.high


def _result(low: float, high: float) -> PairedResult:
    return PairedResult(mean=(low + high) / 2, low=low, high=high, n=5, p_value=math.nan,
                        method="t over seeds")


@pytest.mark.parametrize(("low", "high", "plus", "minus"), [
    (0.1, 0.5, "holds", "refuted"),
    (-0.5, -0.1, "refuted", "holds"),
    (-0.1, 0.5, "not resolved at this precision", "not resolved at this precision"),
    (0.0, 0.5, "not resolved at this precision", "not resolved at this precision"),  # 0 is not excluded
    (math.nan, math.nan, "not resolved at this precision", "not resolved at this precision"),
])
def test_verdict_rules(low, high, plus, minus):
    r = _result(low, high)
    assert r.verdict() == plus
    assert r.verdict(claim_sign=+1) == plus
    assert r.verdict(claim_sign=-1) == minus


def test_verdict_rejects_bad_claim_sign():
    with pytest.raises(ValueError, match="claim_sign"):
        _result(0.1, 0.5).verdict(claim_sign=0)


def test_format():
    r = PairedResult(mean=0.314, low=-0.049, high=0.672, n=4, p_value=0.1, method="t over seeds")
    assert r.format() == "+0.31 dB [\u22120.05, +0.67]"
    assert r.format(digits=3, unit="") == "+0.314 [\u22120.049, +0.672]"
    assert _result(math.nan, math.nan).format(unit="dB").endswith("[nan, nan]")


@pytest.mark.parametrize("fn", [paired_seeds, paired_images])
@pytest.mark.parametrize(("a", "b", "match"), [
    ([1.0, 2.0], [1.0], "paired"),
    ([], [], "a is empty"),
    ([1.0, 2.0], [], "b is empty"),
    ([1.0, math.nan], [1.0, 2.0], "a contains non-finite"),
    ([1.0, 2.0], [1.0, math.inf], "b contains non-finite"),
    ([[1.0, 2.0]], [[1.0, 2.0]], "a must be one-dimensional"),
])
def test_bad_input_raises(fn, a, b, match):
    with pytest.raises(ValueError, match=match):
        fn(a, b)


@pytest.mark.parametrize("fn", [paired_seeds, paired_images])
def test_single_pair_gives_nan_interval(fn):
    r = fn([21.0], [20.0])
    assert r.mean == 1.0 and r.n == 1
    assert math.isnan(r.low) and math.isnan(r.high) and math.isnan(r.p_value)
    assert r.verdict() == "not resolved at this precision"
    assert r.verdict(claim_sign=-1) == "not resolved at this precision"


def _per_image_psnr(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    b = rng.normal(20.0, 2.0, size=n)
    return b + rng.normal(0.3, 1.0, size=n), b


def test_paired_images_is_deterministic_and_contains_mean():
    a, b = _per_image_psnr(200, seed=1)
    r1, r2 = paired_images(a, b, seed=7), paired_images(a, b, seed=7)
    assert r1 == r2
    assert r1.method == "bootstrap over images" and r1.n == 200 and math.isnan(r1.p_value)
    assert r1.mean == pytest.approx(float(np.mean(a - b)))
    assert r1.low < r1.mean < r1.high
    assert paired_images(a, b, seed=8) != r1  # the seed does drive the resampling


def test_paired_images_interval_shrinks_with_more_images():
    widths = []
    for n in (50, 800):
        a, b = _per_image_psnr(n, seed=2)
        r = paired_images(a, b)
        assert r.low < r.mean < r.high
        widths.append(r.high - r.low)
    assert widths[1] < widths[0] / 2  # ~ 1 / sqrt(n): a factor 4 expected


def test_paired_images_resolves_a_clear_gain():
    a, b = _per_image_psnr(800, seed=3)
    r = paired_images(a, b)
    assert r.verdict() == "holds" and r.verdict(claim_sign=-1) == "refuted"


def test_paired_images_constant_differences_give_nan():
    r = paired_images([21.0, 22.0, 23.0], [20.0, 21.0, 22.0])
    assert r.mean == pytest.approx(1.0) and math.isnan(r.low) and math.isnan(r.high)


def test_equal_differences_over_seeds_give_no_interval():
    """Two seeds that differ by exactly the same amount have no spread to judge by: not a 'holds'."""
    r = paired_seeds([21.0, 22.0], [20.0, 21.0])
    assert r.mean == 1.0 and math.isnan(r.low) and math.isnan(r.high)
    assert r.verdict() == "not resolved at this precision"
