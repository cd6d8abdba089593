"""The words a verdict may use, from one place: every table, report and notebook takes its readings here.

* ``reading``: what a paired interval and its Holm-adjusted p-value say about A − B -- "A > B (Holm p <
  0.05)", "A < B before correction only (Holm p = 0.09)", "equivalent within ±0.25" (only when two one-sided
  tests show it), else "not resolved at this precision". An interval that holds 0 is never a tie or a
  difference.
* ``flatness_reading``: what a run's end says -- "flat under its schedule" when its validation PSNR gained
  less than ``FLAT_DB`` over its last 10 % of steps (under a cosine schedule the rate is near 0 there, so this
  says the schedule ran out), "still rising at its end" otherwise; "converged" only when a doubling of the
  budget moved the end by less than the equivalence margin (two one-sided tests over the paired seeds).
* ``scoped_verdict``: a claim's verdict ("holds" / "refuted") worded with the scale it speaks for.
"""

from __future__ import annotations

import math

from prkd.experiments.stats import EQUIVALENCE_MARGIN_DB, PairedResult

__all__ = ["FLAT_DB", "reading", "flatness_reading", "scoped_verdict", "SCOPED_VERDICT"]

#: A run is flat under its schedule when its validation PSNR gains less than this over its last 10 % of steps.
FLAT_DB = 0.1


def reading(result: PairedResult, holm_p: float, equivalence: str) -> str:
    """What a paired interval and its Holm-adjusted p-value say about A - B, no stronger than they allow:
    "A > B (Holm p < 0.05)", "A < B before correction only (Holm p = 0.09)", the ``equivalence`` reading of
    two one-sided tests when it shows equivalence, else "not resolved at this precision"."""
    if math.isnan(result.low):
        return "not resolved (too few seeds)"
    side = "A > B" if result.mean > 0 else "A < B"
    if holm_p < 0.05:
        return f"{side} (Holm p < 0.05)"
    if result.verdict() != "not resolved at this precision":
        return f"{side} before correction only (Holm p = {holm_p:.2f})"
    return equivalence if equivalence.startswith("equivalent") else "not resolved at this precision"


def flatness_reading(largest_gain: float, doubling_equivalence: str | None = None) -> str:
    """The reading of a group's end: ``largest_gain`` is the largest validation-PSNR gain of its runs over
    their last 10 % of steps; ``doubling_equivalence`` the two one-sided tests' reading of the paired change
    of its end when the budget doubles (None where the experiment has no doubled budget)."""
    if math.isnan(largest_gain):
        return "not measured"
    if largest_gain >= FLAT_DB:
        return "still rising at its end"
    if doubling_equivalence is not None and doubling_equivalence.startswith("equivalent"):
        return f"converged: a doubling of the budget moved its end within ±{EQUIVALENCE_MARGIN_DB:g} dB"
    return "flat under its schedule"


#: The interval's verdict on a claim "A > B", worded with its scope (the row's ``scope``): a claim whose
#: interval lies on the other side of 0 is not reproduced here, which says nothing of the paper's own scale.
SCOPED_VERDICT = {"holds": "holds at this scale", "refuted": "not reproduced at this scale (opposite sign)"}


def scoped_verdict(verdict: str) -> str:
    """``PairedResult.verdict``'s word with its scope ("holds at this scale", ...)."""
    for word, scoped in SCOPED_VERDICT.items():
        if verdict.startswith(word):
            return scoped + verdict[len(word):]
    return verdict
