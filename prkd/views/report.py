"""Figs. 2-4 and Tables 1-2 of the paper from the run registry, with the paper's own numbers (``PAPER``).

The writers (``save_figure``, ``write_table``, ``to_markdown``, ``format_ci``) are ``prkd.views.tables``'s;
the paper-versus-here table and ``compare_results`` are ``prkd.views.paper_comparison``'s.

Every function here reads finished runs (``prkd.experiments.collect``); nothing trains. Values over seeds are
given as mean +- 95 % confidence half-width (``prkd.experiments.mean_ci95``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from prkd.data import load_splits, to_images
from prkd.experiments.plans import ABLATIONS, Results, ablation_prefix, mean_ci95
from prkd.learning.rescoring import refined_columns
from prkd.registry import Registry
from prkd.utils.device import default_device
from prkd.views.tables import format_ci, save_figure, to_markdown, write_table

__all__ = ["FIG4_IMAGES", "PAPER", "figure_dir", "fig2_teachers", "fig3_students", "fig4_reconstructions",
           "format_ci", "runs_table", "save_figure", "seeds_ci", "table1", "table2",
           "to_markdown", "write_table"]

#: The paper's numbers (96x96, 120 epochs, single runs, RTX 4090), by where they are stated.
PAPER = {
    # Table 1 (Sec. 4.3), teacher L_t = 9: (PSNR dB, SSIM)
    "table1": {"L_cdp only": (26.94, 0.923), "L_cdp + L_feat": (26.98, 0.915), "L_feat only": (26.70, 0.912),
               "neither": (26.41, 0.910)},
    # Table 2: training time (s), memory (MB), inference time per batch of 64 (ms)
    "table2": {"teacher": (6 * 3600 + 34 * 60 + 18, 5577, 76),
               "student": (7 * 3600 + 21 * 60 + 25, 6647, 32)},
    "table2_device": "NVIDIA GeForce RTX 4090",
    # Sec. 4.2: the student's PSNR plateaus between 26.95 and 27 dB for larger teachers (Fig. 3)
    "fig3_plateau_db": (26.95, 27.0),
    # Sec. 4.2 on Fig. 4: the student improves on the others by up to 1.6 dB PSNR and 0.3 SSIM per image
    "fig4_gain": (1.6, 0.3),
}

#: Indices (in the test split) of the three images of Fig. 4.
FIG4_IMAGES = (0, 1, 2)


def figure_dir(registry: Registry, preset: str) -> Path:
    """``<registry root>/figures/<preset>/`` (created)."""
    return registry.folder("figures", preset)


def seeds_ci(results: Results, prefix: str, key: str) -> tuple[float, float]:
    return mean_ci95(results.seeds(prefix, key))


def table1(results: Results) -> list[dict]:
    """Table 1: test PSNR / SSIM of the L_t = 9 student per KD term set (mean ± 95 % CI over the seeds)."""
    rows = []
    for name, (alpha, beta) in ABLATIONS.items():
        prefix = ablation_prefix(results.plan, name)
        p, s = seeds_ci(results, prefix, "test_psnr"), seeds_ci(results, prefix, "test_ssim")
        paper = PAPER["table1"][name]
        rows.append({"KD terms": name, "alpha": alpha, "beta": beta, "sigma": round(1 - alpha - beta, 6),
                     "PSNR (dB)": format_ci(*p, 2), "SSIM": format_ci(*s, 3),
                     "seeds": len(results.plan.seeds),
                     "paper PSNR (dB)": paper[0], "paper SSIM": paper[1]})
    return rows


def table2(results: Results) -> list[dict]:
    """Table 2: training time, peak memory and inference time per batch, on the device each run used."""
    L = results.plan.table_teacher
    rows = []
    for label, prefix, paper in ((f"teacher (L_t = {L})", None, PAPER["table2"]["teacher"]),
                                 ("student (L_s = 1)", f"student L_t={L}", PAPER["table2"]["student"]),
                                 ("E2E (L = 1)", "e2e", None)):
        seeds = results.plan.seeds
        names = [f"teacher L_t={L}"] if prefix is None else [f"{prefix} s{seed}" for seed in seeds]
        metrics = [results.runs[n].metrics() for n in names]
        t = mean_ci95([m["train_seconds"] for m in metrics])
        mem = mean_ci95([m["peak_memory_mb"] for m in metrics])
        inf = mean_ci95([m["inference_ms_per_batch"] for m in metrics])
        rows.append({"model": label, "training time (s)": format_ci(*t, 1),
                     "peak memory (MB)": format_ci(*mem, 0),
                     f"inference (ms / batch of {metrics[0]['inference_batch']})": format_ci(*inf, 1),
                     "runs": len(metrics), "device": metrics[0]["device"],
                     "paper training time (s)": "" if paper is None else paper[0],
                     "paper memory (MB)": "" if paper is None else paper[1],
                     "paper inference (ms / batch of 64)": "" if paper is None else paper[2]})
    return rows


def runs_table(results: Results) -> list[dict]:
    """One row per run of the reproduction (``runs.csv``): test PSNR / SSIM raw and refined by RAAR for 200
    iterations on the run's own CDPs without an oracle (``prkd.learning.rescoring``), and its run id."""
    rows = []
    for name, run in results.runs.items():
        cfg, m = run.config(), run.metrics()
        rows.append({"name": name, "mode": cfg.train.mode, "L": cfg.optics.n_masks, "seed": cfg.train.seed,
                     "test_psnr": round(m["test_psnr"], 3), "test_ssim": round(m["test_ssim"], 4),
                     **refined_columns(run), "run_id": run.id})
    return rows


def fig2_teachers(results: Results):
    """Fig. 2: teachers' validation PSNR over the epochs, and their test PSNR and SSIM against L_t."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    Ls = sorted(results.plan.teacher_masks)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for L in Ls:
        h = results.teacher(L).history()
        axes[0].plot([r["epoch"] for r in h], [r["val_psnr"] for r in h], marker="o", ms=3,
                     label=f"L_t = {L}")
    axes[0].set(xlabel="epoch", ylabel="validation PSNR (dB)", title="teachers during training")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    axes[0].legend(fontsize=7)
    for ax, key, label in ((axes[1], "test_psnr", "test PSNR (dB)"), (axes[2], "test_ssim", "test SSIM")):
        ax.plot(Ls, [results.teacher(L).metrics()[key] for L in Ls], marker="o")
        ax.set(xlabel="snapshots L_t", ylabel=label, title=f"teachers: {label}", xticks=Ls)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"Fig. 2 -- teacher vs snapshots ({results.plan.preset} preset)")
    fig.tight_layout()
    return fig


def fig3_students(results: Results):
    """Fig. 3: the single-snapshot student's test PSNR / SSIM against its teacher's L_t, with the E2E and
    random baselines as horizontal bands (mean ± 95 % CI over the seeds)."""
    import matplotlib.pyplot as plt

    plan = results.plan
    Ls = sorted(plan.teacher_masks)
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, key, label in ((axes[0], "test_psnr", "test PSNR (dB)"), (axes[1], "test_ssim", "test SSIM")):
        for mode, colour in (("e2e", "tab:orange"), ("random", "tab:gray")):
            m, h = seeds_ci(results, mode, key)
            ax.axhline(m, color=colour, label=f"{'E2E' if mode == 'e2e' else 'random'} (L = 1)")
            if not math.isnan(h):
                ax.axhspan(m - h, m + h, color=colour, alpha=0.15)
        ax.plot(Ls, [results.metric(f"student L_t={L} s0", key) for L in Ls], marker="o", color="tab:blue",
                label="student (L_s = 1), seed 0")
        m, h = seeds_ci(results, f"student L_t={plan.table_teacher}", key)
        ax.errorbar([plan.table_teacher], [m], yerr=None if math.isnan(h) else [h], fmt="s", color="tab:red",
                    capsize=4, label=f"student, L_t = {plan.table_teacher}: mean ± 95 % CI")
        ax.set(xlabel="teacher snapshots L_t", ylabel=label, xticks=Ls)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Fig. 3 -- student vs teacher ({plan.preset} preset)")
    fig.tight_layout()
    return fig


def fig4_reconstructions(results: Results, device: torch.device | str | None = None):
    """Fig. 4: the images ``FIG4_IMAGES`` through teacher (L_t = 9), random, E2E and student (seed 0), each
    titled with its PSNR / SSIM, with the error map |x_hat - x| under each row."""
    from prkd.views.plots import show_reconstructions

    L = results.plan.table_teacher
    runs = {f"teacher (L_t = {L})": results.teacher(L), "random": results.runs["random s0"],
            "E2E": results.runs["e2e s0"], "student (L_s = 1)": results.runs[f"student L_t={L} s0"]}
    cfg, device = runs["E2E"].config(), device or default_device()
    img = to_images(load_splits(cfg.data).test[list(FIG4_IMAGES)], cfg.data.image_size).to(device)
    with torch.no_grad():
        estimates = {name: run.load_system(device)(img).x_hat for name, run in runs.items()}
    return show_reconstructions(img, estimates, error_maps=True,
                                suptitle=f"Fig. 4 -- reconstructions ({results.plan.preset} preset), PSNR dB "
                                         "/ SSIM")
