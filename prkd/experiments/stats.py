"""Paired statistics for comparing two configurations A and B on the same seeds or test images.

* :func:`paired_seeds` -- one number per seed (e.g. a run's mean test PSNR): Student t interval of the
  mean difference A - B (``scipy.stats.ttest_rel``); the error bar for "A beats B when rerun".
* :func:`paired_images` -- one number per test image: BCa bootstrap interval of the mean per-image
  difference (``scipy.stats.bootstrap``); test-set sampling error only, not seed-to-seed variation.

:meth:`PairedResult.verdict` reads an interval as "holds" / "refuted" / "not resolved at this precision"; the
words a table may use for it come from ``prkd.experiments.readings``.

* :func:`holm` -- Holm's step-down adjustment of a family of p-values (family-wise error rate).
* :func:`equivalence_seeds` -- two one-sided paired t tests (TOST) that A - B lies within +- a margin.
* :func:`log2_trend` -- a least-squares line of paired differences against log2(steps), with the slope's
  interval and the line's value (and interval) at another budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["EQUIVALENCE_MARGIN_DB",
           "PairedResult", "paired_seeds", "paired_images", "holm", "equivalence_seeds",
           "Trend", "log2_trend"]


#: The one equivalence margin of every verdict: two one-sided tests call A and B equivalent when the paired
#: difference lies within +- this many dB (the study's plateau claims, the ladder's and the unrolled rows).
EQUIVALENCE_MARGIN_DB = 0.25

@dataclass(frozen=True)
class PairedResult:
    """Mean paired difference A - B with a two-sided confidence interval.

    Attributes:
        mean: Mean of the paired differences A - B.
        low: Lower end of the confidence interval (nan when it cannot be computed, e.g. n < 2).
        high: Upper end of the confidence interval (nan likewise).
        n: Number of pairs.
        p_value: Two-sided paired t-test p-value for "mean difference = 0" (nan for the bootstrap,
            which computes no p-value).
        method: "t over seeds" or "bootstrap over images".
        confidence: Confidence level of the interval, e.g. 0.95.
    """

    mean: float
    low: float
    high: float
    n: int
    p_value: float
    method: str
    confidence: float = 0.95

    def verdict(self, *, claim_sign: int = +1) -> str:
        """Judge a claim about the sign of A - B from the interval.

        Args:
            claim_sign: +1 for the claim "A > B", -1 for "A < B".

        Returns:
            "holds" when the whole interval lies strictly on the claimed side of 0, "refuted" when it
            lies strictly on the other side, and "not resolved at this precision" otherwise (including a
            nan interval).

        Raises:
            ValueError: If ``claim_sign`` is not +1 or -1.
        """
        if claim_sign not in (1, -1):
            raise ValueError(f"claim_sign must be +1 or -1, got {claim_sign!r}")
        low, high = sorted((claim_sign * self.low, claim_sign * self.high))
        if low > 0:  # False for nan
            return "holds"
        if high < 0:
            return "refuted"
        return "not resolved at this precision"

    def format(self, digits: int = 2, unit: str = "dB") -> str:
        """Render as e.g. ``"+0.31 dB [−0.05, +0.67]"`` (signed, with a typographic minus).

        Args:
            digits: Decimal places.
            unit: Unit written after the mean; "" for none.

        Returns:
            The mean, the unit and the interval in brackets.
        """
        def num(x: float) -> str:
            return "nan" if math.isnan(x) else f"{x:+.{digits}f}".replace("-", "\u2212")

        head = f"{num(self.mean)} {unit}" if unit else num(self.mean)
        return f"{head} [{num(self.low)}, {num(self.high)}]"


def _paired_arrays(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Validate two paired samples and return their differences a - b as a float64 array."""
    arrays = []
    for name, x in (("a", a), ("b", b)):
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"{name} is empty")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains non-finite values (nan or inf)")
        arrays.append(arr)
    if arrays[0].size != arrays[1].size:
        raise ValueError(f"a and b must be paired: a has {arrays[0].size} values, b has {arrays[1].size}")
    return arrays[0] - arrays[1]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")


def paired_seeds(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95) -> PairedResult:
    """Paired t interval of the mean difference a - b over seeds.

    Args:
        a: One value per seed for configuration A (e.g. mean test PSNR of each run).
        b: The same for configuration B, in the same seed order.
        confidence: Two-sided confidence level.

    Returns:
        The mean difference, the interval of ``scipy.stats.ttest_rel(a, b).confidence_interval``, the
        two-sided p-value and n. With n < 2, or when every difference is the same (no spread to judge by),
        the interval and p-value are nan.

    Raises:
        ValueError: If a or b is empty, not 1-D, contains non-finite values, or their lengths differ.
    """
    _check_confidence(confidence)
    d = _paired_arrays(a, b)
    # no spread to judge by: an interval of zero width would be no evidence
    if d.size < 2 or np.all(d == d[0]):
        return PairedResult(float(d.mean()), math.nan, math.nan, int(d.size), math.nan,
                            "t over seeds", confidence)
    res = stats.ttest_rel(a, b)
    ci = res.confidence_interval(confidence_level=confidence)
    return PairedResult(float(d.mean()), float(ci.low), float(ci.high), int(d.size), float(res.pvalue),
                        "t over seeds", confidence)


def paired_images(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95,
                  n_resamples: int = 2000, seed: int = 0) -> PairedResult:
    """BCa bootstrap interval of the mean per-image difference a - b.

    The images are resampled as pairs: the bootstrap runs over the differences d = a - b (the same as
    ``scipy.stats.bootstrap((a, b), ..., paired=True)`` with statistic mean(a - b)). No p-value is
    computed (``p_value`` is nan). If all differences are equal, BCa is undefined and the interval is nan.

    Args:
        a: One value per test image for system A (e.g. per-image PSNR), possibly concatenated over seeds.
        b: The same for system B, on the same images in the same order.
        confidence: Two-sided confidence level.
        n_resamples: Number of bootstrap resamples.
        seed: Seed of the resampling; the result is deterministic given it.

    Returns:
        The mean difference, the bootstrap interval and n (interval nan when n < 2).

    Raises:
        ValueError: If a or b is empty, not 1-D, contains non-finite values, or their lengths differ.
    """
    _check_confidence(confidence)
    d = _paired_arrays(a, b)
    method = "bootstrap over images"
    if d.size < 2 or np.all(d == d[0]):
        return PairedResult(float(d.mean()), math.nan, math.nan, int(d.size), math.nan, method, confidence)
    res = stats.bootstrap((d,), np.mean, confidence_level=confidence, n_resamples=n_resamples,
                          method="BCa", rng=np.random.default_rng(seed))
    ci = res.confidence_interval
    return PairedResult(float(d.mean()), float(ci.low), float(ci.high), int(d.size), math.nan, method,
                        confidence)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order: the i-th smallest p times (m - i + 1), made monotone and
    capped at 1. nan entries are left out of the family and stay nan."""
    p = np.asarray(p_values, dtype=np.float64)
    tested = np.flatnonzero(~np.isnan(p))
    out = np.full(p.shape, np.nan)
    order = tested[np.argsort(p[tested], kind="stable")]
    m, running = len(order), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out.tolist()


def equivalence_seeds(a: Sequence[float], b: Sequence[float], margin: float) -> tuple[float, str]:
    """TOST: the p-value of "|mean(a - b)| >= margin" over paired seeds (the larger of the two one-sided
    t tests) and the reading at 5 %: "equivalent within +-margin", or "equivalence not shown"."""
    if not margin > 0:
        raise ValueError(f"the equivalence margin must be > 0; got {margin!r}")
    d = _paired_arrays(a, b)
    if d.size < 2 or np.all(d == d[0]):
        return math.nan, "equivalence not shown"
    se = float(np.std(d, ddof=1) / math.sqrt(d.size))
    df = d.size - 1
    p_low = float(stats.t.sf((d.mean() + margin) / se, df))  # H0: mean <= -margin
    p_high = float(stats.t.cdf((d.mean() - margin) / se, df))  # H0: mean >= +margin
    p = max(p_low, p_high)
    return p, (f"equivalent within ±{margin:g}" if p < 0.05 else "equivalence not shown")


@dataclass(frozen=True)
class Trend:
    """Paired differences against log2(steps): slope (per doubling of steps) with its interval, and the line's
    value at ``at_steps`` with the interval of the line there (an extrapolation beyond the data)."""

    slope: float
    slope_low: float
    slope_high: float
    at_steps: int
    predicted: float
    predicted_low: float
    predicted_high: float
    n: int


def log2_trend(steps: Sequence[int], differences: Sequence[float], *, at_steps: int, confidence: float = 0.95
               ) -> Trend:
    """Ordinary least squares of ``differences`` (one per seed and rung) on log2(``steps``). The seeds of a
    rung are treated as independent draws; the intervals are Student t with n - 2 degrees of freedom."""
    _check_confidence(confidence)
    x, y = np.log2(np.asarray(steps, dtype=np.float64)), np.asarray(differences, dtype=np.float64)
    if x.size != y.size or x.size < 3 or np.unique(x).size < 2:
        raise ValueError(f"a trend needs >= 3 paired values at >= 2 budgets; got {y.size} at "
                         f"{np.unique(x).size}")
    fit = stats.linregress(x, y)
    t = float(stats.t.ppf(0.5 + confidence / 2, x.size - 2))
    x0 = math.log2(at_steps)
    residual = float(np.sqrt(np.sum((y - fit.intercept - fit.slope * x) ** 2) / (x.size - 2)))
    se_line = residual * math.sqrt(1 / x.size + (x0 - x.mean()) ** 2 / np.sum((x - x.mean()) ** 2))
    value = float(fit.intercept + fit.slope * x0)
    return Trend(float(fit.slope), float(fit.slope - t * fit.stderr),
                 float(fit.slope + t * fit.stderr), at_steps,
                 value, value - t * se_line, value + t * se_line, int(x.size))
