"""The paper's numbers and claims beside this run's (notebook 06's ``comparison_with_paper`` table), and the
check of fresh result tables against the committed ones (``compare_results``, ``python -m prkd
check-results``)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import torch

from prkd.data import load_splits, to_images
from prkd.experiments.plans import ABLATIONS, Results, ablation_prefix
from prkd.checks.tolerance import compare_folders
from prkd.metrics import psnr, ssim
from prkd.utils.device import default_device
from prkd.views.report import PAPER, seeds_ci, table2
from prkd.views.tables import SeedSpread, format_ci

__all__ = ["MEASURED_ON_THE_MACHINE", "compare_results", "comparison"]


def _per_image_gain(results: Results, device: torch.device | str | None = None) -> tuple[float, float]:
    """Largest per-image gain (PSNR dB, SSIM) of the seed-0 student over E2E and random on the test split."""
    L = results.plan.table_teacher
    cfg, device = results.runs["e2e s0"].config(), device or default_device()
    img = to_images(load_splits(cfg.data).test, cfg.data.image_size).to(device)
    with torch.no_grad():
        out = {n: results.runs[n].load_system(device)(img).x_hat
               for n in ("e2e s0", "random s0", f"student L_t={L} s0")}
    s = out[f"student L_t={L} s0"]
    dp = max((psnr(s, img) - psnr(out[n], img)).max().item() for n in ("e2e s0", "random s0"))
    ds = max((ssim(s, img) - ssim(out[n], img)).max().item() for n in ("e2e s0", "random s0"))
    return dp, ds


def _holds(flag: bool) -> str:
    return "yes" if flag else "no"


def _row(quantity, paper, here, holds="") -> dict:
    return {"quantity": quantity, "paper": paper, "this run": here, "claim holds here": holds}


def _table1_rows(results: Results) -> list[dict]:
    """Table 1's cells, its best columns, and whether every KD variant beats 'neither' (E2E)."""
    plan = results.plan
    t1 = {name: (seeds_ci(results, ablation_prefix(plan, name), "test_psnr"),
                 seeds_ci(results, ablation_prefix(plan, name), "test_ssim")) for name in ABLATIONS}
    rows = [_row(f"Table 1, {name}: PSNR (dB) / SSIM",
                 f"{PAPER['table1'][name][0]:.2f} / {PAPER['table1'][name][1]:.3f}",
                 f"{format_ci(p, ph, 2)} / {format_ci(s, sh, 3)}") for name, ((p, ph), (s, sh)) in t1.items()]
    best_p = max(t1, key=lambda n: t1[n][0][0])
    best_s = max(t1, key=lambda n: t1[n][1][0])
    kd = [n for n in ABLATIONS if n != "neither"]
    return rows + [
        _row("Table 1: best PSNR", "L_cdp + L_feat", best_p, _holds(best_p == "L_cdp + L_feat")),
        _row("Table 1: best SSIM", "L_cdp only", best_s, _holds(best_s == "L_cdp only")),
        _row("Table 1: every KD variant beats 'neither' (E2E) in PSNR", "yes",
             ", ".join(f"{n} {t1[n][0][0] - t1['neither'][0][0]:+.2f} dB" for n in kd),
             _holds(all(t1[n][0][0] > t1["neither"][0][0] for n in kd)))]


def _ordering_row(means: dict[str, tuple[float, float]], L: int) -> dict:
    """random < E2E < student in mean test PSNR, and whether the 95 % intervals are apart."""
    order = means["random"][0] < means["E2E"][0] < means["student"][0]
    separated = (means["random"][0] + means["random"][1] < means["E2E"][0] - means["E2E"][1]
                 and means["E2E"][0] + means["E2E"][1] < means["student"][0] - means["student"][1])
    return _row(f"random < E2E < student (L_t = {L}), test PSNR", "yes (Fig. 4, Table 1)",
                " < ".join(f"{n} {format_ci(m, h, 2)}" for n,
                           (m, h) in sorted(means.items(), key=lambda kv: kv[1][0])),
                _holds(order) + ("" if not order else (", and the 95 % CIs are apart" if separated
                                                       else ", but the 95 % CIs overlap")))


def _student_spreads(results: Results) -> tuple[float, float]:
    """The seed spreads of the seed-0 numbers of Fig. 3, measured at the table teacher's L_t, the one with
    several student seeds: the sample sd of a student's test PSNR, and that of a student minus the mean of
    the E2E seeds (sqrt(var student + var E2E / n)). NaN with fewer than two seeds."""
    if len(results.plan.seeds) < 2:
        return math.nan, math.nan
    students = results.seeds(f"student L_t={results.plan.table_teacher}", "test_psnr")
    e2e = results.seeds("e2e", "test_psnr")
    var_student, var_e2e = statistics.variance(students), statistics.variance(e2e)
    return math.sqrt(var_student), math.sqrt(var_student + var_e2e / len(e2e))


def _figure_rows(results: Results, e2e: float) -> list[dict]:
    """Fig. 2 (teachers rise with L_t) and Fig. 3 (students beat E2E; the plateau). The seed-0 numbers of
    Fig. 3 carry their seed spread (``SeedSpread``, for check-results); the teachers have one seed each and
    keep the fixed single-run tolerance."""
    Ls = sorted(results.plan.teacher_masks)
    sd_student, sd_gap = _student_spreads(results)
    teachers = [results.teacher(Lt).metrics()["test_psnr"] for Lt in Ls]
    students = {Lt: results.metric(f"student L_t={Lt} s0", "test_psnr") for Lt in Ls}
    return [
        _row("Fig. 2: teacher PSNR rises with L_t", "yes",
             ", ".join(f"L_t={Lt}: {v:.2f}" for Lt, v in zip(Ls, teachers)),
             _holds(all(b > a for a, b in zip(teachers, teachers[1:])))),
        _row("Fig. 3: students beat the E2E baseline for every L_t (PSNR, seed 0)", "yes",
             SeedSpread(", ".join(f"L_t={Lt}: {v - e2e:+.2f} dB" for Lt, v in students.items()), sd_gap),
             _holds(all(v > e2e for v in students.values()))),
        _row("Fig. 3: student PSNR plateau for larger L_t (dB)", "26.95 to 27.0",
             SeedSpread(", ".join(f"L_t={Lt}: {students[Lt]:.2f}" for Lt in Ls[-2:]), sd_student))]


def _cost_rows(results: Results) -> list[dict]:
    """Table 2 as ratios (student / teacher time and memory, teacher / student inference) and the device."""
    L, seeds = results.plan.table_teacher, results.plan.seeds
    teacher = results.teacher(L).metrics()
    students = [results.runs[f"student L_t={L} s{s}"].metrics() for s in seeds]

    def mean(key):
        return sum(m[key] for m in students) / len(students)

    ratio_t = mean("train_seconds") / teacher["train_seconds"]
    ratio_m = mean("peak_memory_mb") / teacher["peak_memory_mb"]
    ratio_i = teacher["inference_ms_per_batch"] / mean("inference_ms_per_batch")
    pt, ps = PAPER["table2"]["teacher"], PAPER["table2"]["student"]
    return [_row("Table 2: student / teacher training time", f"{ps[0] / pt[0]:.2f}", f"{ratio_t:.2f}"),
            _row("Table 2: student / teacher peak memory", f"{ps[1] / pt[1]:.2f}", f"{ratio_m:.2f}"),
            _row("Table 2: teacher / student inference time", f"{pt[2] / ps[2]:.2f}", f"{ratio_i:.2f}",
                 _holds(ratio_i > 1)),
            _row("device", PAPER["table2_device"], table2(results)[0]["device"])]


def comparison(results: Results, device: torch.device | str | None = None) -> list[dict]:
    """Each of the paper's numbers and claims beside this run's measurement, and whether the claim holds here.

    Absolute values differ by design when the preset is not ``paper`` (smaller images, fewer epochs);
    orderings and ratios are what can agree.
    """
    L = results.plan.table_teacher
    means = {n: seeds_ci(results, p, "test_psnr") for n, p in
             (("random", "random"), ("E2E", "e2e"), ("student", f"student L_t={L}"))}
    dp, ds = _per_image_gain(results, device)
    gain = _row("largest per-image gain of the student over random / E2E (PSNR dB / SSIM)",
                f"up to {PAPER['fig4_gain'][0]} / {PAPER['fig4_gain'][1]}", f"{dp:.2f} / {ds:.3f}")
    return [*_table1_rows(results), _ordering_row(means, L), gain, *_figure_rows(results, means["E2E"][0]),
            *_cost_rows(results)]


#: Tables, and rows of the comparison table, that hold times, memory or the device: they differ between any
#: two runs and machines, so ``compare_results`` leaves them out.
MEASURED_ON_THE_MACHINE = {"tables": ("table2_cost", "costs", "training"),
                           "comparison_rows": ("Table 2", "device")}


def compare_results(committed: Path, fresh: Path) -> list[str]:
    """Differences outside tolerance between two folders of tables written by notebook 06 (e.g.
    ``docs/results/quick`` and a fresh run's ``outputs/figures/quick``), one line per cell naming the table,
    row, column, both values and the tolerance; empty when they agree.

    Float kernels differ between CPU types, so cells are compared within a tolerance taken from their own seed
    spread (``prkd.checks.tolerance``; the rule and the measured cross-machine spread are in
    docs/check-results.md), not as text. Times, memory and the device (``MEASURED_ON_THE_MACHINE``) are left
    out. Notes (a verdict or
    a ranking that flipped between numbers within tolerance) are not failures:
    ``prkd.checks.tolerance.compare_folders`` returns them too. Raises FileNotFoundError when
    ``committed`` holds no table or ``fresh`` lacks one.
    """
    return compare_folders(committed, fresh, MEASURED_ON_THE_MACHINE).failures
