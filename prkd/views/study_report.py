"""Figures and files of the study (notebook 07) from its finished runs: curves, mechanism, beta sweep, masks.

``write_study(results, folder)`` writes everything ``docs/results/study/`` holds: ``runs.csv``,
``verdict.csv`` / ``verdict.md``, ``beta_sweep.csv`` / ``.md``, ``wall_time.json`` and the figures as PNG
(PDF beside them). Nothing here trains.
"""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import torch

from prkd.utils import atomic
from prkd.utils.device import default_device
from prkd.registry import Registry
from prkd.views.tables import save_figure, to_markdown, write_table
from prkd.experiments.study import wall_time
from prkd.experiments.study_sweep import beta_sweep_rows
from prkd.experiments.verdict import EQUIVALENCE_MARGIN_DB, StudyResults, compare, scope, verdict_rows
from prkd.registry import Run
from prkd.registry.records import RunRecord
from prkd.learning.rescoring import refined_columns

__all__ = ["CURVE_GROUPS", "results_dir", "fig_curves", "fig_mechanism", "fig_beta_sweep",
           "fig_teachers", "fig_masks", "first_mask", "drift_without_offset",
           "runs_rows", "write_study"]

#: The groups whose training curves the study shows (mean over seeds).
CURVE_GROUPS = ("e2e", "random", "KD", "L_cdp only", "L_feat only", "e2e normal", "KD normal")


def results_dir(registry: Registry, preset: str) -> Path:
    """Where notebook 07 writes the study's files: ``<root>/figures/study`` (``figures/study-<preset>`` for
    another preset, e.g. smoke, so it never mixes with that preset's reproduction). Created."""
    return registry.folder("figures", "study" if preset == "study" else f"study-{preset}")


def _mean_history(results: StudyResults, group: str, column: str) -> tuple[list[int], list[float]]:
    """Per-epoch mean over the group's seeds of one history column (epochs where every seed has it), from
    epoch 0 (before training: ``metrics.json``'s ``<column>_start``; a drift of 0) where the runs record
    it."""
    runs = list(results.group(group).values())
    histories = [run.history() for run in runs]
    for run, rows in zip(runs, histories):
        start = 0.0 if column == "mask_drift" else run.metrics().get(f"{column}_start")
        if start is not None:
            rows.insert(0, {"epoch": 0, column: start})
    epochs = sorted(set.intersection(*[{r["epoch"] for r in h if column in r} for h in histories]))
    means = [statistics.fmean(r[column] for h in histories for r in h if r["epoch"] == e) for e in epochs]
    return epochs, means


def _plot_groups(ax, results: StudyResults, groups, column: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for group in groups:
        if not results.group(group):
            continue
        epochs, means = _mean_history(results, group, column)
        if epochs:
            ax.plot(epochs, means, marker=".", label=f"{group} ({len(results.group(group))})")


def fig_curves(results: StudyResults):
    """Validation PSNR per epoch (mean over seeds): has training flattened?"""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    L = results.plan.table_teacher
    _plot_groups(ax, results, (f"teacher L_t={L}", *CURVE_GROUPS), "val_psnr")
    ax.set(xlabel="epoch", ylabel="validation PSNR (dB)", title="Training curves (mean over seeds; n seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def fig_mechanism(results: StudyResults):
    """Mask drift, speckle contrast, init correlation and L_cdp against the teacher, per epoch."""
    import matplotlib.pyplot as plt

    columns = {"mask_drift": "mask drift |φ − φ₀| (rad)", "speckle_contrast": "speckle contrast of the CDP",
               "init_corr": "init correlation with the truth", "val_cdp": "L_cdp vs teacher (paper form)"}
    groups = ("e2e", "KD", "L_cdp only", "L_feat only", "random", "KD standardized")
    fig, axes = plt.subplots(1, len(columns), figsize=(3.4 * len(columns), 3.0))
    for ax, (column, title) in zip(axes, columns.items()):
        _plot_groups(ax, results, groups, column)
        ax.set(xlabel="epoch", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=6)
    fig.tight_layout()
    return fig


def fig_beta_sweep(rows: list[dict]):
    """ΔPSNR of each student against E2E (paired over seeds, 95 % CI) against beta, for both series."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for k, series in enumerate(dict.fromkeys(r["series"] for r in rows)):
        sel = [r for r in rows if r["series"] == series]
        x = [max(r["beta"], 1e-3) * (1.06 if k else 1 / 1.06) for r in sel]  # beta = 0 drawn at 1e-3
        y = [r["ΔPSNR vs E2E (dB)"] for r in sel]
        err = [[0.0 if math.isnan(r["low"]) else yi - r["low"] for yi, r in zip(y, sel)],
               [0.0 if math.isnan(r["high"]) else r["high"] - yi for yi, r in zip(y, sel)]]
        ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=series)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set(xlabel="β (weight of L_cdp; β = 0 drawn at 0.001)", ylabel="ΔPSNR student − E2E (dB)",
           title="β sweep: paired difference over seeds, 95 % CI")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig_teachers(results: StudyResults):
    """Left: test PSNR of the teachers (seed 0) and of their students (mean over seeds) against L_t, the E2E
    seeds as a band (Figs. 2 and 3). Right: each student minus E2E, paired over seeds, with its 95 %
    interval."""
    import matplotlib.pyplot as plt

    plan = results.plan
    masks = sorted(set(plan.teacher_masks) | {1, plan.table_teacher})
    teachers = [statistics.fmean(r.metrics()["test_psnr"]
                                 for r in results.group(results.teacher_group(L)).values())
                for L in masks]
    students = sorted(set(plan.student_masks) | {plan.table_teacher})
    groups = ["KD" if L == plan.table_teacher else f"KD L_t={L}" for L in students]
    e2e = [r.metrics()["test_psnr"] for r in results.group("e2e").values()]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.6, 3.4))
    left.plot(masks, teachers, marker="o", label="teacher, seed 0 (L_t = 1: E2E, mean of its seeds)")
    left.plot(students, [statistics.fmean(r.metrics()["test_psnr"] for r in results.group(g).values())
                         for g in groups],
              marker="s", label="student, mean over seeds")
    left.axhspan(min(e2e), max(e2e), color="grey", alpha=0.25, label=f"E2E, {len(e2e)} seeds (min–max)")
    left.set(xlabel="teacher snapshots L_t", ylabel="test PSNR (dB)",
             title="Teachers and students against L_t")
    diffs = [compare(results, g, "e2e").psnr for g in groups]
    right.errorbar(students, [d.mean for d in diffs], yerr=[[d.mean - d.low for d in diffs],
                                                            [d.high - d.mean for d in diffs]],
                   marker="s", capsize=3, color="C1")
    right.axhline(0, color="k", lw=0.8)
    right.set(xlabel="teacher snapshots L_t", ylabel="ΔPSNR student − E2E (dB)",
              title="Paired over seeds, 95 % CI")
    for ax in (left, right):
        ax.grid(alpha=0.3)
    left.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig_masks(results: StudyResults, groups: tuple[str, ...] = ("e2e", "KD", "e2e normal", "KD normal")):
    """Seed 0's mask phase before and after training (wrapped to [0, 2π)) for each group
    (``learned_optics.show_masks``)."""
    from prkd.views.learned_optics import show_masks

    masks = [first_mask(results.group(group)[0]) for group in groups]
    return show_masks([before for before, _ in masks], [after for _, after in masks],
                      [f"{g}, seed 0" for g in groups])


def _verdict_markdown(results: StudyResults, rows: list[dict], wall: dict) -> str:
    plan = results.plan
    m = EQUIVALENCE_MARGIN_DB
    head = (f"Study `{plan.preset}`: {len({r.id for r in results.runs.values()})} runs; "
            f"{len(plan.core_seeds)} paired seeds for E2E, random, KD and its ablations, "
            f"{len(plan.sweep_seeds)} for the sweeps and variants. Whole study: "
            f"{wall['total_seconds'] / 60:.1f} min of wall time in {len(wall['sessions'])} launch(es).")
    read = " ".join([
        f"Scope of every row: {scope(results)}.\n\nVerdict: the paired 95 % interval over seeds on the",
        "claimed side of 0 = holds at this scale, on the other side = not reproduced at this scale,",
        "containing 0 = not resolved; the single-seed teachers borrow the spread of the E2E seeds (column",
        f"'interval'); a plateau holds when the 90 % interval lies within ±{m} dB (two one-sided tests).",
        "Reading: Holm's adjustment over every seed-level test of the table (not the single-run teachers,",
        "not the plateau); 'A > B (Holm p < 0.05)' is the only wording that claims a difference after",
        "correction; an interval that holds 0 is called equivalent only when two one-sided tests put it",
        f"within ±{m} dB. 'ΔPSNR over images' is the BCa bootstrap over the test images (seed-averaged",
        "differences), test-set sampling only."])
    return to_markdown(rows, "Verdict") + "\n" + head + "\n\n" + read + "\n"


def write_study(results: StudyResults, folder: Path) -> dict[str, list[dict]]:
    """Write the study's tables, figures and wall time to ``folder``; return the tables."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"runs": runs_rows(results), "verdict": verdict_rows(results),
              "beta_sweep": beta_sweep_rows(results)}
    write_table(tables["runs"], folder, "runs")
    write_table(tables["beta_sweep"], folder, "beta_sweep", title="β sweep against E2E (paired over seeds)")
    wall = wall_time(results.plan.preset, results.registry, results.records)
    write_table(tables["verdict"], folder, "verdict")
    atomic.write_text(folder / "verdict.md", _verdict_markdown(results, tables["verdict"], wall))
    atomic.write_json(folder / "wall_time.json", wall)
    import matplotlib.pyplot as plt
    for name, fig in (("study_curves", fig_curves(results)), ("study_mechanism", fig_mechanism(results)),
                      ("study_beta_sweep", fig_beta_sweep(tables["beta_sweep"])),
                      ("study_teachers", fig_teachers(results)), ("study_masks", fig_masks(results))):
        save_figure(fig, folder, name)
        plt.close(fig)
    return tables


def first_mask(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """(phi before, phi after training) of the run's first mask: from its weights, or as its record kept them
    (``prkd.views.study_records``)."""
    if isinstance(run, RunRecord):
        return torch.tensor(run.extra["first_mask_phi0"]), torch.tensor(run.extra["first_mask_phi"])
    sensing = run.load_system(default_device()).sensing
    return sensing.phi0[0].cpu(), sensing.phi.detach()[0].cpu()


def drift_without_offset(run: Run) -> float:
    """The run's final mask drift once each mask's common phase offset (invisible to the CDPs) is removed:
    from its weights, or as its record kept it."""
    if isinstance(run, RunRecord):
        return run.extra["mask_drift_no_offset_rad"]
    return float(run.load_system(default_device()).sensing.drift_rad(remove_offset=True))


def runs_rows(results: StudyResults) -> list[dict]:
    """One row per distinct run of the study (``runs.csv``); ``mask_drift_no_offset_rad`` loads each model.
    The ``group`` column (the name without its seed) gives check-results each group's seed spread as the
    tolerance of its single runs (``prkd.experiments.tolerance``)."""
    rows, seen = [], set()
    for name, run in results.runs.items():
        if run.id in seen:
            continue
        seen.add(run.id)
        cfg, m = run.config(), run.metrics()
        t = cfg.train
        rows.append({"name": name, "group": re.sub(r" s\d+$", "", name), "mode": t.mode, "seed": t.seed,
                     "L_t": cfg.optics.n_masks if t.mode == "teacher"
                     else (t.teacher_masks if t.mode == "student" else ""),
                     "alpha": t.alpha, "beta": t.beta, "sigma": round(cfg.sigma, 6),
                     "mask_init": cfg.optics.mask_init,
                     "cdp_loss": t.cdp_loss if t.mode == "student" else "", "epochs": t.epochs,
                     "test_psnr": round(m["test_psnr"], 3), "test_ssim": round(m["test_ssim"], 4),
                     **refined_columns(run), "mask_drift_rad": round(m["mask_drift_rad"], 4),
                     "mask_drift_no_offset_rad": round(drift_without_offset(run), 4),
                     "speckle_contrast_start": round(m["speckle_contrast_start"], 4),
                     "speckle_contrast_end": round(m["speckle_contrast_end"], 4),
                     "init_corr_end": round(m["init_corr_end"], 4),
                     "wall_seconds": round(m["train_seconds"], 1),
                     "run_id": run.id})
    return rows
