"""The study's beta sweeps against E2E (notebook 07): each student of the two sweeps as a paired difference
over seeds, with Benjamini-Hochberg and Holm adjusted p-values over the sweep and the optics' state."""

from __future__ import annotations

import math

from scipy import stats as scipy_stats

from prkd.experiments.engine import Results
from prkd.experiments.readings import scoped_verdict
from prkd.experiments.study_claims import compare
from prkd.experiments.verdicts import read_family

__all__ = ["beta_sweep_rows", "run_of_group"]


def beta_sweep_rows(results: Results) -> list[dict]:
    """Each student of the two beta sweeps against E2E: paired difference over seeds and the optics' state.

    Exploratory: eleven comparisons at 95 % each, so ``q (BH)`` gives the Benjamini-Hochberg adjusted p-values
    (``scipy.stats.false_discovery_control``) over the sweep, and ``p (Holm)`` with its ``reading`` the
    family-wise view the verdict table takes (``verdicts.read_family``); the row sigma = 0, beta = 0 is E2E
    itself.
    """
    rows = []
    for series, label in (("sigma=0", "σ = 0 (α = 1 − β)"), ("alpha=0.5", "σ = 0.5 − β (α = 0.5)")):
        for beta in results.plan.betas:
            group = f"{series} beta={beta:g}"
            alpha = 1 - beta if series == "sigma=0" else 0.5
            c = compare(results, group, "e2e")
            same = run_of_group(results, group, c.seeds) == run_of_group(results, "e2e", c.seeds)
            rows.append({"series": label, "alpha": round(alpha, 4), "beta": beta,
                         "sigma": round(max(0.0, 1 - alpha - beta), 4), "seeds": len(c.seeds),
                         "ΔPSNR vs E2E (dB)": round(c.psnr.mean, 3),
                         "low": round(c.psnr.low, 3), "high": round(c.psnr.high, 3),
                         "p": math.nan if same else c.psnr.p_value,
                         "verdict (> E2E)":
                             "= E2E" if same else scoped_verdict(c.psnr.verdict(claim_sign=+1)),
                         "mask drift (rad)": round(c.optics["mask_drift_rad_a"], 3),
                         "speckle contrast end": round(c.optics["speckle_contrast_end_a"], 3),
                         "L_cdp end": round(c.optics["val_cdp_end_a"], 4),
                         "_result": None if same else c.psnr, "_equivalence": c.equivalence[1],
                         "_untested": "E2E itself"})
    tested = [i for i, r in enumerate(rows) if not math.isnan(r["p"])]
    q = scipy_stats.false_discovery_control([rows[i]["p"] for i in tested]) if tested else []
    for i, row in enumerate(rows):
        row["q (BH)"] = round(float(q[tested.index(i)]), 4) if i in tested else ""
    read_family(rows)
    return rows


def run_of_group(results: Results, group: str, seeds: tuple[int, ...]) -> list[str]:
    """The run ids of a group for ``seeds`` (two groups with the same ids are the same runs)."""
    runs = results.group(group)
    return [runs[s].id for s in seeds]
