"""The unrolled experiment's answer (``prkd.experiments.unrolled_study``), read from its finished runs:
paired over seeds, raw and refined (RAAR 200 on the system's own noisy CDPs, no oracle), Holm-adjusted over
the table, and the classical solvers on each E2E system's own noisy CDPs scored raw and with the oracle.
Nothing here trains.

Seed s of every L = 1 group shares its data order, initial mask, filter and noise draws, so the comparisons
are paired; the U-Net and the unrolled reconstructor of a seed start from different network weights (different
architectures), which the pairing cannot remove.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from prkd.experiments.fair_comparison import run_method_scores
from prkd.experiments.ladder_verdict import FLAT_DB, flat_gain, paired_columns, read_family, \
    score as ladder_score
from prkd.experiments.plans import run_of
from prkd.experiments.stats import paired_seeds
from prkd.experiments.unrolled_study import unrolled_runs
from prkd.registry import Registry, Run
from prkd.registry.records import read_records

__all__ = ["collect_unrolled", "score", "verdict_rows", "teacher_rows", "classical_rows", "flatness_rows",
           "training_rows"]

#: (label, group A, scoring of A, group B, scoring of B)
COMPARISONS = (
    ("unrolled E2E − U-Net E2E", "unrolled e2e", "raw", "unet e2e", "raw"),
    ("unrolled E2E − U-Net E2E refined (the bar)", "unrolled e2e", "raw", "unet e2e", "refined"),
    ("unrolled E2E refined − U-Net E2E refined", "unrolled e2e", "refined", "unet e2e", "refined"),
    ("unrolled: KD − E2E", "unrolled KD", "raw", "unrolled e2e", "raw"),
    ("unrolled: KD − E2E, both refined", "unrolled KD", "refined", "unrolled e2e", "refined"),
    ("unrolled: KD − random", "unrolled KD", "raw", "unrolled random", "raw"),
    ("unrolled: E2E − random", "unrolled e2e", "raw", "unrolled random", "raw"),
)


def collect_unrolled(preset: str, *, registry: Registry, best_beta: float | None = None,
                     records: Path | None = None) -> dict[tuple[str, int], Run]:
    """The experiment's runs by (group, seed): kept as a record in ``records`` (an earlier sitting's; the
    record stays the result even when the run was trained again), or else complete in the registry."""
    kept, out = read_records(records), {}
    for item in unrolled_runs(preset, best_beta):
        run = run_of(item.cfg, registry)
        if run.id in kept or run.is_complete:
            out[(item.group, item.seed)] = kept.get(run.id, run)
    return out


def score(run: Run, scoring: str) -> float:
    """A run's mean test PSNR, ``scoring`` "raw" or "refined" (``ladder_verdict.score``)."""
    return ladder_score(run, refined=scoring == "refined")


def _row(label: str, runs: dict, a: str, sa: str, b: str, sb: str) -> dict | None:
    seeds = sorted(s for (g, s) in runs if g == b and (a, s) in runs)
    if len(seeds) < 2:
        return None
    xa, xb = [score(runs[(a, s)], sa) for s in seeds], [score(runs[(b, s)], sb) for s in seeds]
    return {"comparison": label, "seeds": len(seeds), "mean A (dB)": round(statistics.fmean(xa), 2),
            "mean B (dB)": round(statistics.fmean(xb), 2), **paired_columns(xa, xb)}


def verdict_rows(runs: dict[tuple[str, int], Run], best_beta: float | None = None) -> list[dict]:
    """Every comparison of ``COMPARISONS`` (and the best-beta student against E2E) with the seeds it has; Holm
    over the table; the reading worded as in the ladder (``prkd.experiments.ladder_verdict``)."""
    extra = ((f"unrolled: KD normalized β = {best_beta:g} − E2E",
              f"unrolled KD normalized beta={best_beta:g}", "raw",
              "unrolled e2e", "raw"),) if best_beta is not None else ()
    rows = [row for spec in COMPARISONS + extra if (row := _row(spec[0], runs, *spec[1:])) is not None]
    read_family(rows)
    return rows


def teacher_rows(runs: dict[tuple[str, int], Run]) -> list[dict]:
    """The unrolled teachers' test PSNR (raw and refined) against L_t; L_t = 1 is the unrolled E2E of seed
    0."""
    rows = []
    teachers = {1: runs.get(("unrolled e2e", 0))} | {int(g.rsplit("=", 1)[1]): run for (g, s),
                                                     run in runs.items()
                                                     if g.startswith("unrolled teacher")}
    for L, run in sorted(teachers.items()):
        if run is not None:
            rows.append({"L_t": L, "test PSNR (dB)": round(score(run, "raw"), 2),
                         "refined PSNR (dB)": round(score(run, "refined"), 2), "run_id": run.id})
    return rows


def classical_rows(runs: dict[tuple[str, int], Run], images, *, n_images: int = 256) -> list[dict]:
    """Per scoring: each E2E system (unrolled and U-Net) against the classical solvers on its own noisy CDPs,
    the per-seed means paired over seeds (``prkd.experiments.fair_comparison.run_method_scores``: computed
    once per run while its weights are at hand, then kept in its folder and its record)."""
    per: dict[tuple[str, str], dict[int, float]] = {}
    for (group, seed), run in runs.items():
        if group not in ("unrolled e2e", "unet e2e"):
            continue
        for method, both in run_method_scores(run, images, n_images=n_images, seed=seed).items():
            for scoring, values in both.items():
                name = f"{group} (learned)" if method == "learned (U-Net)" else f"{method} on {group}'s masks"
                per.setdefault((name, scoring), {})[seed] = statistics.fmean(values)
    rows = []
    for arch in ("unrolled e2e", "unet e2e"):
        for scoring in ("raw", "oracle"):
            learned = per.get((f"{arch} (learned)", scoring), {})
            for (name, sc), values in sorted(per.items()):
                if sc != scoring or not name.endswith(f"on {arch}'s masks"):
                    continue
                seeds = sorted(set(values) & set(learned))
                if len(seeds) < 2:
                    continue
                r = paired_seeds([learned[s] for s in seeds], [values[s] for s in seeds])
                rows.append({"system": arch, "scoring": scoring, "versus": name, "seeds": len(seeds),
                             "learned − classical (dB)": round(r.mean, 3), "low": round(r.low, 3),
                             "high": round(r.high, 3)})
    return rows


def flatness_rows(runs: dict[tuple[str, int], Run]) -> list[dict]:
    """Per group: the validation PSNR gained over the last 10 % of the steps (the ladder's precondition,
    ``ladder_verdict.flat_gain``: every run below ``FLAT_DB``) and over the last quarter. Under the cosine
    schedule the rate is near zero at the end, so a flat end says the schedule has run out, not that more
    steps would not help; the last quarter's gain shows how much the runs still moved before that."""
    rows = []
    for group in sorted({g for g, _ in runs}):
        members = [run for (g, _), run in runs.items() if g == group]
        tail, quarter = [flat_gain(r) for r in members], [flat_gain(r, 0.25) for r in members]
        rows.append({"group": group, "runs": len(members),
                     "mean gain, last 10 % (dB)": round(statistics.fmean(tail), 3),
                     "largest gain, last 10 % (dB)": round(max(tail), 3),
                     f"flat (< {FLAT_DB} dB)": max(tail) < FLAT_DB,
                     "mean gain, last quarter (dB)": round(statistics.fmean(quarter), 3)})
    return rows


def training_rows(runs: dict[tuple[str, int], Run]) -> list[dict]:
    """Per group and in all: the runs' own training seconds (``train_seconds``, summed and per run) and the
    device they name; the wall time of the launches that trained them is longer by what ran between runs."""
    rows, total = [], 0.0
    for group in sorted({g for g, _ in runs}):
        ms = [run.metrics() for (g, _), run in runs.items() if g == group]
        seconds = sum(m["train_seconds"] for m in ms)
        total += seconds
        rows.append({"group": group, "runs": len(ms), "training seconds": round(seconds, 1),
                     "seconds per run": round(seconds / len(ms), 1), "device": ms[0]["device"]})
    rows.append({"group": "all", "runs": len(runs), "training seconds": round(total, 1),
                 "seconds per run": round(total / max(1, len(runs)), 1), "device": ""})
    return rows
