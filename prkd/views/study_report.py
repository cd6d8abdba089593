"""Figures and files of the study (notebook 07) from its finished runs: curves, mechanism, beta sweep, masks.

``write_study(results, folder)`` writes everything ``docs/results/study/`` holds: the engine's report
(``prkd.views.experiment_report``: runs, verdict, flatness, training, the beta sweep, ``wall_time.json`` and
``records/``), the study's ``verdict.md`` and the figures as PNG (PDF beside them). Nothing here trains.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from prkd.experiments.engine import Results, launches
from prkd.experiments.stats import EQUIVALENCE_MARGIN_DB
from prkd.experiments.study import first_mask, teacher_group
from prkd.experiments.study_claims import compare, scope
from prkd.views.experiment_report import READING_RULES, write_report
from prkd.views.tables import save_figure, to_markdown

__all__ = ["CURVE_GROUPS", "fig_curves", "fig_mechanism", "fig_beta_sweep", "fig_teachers", "fig_masks",
           "write_study"]

#: The groups whose training curves the study shows (mean over seeds).
CURVE_GROUPS = ("e2e", "random", "KD", "L_cdp only", "L_feat only", "e2e normal", "KD normal")


def _mean_history(results: Results, group: str, column: str) -> tuple[list[int], list[float]]:
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


def _plot_groups(ax, results: Results, groups, column: str) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for group in groups:
        if not results.group(group):
            continue
        epochs, means = _mean_history(results, group, column)
        if epochs:
            ax.plot(epochs, means, marker=".", label=f"{group} ({len(results.group(group))})")


def fig_curves(results: Results):
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


def fig_mechanism(results: Results):
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


def fig_teachers(results: Results):
    """Left: test PSNR of the teachers (seed 0) and of their students (mean over seeds) against L_t, the E2E
    seeds as a band (Figs. 2 and 3). Right: each student minus E2E, paired over seeds, with its 95 %
    interval."""
    import matplotlib.pyplot as plt

    plan = results.plan
    masks = sorted(set(plan.teacher_masks) | {1, plan.table_teacher})
    teachers = [statistics.fmean(r.metrics()["test_psnr"]
                                 for r in results.group(teacher_group(L)).values())
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


def fig_masks(results: Results, groups: tuple[str, ...] = ("e2e", "KD", "e2e normal", "KD normal")):
    """Seed 0's mask phase before and after training (wrapped to [0, 2π)) for each group
    (``learned_optics.show_masks``)."""
    from prkd.views.learned_optics import show_masks

    masks = [first_mask(results.group(group)[0]) for group in groups]
    return show_masks([before for before, _ in masks], [after for _, after in masks],
                      [f"{g}, seed 0" for g in groups])


def _verdict_markdown(results: Results, tables: dict[str, list[dict]]) -> str:
    plan = results.plan
    wall = launches(results.spec, results.preset, results.registry, results.records)
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
        READING_RULES, "Holm's family: every seed-level test of the table (not the single-run teachers, not",
        "the plateau). 'ΔPSNR over images' is the BCa bootstrap over the test images (seed-averaged",
        "differences), test-set sampling only."])
    return to_markdown(tables["verdict"], "Verdict") + "\n" + head + "\n\n" + read + "\n"


def write_study(results: Results, folder: Path) -> dict[str, list[dict]]:
    """Write the study's report (``experiment_report.write_report``: its records with what the report reads
    of the weights, ``prkd.views.study_records``) and figures to ``folder``; return the tables."""
    import matplotlib.pyplot as plt

    from prkd.views.study_records import study_record_extra

    tables = write_report(results, folder, record_extra=study_record_extra, markdown=_verdict_markdown)
    for name, fig in (("study_curves", fig_curves(results)), ("study_mechanism", fig_mechanism(results)),
                      ("study_beta_sweep", fig_beta_sweep(tables["beta_sweep"])),
                      ("study_teachers", fig_teachers(results)), ("study_masks", fig_masks(results))):
        save_figure(fig, Path(folder), name)
        plt.close(fig)
    return tables
