"""The budget ladder's own tables beside its verdict (``prkd.experiments.ladder``): the trend of its main
comparisons against the number of steps, the paired KD − E2E gap within the runs, and the normalized-L_cdp
sweep. Each reads the engine's collected runs (``prkd.experiments.engine.Results``); nothing here trains."""

from __future__ import annotations

import math
import statistics

from scipy import stats as scipy_stats

from prkd.experiments.engine import Results
from prkd.experiments.stats import holm, log2_trend, paired_seeds
from prkd.experiments.spec import Comparison
from prkd.experiments.verdicts import paired_scores, seed_pairs

__all__ = ["PAPER_STEPS", "COMPARISONS", "EXTRA_COMPARISONS", "trend_rows", "within_run_rows", "beta_rows"]

#: The paper's budget: 120 epochs of 30k images in batches of 64 (469 steps each).
PAPER_STEPS = 120 * 469
#: (label, group A, group B) of the main comparison at every rung.
COMPARISONS = (("KD − E2E", "KD", "e2e"), ("E2E − random", "e2e", "random"),
               ("teacher − E2E", "teacher", "e2e"))
#: Extra comparisons of the rungs that train their groups.
EXTRA_COMPARISONS = (("KD − L_cdp only", "KD", "L_cdp only"), ("KD − L_feat only", "KD", "L_feat only"),
                     ("noisy: KD − E2E", "KD noisy", "e2e noisy"),
                     ("noisy: E2E − random", "e2e noisy", "random noisy"),
                     ("noisy: teacher − E2E", "teacher noisy", "e2e noisy"))


def trend_rows(results: Results) -> list[dict]:
    """Per main comparison (raw and refined): dB per doubling of steps with its 95 % CI, and the line at the
    paper's budget -- an extrapolation, labelled so. The seeds of a rung are treated as independent draws."""
    comparisons = results.spec.comparisons(results)
    rows = []
    for label, _, _ in COMPARISONS:
        for scoring in ("raw", "refined"):
            steps, diffs = [], []
            for c in comparisons:
                if c.label == label and c.scoring_a == scoring:
                    _, xa, xb = paired_scores(results, c)
                    steps += [c.steps] * len(xa)
                    diffs += [x - y for x, y in zip(xa, xb)]
            if len(set(steps)) < 2 or len(diffs) < 3:
                continue
            t = log2_trend(steps, diffs, at_steps=PAPER_STEPS)
            rows.append({"comparison": label, "scoring": scoring, "rungs": len(set(steps)), "values": t.n,
                         "ΔPSNR per doubling (dB)": round(t.slope, 3), "low": round(t.slope_low, 3),
                         "high": round(t.slope_high, 3),
                         f"extrapolated ΔPSNR at {PAPER_STEPS} steps (dB)": round(t.predicted, 2),
                         "extrapolation low": round(t.predicted_low, 2),
                         "extrapolation high": round(t.predicted_high, 2)})
    return rows


def within_run_rows(results: Results, a: str = "KD", b: str = "e2e") -> list[dict]:
    """The paired validation-PSNR gap A − B at every epoch of every complete rung, mean over seeds with its
    95 % t interval."""
    rows = []
    for steps in results.rungs:
        if not results.complete(steps, a, b):
            continue
        ga, gb = results.group(a, steps), results.group(b, steps)
        pairs = seed_pairs(results, Comparison("", a, b, steps=steps))
        hist = {"a": [[row["val_psnr"] for row in ga[t].history()] for _, t in pairs],
                "b": [[row["val_psnr"] for row in gb[s].history()] for s, _ in pairs]}
        epochs = len(hist["a"][0])
        for e in range(epochs):
            d = [ha[e] - hb[e] for ha, hb in zip(hist["a"], hist["b"])]
            half = (scipy_stats.t.ppf(0.975, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
                    if len(d) > 1 else math.nan)
            rows.append({"steps": steps, "step": (e + 1) * steps // epochs,
                         "val ΔPSNR gap (dB)": round(statistics.fmean(d), 3),
                         "low": round(statistics.fmean(d) - half, 3),
                         "high": round(statistics.fmean(d) + half, 3), "seeds": len(d)})
    return rows


def beta_rows(results: Results) -> list[dict]:
    """The normalized-L_cdp sweep (sigma = 0, beta = L_cdp's share of the loss at step 0) against E2E, raw and
    refined, Holm-adjusted within the sweep, with the loss ratio beta L_cdp / alpha L_task at start and
    end."""
    rows = []
    for steps in results.rungs:
        for beta in results.plan.betas:
            group = f"KD normalized beta={beta:g}"
            if not results.complete(steps, group, "e2e"):
                continue
            metrics = [run.metrics() for run in results.group(group, steps).values()]
            row = {"steps": steps, "beta": beta, "seeds": len(metrics),
                   "β L_cdp / α L_task, start":
                       round(statistics.fmean(m["kd_ratio_start"] for m in metrics), 4),
                   "β L_cdp / α L_task, end": round(statistics.fmean(m["kd_ratio_end"] for m in metrics), 4),
                   "speckle contrast end":
                       round(statistics.fmean(m["speckle_contrast_end"] for m in metrics), 3)}
            for scoring in ("raw", "refined"):
                _, xa, xb = paired_scores(results, Comparison("", group, "e2e", scoring, steps=steps))
                r = paired_seeds(xa, xb)
                row |= {f"ΔPSNR vs E2E, {scoring} (dB)": round(r.mean, 3), f"low, {scoring}": round(r.low, 3),
                        f"high, {scoring}": round(r.high, 3), f"_p {scoring}": r.p_value}
            rows.append(row)
    for scoring in ("raw", "refined"):
        for row, adjusted in zip(rows, holm([row[f"_p {scoring}"] for row in rows])):
            p = row.pop(f"_p {scoring}")
            row[f"p (Holm), {scoring}"] = "" if math.isnan(adjusted) else round(adjusted, 4)
            row[f"p, {scoring}"] = "" if math.isnan(p) else round(p, 4)
    return rows
