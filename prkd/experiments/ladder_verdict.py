"""The budget ladder's answer, read from its finished runs: paired differences per rung, raw and refined, with
Holm-adjusted p-values, equivalence tests where an interval holds 0, the trend against the number of steps,
the gap within the runs and the flattening of the top rung. Nothing here trains.

Pairing: seed s of E2E, random and every student share their data order, initial mask, filter and U-Net; a
comparison of two groups uses the seeds both have at that rung. The teacher has its own seeds: Δ(teacher −
E2E) pairs E2E seed s with the teacher that student seed s distils (``Rung.teacher_seeds``), so with one
teacher seed that difference carries no teacher-to-teacher variance (said in the table), with two it does.
A rung's rows appear once all their runs are complete, so the report can be written as the rungs finish.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from scipy import stats as scipy_stats

from prkd.experiments.ladder import LADDER_PLANS, LadderPlan, LadderRun, ladder_runs
from prkd.experiments.plans import run_of
from prkd.experiments.stats import (EQUIVALENCE_MARGIN_DB, equivalence_seeds, holm, log2_trend, paired_seeds,
                                    reading)
from prkd.learning.rescoring import DEFAULT_REFINE, refined_columns
from prkd.registry import Registry, Run
from prkd.registry.records import read_records

__all__ = ["PAPER_STEPS", "EQUIVALENCE_MARGIN_DB", "FLAT_DB", "REFINE", "LadderResults", "collect_ladder",
           "COMPARISONS", "score", "paired_columns", "read_family", "verdict_rows", "trend_rows",
           "within_run_rows", "flat_gain", "flatness_rows",
           "beta_rows"]

#: The paper's budget: 120 epochs of 30k images in batches of 64 (469 steps each).
PAPER_STEPS = 120 * 469
#: "Ties" means the paired difference lies within +- this margin (two one-sided tests at 5 %).
#: The top rung's precondition: validation PSNR gains less than this over the last 10 % of steps.
FLAT_DB = 0.1
#: The refinement every run is scored with too (prkd.learning.rescoring): RAAR, 200 iterations, no oracle.
REFINE = DEFAULT_REFINE

#: (label, group A, group B) of the main comparison at every rung.
COMPARISONS = (("KD − E2E", "KD", "e2e"), ("E2E − random", "e2e", "random"),
               ("teacher − E2E", "teacher", "e2e"))
#: Extra comparisons of the rungs that train their groups.
EXTRA_COMPARISONS = (("KD − L_cdp only", "KD", "L_cdp only"), ("KD − L_feat only", "KD", "L_feat only"),
                     ("noisy: KD − E2E", "KD noisy", "e2e noisy"),
                     ("noisy: E2E − random", "e2e noisy", "random noisy"),
                     ("noisy: teacher − E2E", "teacher noisy", "e2e noisy"))


@dataclass
class LadderResults:
    """The ladder's complete runs by (steps, group, seed), and the plan they come from."""

    plan: LadderPlan
    items: list[LadderRun]
    runs: dict[tuple[int, str, int], Run]

    @property
    def rungs(self) -> list[int]:
        return sorted({item.steps for item in self.items})

    def seeds(self, steps: int, group: str) -> list[int]:
        return sorted(seed for (s, g, seed) in self.runs if s == steps and g == group)

    def planned(self, steps: int, group: str) -> list[int]:
        return sorted(i.seed for i in self.items if i.steps == steps and i.group == group)

    def complete(self, steps: int, group: str) -> bool:
        planned = self.planned(steps, group)
        return bool(planned) and self.seeds(steps, group) == planned

    def teacher_seed(self, steps: int, seed: int, noisy: bool = False) -> int:
        rung = next(r for r in self.plan.rungs if r.epochs
                    * (r.steps_per_epoch or _epoch_steps(self)) == steps)
        seeds = (0,) if noisy else rung.teacher_seeds
        return seeds[seed % len(seeds)]

    def score(self, steps: int, group: str, seed: int, refined: bool = False) -> float:
        return score(self.runs[(steps, group, seed)], refined)


def score(run, refined: bool = False) -> float:
    """A complete run's (or record's) mean test PSNR, raw or refined under ``REFINE``."""
    return refined_columns(run)["refined_psnr"] if refined else run.metrics()["test_psnr"]


def _epoch_steps(results: LadderResults) -> int:
    return results.items[0].cfg.epoch_steps


def collect_ladder(preset: str, *, registry: Registry, records: Path | None = None) -> LadderResults:
    """The ladder's runs kept as a record in ``records`` (``prkd.registry.records``: an earlier sitting's
    runs), or else complete in the registry; the rest are left out of every table. A record stays the result
    even when its run was trained again (a teacher retrained for its students in a later sitting): a
    committed result never changes because a later sitting repeated a run."""
    items = ladder_runs(preset)
    kept = read_records(records)
    runs = {}
    for item in items:
        run = run_of(item.cfg, registry)
        if run.id in kept or run.is_complete:
            runs[(item.steps, item.group, item.seed)] = kept.get(run.id, run)
    return LadderResults(LADDER_PLANS[preset], items, runs)


def _pairs(results: LadderResults, steps: int, a: str, b: str, refined: bool) -> tuple[list[int], list, list]:
    """Seeds and paired scores of A and B at a rung; a teacher group is paired through ``teacher_seed``."""
    seeds = results.seeds(steps, b)
    if a.startswith("teacher"):
        noisy = a.endswith("noisy")
        pairs = [(s, results.teacher_seed(steps, s, noisy)) for s in seeds]
        pairs = [(s, t) for s, t in pairs if (steps, a, t) in results.runs]
        return ([s for s, _ in pairs], [results.score(steps, a, t, refined) for _, t in pairs],
                [results.score(steps, b, s, refined) for s, _ in pairs])
    seeds = [s for s in seeds if (steps, a, s) in results.runs]
    return seeds, [results.score(steps, a, s, refined) for s in seeds], [results.score(steps, b, s, refined)
                                                                           for s in seeds]


def _ready(results: LadderResults, steps: int, a: str, b: str) -> bool:
    return results.complete(steps, a) and results.complete(steps, b)


def _scope(results: LadderResults, steps: int, n: int, refined: bool) -> str:
    cfg = results.items[0].cfg
    how = f", refined by {REFINE[0].upper()} ({REFINE[1]} it., no oracle)" if refined else ""
    return (f"{steps} steps, {cfg.data.image_size}×{cfg.data.image_size} Fashion-MNIST, n_train "
            f"{cfg.data.n_train}, {n} seeds{how}")


def verdict_rows(results: LadderResults) -> list[dict]:
    """One row per comparison and rung (raw and refined); Holm's adjustment runs over all raw rows together
    and over all refined rows together; a row whose interval holds 0 gets an equivalence test (TOST)."""
    rows = []
    for steps in results.rungs:
        for label, a, b in COMPARISONS + EXTRA_COMPARISONS:
            if not _ready(results, steps, a, b):
                continue
            for refined in (False, True):
                seeds, xa, xb = _pairs(results, steps, a, b, refined)
                rows.append({"steps": steps, "comparison": label, "scoring": "refined" if refined else "raw",
                             "seeds": len(seeds),
                             "teachers": len({results.teacher_seed(steps, s, "noisy" in a) for s in seeds}),
                             **paired_columns(xa, xb), "scope": _scope(results, steps, len(seeds), refined)})
    for scoring in ("raw", "refined"):
        read_family([row for row in rows if row["scoring"] == scoring])
    return rows


def paired_columns(xa: list[float], xb: list[float]) -> dict:
    """A - B paired over seeds: the mean and 95 % interval, the p-value and the equivalence test's, with the
    result and the equivalence reading kept (``_result``, ``_equivalence``) for ``read_family``."""
    r = paired_seeds(xa, xb)
    p_tost, equivalence = (equivalence_seeds(xa, xb, EQUIVALENCE_MARGIN_DB) if len(xa) > 1 else
                           (math.nan, "equivalence not shown"))
    return {"ΔPSNR (dB)": round(r.mean, 3), "low": round(r.low, 3), "high": round(r.high, 3), "p": r.p_value,
            "p TOST ±0.25": p_tost, "_result": r, "_equivalence": equivalence}


def read_family(rows: list[dict]) -> None:
    """Holm over the rows' p-values (one family), then each row's ``reading``; p-values rounded for the
    table."""
    for row, adjusted in zip(rows, holm([row["p"] for row in rows])):
        row["p (Holm)"] = adjusted
        row["reading"] = reading(row.pop("_result"), adjusted, row.pop("_equivalence"))
        for key in ("p", "p (Holm)", "p TOST ±0.25"):
            row[key] = "" if math.isnan(row[key]) else round(row[key], 4)


def _seed_differences(results: LadderResults, a: str, b: str,
                      refined: bool = False) -> tuple[list[int], list]:
    steps_out, diffs = [], []
    for steps in results.rungs:
        if _ready(results, steps, a, b):
            _, xa, xb = _pairs(results, steps, a, b, refined)
            steps_out += [steps] * len(xa)
            diffs += [x - y for x, y in zip(xa, xb)]
    return steps_out, diffs


def trend_rows(results: LadderResults) -> list[dict]:
    """Per main comparison (raw and refined): dB per doubling of steps with its 95 % CI, and the line at the
    paper's budget -- an extrapolation, labelled so."""
    rows = []
    for label, a, b in COMPARISONS:
        for refined in (False, True):
            steps, diffs = _seed_differences(results, a, b, refined)
            if len(set(steps)) < 2 or len(diffs) < 3:
                continue
            t = log2_trend(steps, diffs, at_steps=PAPER_STEPS)
            rows.append({"comparison": label, "scoring": "refined" if refined else "raw",
                         "rungs": len(set(steps)),
                         "values": t.n, "ΔPSNR per doubling (dB)": round(t.slope, 3),
                         "low": round(t.slope_low, 3),
                         "high": round(t.slope_high, 3), f"extrapolated ΔPSNR at {PAPER_STEPS} steps (dB)":
                         round(t.predicted, 2), "extrapolation low": round(t.predicted_low, 2),
                         "extrapolation high": round(t.predicted_high, 2)})
    return rows


def within_run_rows(results: LadderResults, a: str = "KD", b: str = "e2e") -> list[dict]:
    """The paired validation-PSNR gap A − B at every epoch of every complete rung, mean over seeds with its
    95 % t interval."""
    rows = []
    for steps in results.rungs:
        if not _ready(results, steps, a, b):
            continue
        seeds = [s for s in results.seeds(steps, b) if (steps, a, s) in results.runs]
        hist = {g: [[row["val_psnr"] for row in results.runs[(steps, g, s)].history()] for s in seeds]
                for g in (a, b)}
        epochs = len(hist[a][0])
        for e in range(epochs):
            d = [ha[e] - hb[e] for ha, hb in zip(hist[a], hist[b])]
            half = (scipy_stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
                    if len(d) > 1 else math.nan)
            rows.append({"steps": steps, "step": (e + 1) * steps // epochs,
                         "val ΔPSNR gap (dB)": round(statistics.fmean(d), 3),
                         "low": round(statistics.fmean(d) - half, 3),
                         "high": round(statistics.fmean(d) + half, 3),
                         "seeds": len(d)})
    return rows


def flat_gain(run: Run, share: float = 0.1) -> float:
    """Validation PSNR gained over the last ``share`` of a run's steps (10 %: the ladder's flatness; at least
    its last epoch)."""
    val = [row["val_psnr"] for row in run.history()]
    back = max(1, round(share * len(val)))
    return val[-1] - val[-1 - back] if len(val) > back else math.nan


def flatness_rows(results: LadderResults) -> list[dict]:
    """Per rung and main group: the mean and largest gain over the last 10 % of steps, and whether all are
    below ``FLAT_DB`` (the top rung's precondition for E2E and the student)."""
    rows = []
    for steps in results.rungs:
        for group in ("teacher", "e2e", "random", "KD"):
            gains = [flat_gain(run) for (s, g, _), run in results.runs.items() if s == steps and g == group]
            if gains and results.complete(steps, group):
                rows.append({"steps": steps, "group": group, "runs": len(gains),
                             "mean gain, last 10 % (dB)": round(statistics.fmean(gains), 3),
                             "largest gain (dB)": round(max(gains), 3),
                             f"flat (< {FLAT_DB} dB)": max(gains) < FLAT_DB})
    return rows


def beta_rows(results: LadderResults) -> list[dict]:
    """The normalized-L_cdp sweep (sigma = 0, beta = L_cdp's share of the loss at step 0) against E2E, raw and
    refined, Holm-adjusted within the sweep, with the loss ratio beta L_cdp / alpha L_task at start and
    end."""
    rows = []
    for steps in results.rungs:
        for beta in results.plan.betas:
            group = f"KD normalized beta={beta:g}"
            if not _ready(results, steps, group, "e2e"):
                continue
            runs = [run for (s, g, _), run in results.runs.items() if s == steps and g == group]
            metrics = [run.metrics() for run in runs]
            row = {"steps": steps, "beta": beta, "seeds": len(runs),
                   "β L_cdp / α L_task, start":
                       round(statistics.fmean(m["kd_ratio_start"] for m in metrics), 4),
                   "β L_cdp / α L_task, end": round(statistics.fmean(m["kd_ratio_end"] for m in metrics), 4),
                   "speckle contrast end":
                       round(statistics.fmean(m["speckle_contrast_end"] for m in metrics), 3)}
            for refined, name in ((False, "raw"), (True, "refined")):
                _, xa, xb = _pairs(results, steps, group, "e2e", refined)
                r = paired_seeds(xa, xb)
                row |= {f"ΔPSNR vs E2E, {name} (dB)": round(r.mean, 3), f"low, {name}": round(r.low, 3),
                        f"high, {name}": round(r.high, 3), f"_p {name}": r.p_value}
            rows.append(row)
    for name in ("raw", "refined"):
        for row, adjusted in zip(rows, holm([row[f"_p {name}"] for row in rows])):
            p = row.pop(f"_p {name}")
            row[f"p (Holm), {name}"] = "" if math.isnan(adjusted) else round(adjusted, 4)
            row[f"p, {name}"] = "" if math.isnan(p) else round(p, 4)
    return rows
