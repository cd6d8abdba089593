"""Every experiment's verdict, from its collected runs (``prkd.experiments.engine.Results``) and the
comparisons its spec lists: the pairing, the paired interval, Holm's adjustment per family, two one-sided
tests where an interval holds 0, the reading (``prkd.experiments.readings``); and the flatness of every group
under its schedule. Nothing here trains.

Pairing: seed s of every single-snapshot group shares its data order, initial masks, filter and network
weights, so A − B uses the seeds both have; where A is a teacher, B's seed s is paired with the teacher that
student seed s distils (``Comparison.a_seed``), and the interval carries no teacher-to-teacher variance
unless several teacher seeds are among the pairs.
"""

from __future__ import annotations

import math
import statistics

from prkd.experiments.engine import Results, score
from prkd.experiments.readings import flatness_reading, reading
from prkd.experiments.spec import Comparison
from prkd.experiments.stats import EQUIVALENCE_MARGIN_DB, equivalence_seeds, holm, paired_seeds

__all__ = ["seed_pairs", "paired_scores", "paired_columns", "read_family", "verdict_rows", "flat_gain",
           "flatness_rows"]


def seed_pairs(results: Results, c: Comparison) -> list[tuple[int, int]]:
    """(seed of B, seed of A) of every pair of complete runs the comparison has at its budget."""
    ga, gb = results.group(c.a, c.steps), results.group(c.b, c.steps_b or c.steps)
    partner = c.a_seed or (lambda seed: seed)
    return [(s, partner(s)) for s in sorted(gb) if partner(s) in ga]


def paired_scores(results: Results, c: Comparison) -> tuple[list[int], list[float], list[float]]:
    """B's seeds and the paired scores of A and B, each side under its own scoring."""
    ga, gb = results.group(c.a, c.steps), results.group(c.b, c.steps_b or c.steps)
    pairs, (scoring_a, scoring_b) = seed_pairs(results, c), c.scorings
    return ([s for s, _ in pairs], [score(ga[t], scoring_a) for _, t in pairs],
            [score(gb[s], scoring_b) for s, _ in pairs])


def paired_columns(xa: list[float], xb: list[float]) -> dict:
    """A − B paired over seeds: the mean and 95 % interval, the p-value and the equivalence test's (within
    ±``EQUIVALENCE_MARGIN_DB``), with the result and the equivalence reading kept (``_result``,
    ``_equivalence``) for ``read_family``."""
    r = paired_seeds(xa, xb)
    p_tost, equivalence = (equivalence_seeds(xa, xb, EQUIVALENCE_MARGIN_DB) if len(xa) > 1 else
                           (math.nan, "equivalence not shown"))
    return {"ΔPSNR (dB)": round(r.mean, 3), "low": round(r.low, 3), "high": round(r.high, 3), "p": r.p_value,
            f"p TOST ±{EQUIVALENCE_MARGIN_DB:g}": p_tost, "_result": r, "_equivalence": equivalence}


def read_family(rows: list[dict]) -> None:
    """Holm over the rows' p-values (one family), then each row's ``reading`` (``readings.reading``); p-values
    rounded for the table. A row without a seed-level test (``_result`` None, p nan) reads its ``_untested``
    text."""
    for row, adjusted in zip(rows, holm([row["p"] for row in rows])):
        row["p (Holm)"] = adjusted
        result, equivalence, untested = row.pop("_result"), row.pop("_equivalence"), row.pop("_untested", "")
        row["reading"] = reading(result, adjusted, equivalence) if result is not None else untested
        for key in ("p", "p (Holm)", f"p TOST ±{EQUIVALENCE_MARGIN_DB:g}"):
            if key in row:
                row[key] = "" if isinstance(row[key], str) or math.isnan(row[key]) else round(row[key], 4)


def verdict_rows(results: Results, comparisons: list[Comparison], *, means: bool = True) -> list[dict]:
    """One row per comparison with paired runs: its keys, the seeds, the means of A and B, A − B with its
    interval, p, the equivalence test's p, Holm's p within its family and the reading."""
    rows, families = [], {}
    for c in comparisons:
        seeds, xa, xb = paired_scores(results, c)
        if not seeds:
            continue
        row = {**dict(c.keys)}
        row.setdefault("comparison", c.label)
        row["seeds"] = len(seeds)
        if means:
            row |= {"mean A (dB)": round(statistics.fmean(xa), 2),
                    "mean B (dB)": round(statistics.fmean(xb), 2)}
        row |= paired_columns(xa, xb)
        if c.scope:
            row["scope"] = c.scope
        rows.append(row)
        families.setdefault(c.family, []).append(row)
    for family in families.values():
        read_family(family)
    for row in rows:  # the scope sentence last
        if "scope" in row:
            row["scope"] = row.pop("scope")
    return rows


def flat_gain(run, share: float = 0.1) -> float:
    """Validation PSNR gained over the last ``share`` of a run's steps (at least its last epoch)."""
    val = [row["val_psnr"] for row in run.history()]
    back = max(1, round(share * len(val)))
    return val[-1] - val[-1 - back] if len(val) > back else math.nan


def _doubling(results: Results, steps: int, group: str) -> tuple[float, str] | None:
    """The paired change of the group's test PSNR from ``steps`` to twice as many, with the two one-sided
    tests' reading; None where the experiment has no complete doubled budget."""
    if 2 * steps not in results.rungs or not results.complete(2 * steps, group):
        return None
    doubled = Comparison("", group, group, steps=2 * steps, steps_b=steps)
    seeds, after, before = paired_scores(results, doubled)
    if len(seeds) < 2:
        return None
    return (statistics.fmean(a - b for a, b in zip(after, before)),
            equivalence_seeds(after, before, EQUIVALENCE_MARGIN_DB)[1])


def flatness_rows(results: Results, groups: tuple[str, ...] | None = None) -> list[dict]:
    """Per budget and complete group: the validation PSNR its runs gained over their last 10 % of steps (mean
    and largest) and over their last quarter, the change a doubled budget made where there is one, and the
    reading (``readings.flatness_reading``): flat under its schedule is not converged."""
    rows = []
    for steps, group, members in results.members():
        if (groups and group not in groups) or not results.complete(steps, group):
            continue
        tail, quarter = [flat_gain(r) for r in members], [flat_gain(r, 0.25) for r in members]
        doubling = _doubling(results, steps, group)
        rows.append({"steps": steps, "group": group, "runs": len(members),
                     "mean gain, last 10 % (dB)": round(statistics.fmean(tail), 3),
                     "largest gain, last 10 % (dB)": round(max(tail), 3),
                     "mean gain, last quarter (dB)": round(statistics.fmean(quarter), 3),
                     "end moved by a doubled budget (dB)": "" if doubling is None else round(doubling[0], 3),
                     "reading": flatness_reading(max(tail), None if doubling is None else doubling[1])})
    return rows



