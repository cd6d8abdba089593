"""Figs. 2-4 and Tables 1-2 of the paper from the run registry, the paper's own numbers beside them, and
atomic writers for figures (PNG + PDF) and tables (CSV + Markdown).

Every function here reads finished runs (``prkd.experiments.collect``); nothing trains. Values over seeds are
given as mean +- 95 % confidence half-width (``prkd.experiments.mean_ci95``).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import torch

from . import atomic
from .data import load_splits, to_images
from .experiments import ABLATIONS, Results, ablation_prefix, mean_ci95
from .metrics import psnr, ssim
from .registry import Registry
from .tolerance import compare_folders

__all__ = ["FIG4_IMAGES", "MEASURED_ON_THE_MACHINE", "PAPER", "compare_results", "comparison", "figure_dir", "fig2_teachers", "fig3_students",
           "fig4_reconstructions", "format_ci", "save_figure", "table1", "table2", "to_markdown", "write_table"]

#: The paper's numbers (96x96, 120 epochs, single runs, RTX 4090), by where they are stated.
PAPER = {
    # Table 1 (Sec. 4.3), teacher L_t = 9: (PSNR dB, SSIM)
    "table1": {"L_cdp only": (26.94, 0.923), "L_cdp + L_feat": (26.98, 0.915), "L_feat only": (26.70, 0.912),
               "neither": (26.41, 0.910)},
    # Table 2: training time (s), memory (MB), inference time per batch of 64 (ms)
    "table2": {"teacher": (6 * 3600 + 34 * 60 + 18, 5577, 76), "student": (7 * 3600 + 21 * 60 + 25, 6647, 32)},
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


def format_ci(mean: float, half: float, digits: int) -> str:
    """``"mean ± half"`` (just the mean when there is one value)."""
    return f"{mean:.{digits}f}" if math.isnan(half) else f"{mean:.{digits}f} ± {half:.{digits}f}"


def save_figure(fig, folder: Path, name: str, *, dpi: int = 110) -> list[Path]:
    """Write ``fig`` as ``name.png`` and ``name.pdf`` atomically (no timestamps, so a re-run gives the same bytes)."""
    paths = []
    for fmt, metadata in (("png", {"Software": None}), ("pdf", {"CreationDate": None, "Producer": None})):
        buf = io.BytesIO()
        fig.savefig(buf, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
        paths.append(atomic.write_bytes(folder / f"{name}.{fmt}", buf.getvalue()))
    return paths


def to_markdown(rows: list[dict], title: str = "") -> str:
    """``rows`` (dicts with the same keys) as a Markdown table, under ``title`` in bold if given."""
    columns = list(rows[0])
    md = ([f"**{title}**", ""] if title else []) + ["| " + " | ".join(columns) + " |",
                                                  "|" + "|".join("---" for _ in columns) + "|"]
    md += ["| " + " | ".join(str(row[c]) for c in columns) + " |" for row in rows]
    return "\n".join(md) + "\n"


def write_table(rows: list[dict], folder: Path, name: str, *, title: str = "") -> list[Path]:
    """Write ``rows`` (dicts with the same keys) as ``name.csv`` and ``name.md`` atomically."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return [atomic.write_text(folder / f"{name}.csv", buf.getvalue()),
            atomic.write_text(folder / f"{name}.md", to_markdown(rows, title))]


def _seeds_ci(results: Results, prefix: str, key: str) -> tuple[float, float]:
    return mean_ci95(results.seeds(prefix, key))


def table1(results: Results) -> list[dict]:
    """Table 1: test PSNR / SSIM of the L_t = 9 student per KD term set (mean ± 95 % CI over the seeds)."""
    rows = []
    for name, (alpha, beta) in ABLATIONS.items():
        prefix = ablation_prefix(results.plan, name)
        p, s = _seeds_ci(results, prefix, "test_psnr"), _seeds_ci(results, prefix, "test_ssim")
        paper = PAPER["table1"][name]
        rows.append({"KD terms": name, "alpha": alpha, "beta": beta, "sigma": round(1 - alpha - beta, 6),
                     "PSNR (dB)": format_ci(*p, 2), "SSIM": format_ci(*s, 3), "seeds": len(results.plan.seeds),
                     "paper PSNR (dB)": paper[0], "paper SSIM": paper[1]})
    return rows


def table2(results: Results) -> list[dict]:
    """Table 2: training time, peak memory and inference time per batch, on the device each run used."""
    L = results.plan.table_teacher
    rows = []
    for label, prefix, paper in ((f"teacher (L_t = {L})", None, PAPER["table2"]["teacher"]),
                                 ("student (L_s = 1)", f"student L_t={L}", PAPER["table2"]["student"]),
                                 ("E2E (L = 1)", "e2e", None)):
        names = [f"teacher L_t={L}"] if prefix is None else [f"{prefix} s{seed}" for seed in results.plan.seeds]
        metrics = [results.runs[n].metrics() for n in names]
        t = mean_ci95([m["train_seconds"] for m in metrics])
        mem = mean_ci95([m["peak_memory_mb"] for m in metrics])
        inf = mean_ci95([m["inference_ms_per_batch"] for m in metrics])
        rows.append({"model": label, "training time (s)": format_ci(*t, 1), "peak memory (MB)": format_ci(*mem, 0),
                     f"inference (ms / batch of {metrics[0]['inference_batch']})": format_ci(*inf, 1),
                     "runs": len(metrics), "device": metrics[0]["device"],
                     "paper training time (s)": "" if paper is None else paper[0],
                     "paper memory (MB)": "" if paper is None else paper[1],
                     "paper inference (ms / batch of 64)": "" if paper is None else paper[2]})
    return rows


def fig2_teachers(results: Results):
    """Fig. 2: teachers' validation PSNR over the epochs, and their test PSNR and SSIM against L_t."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    Ls = sorted(results.plan.teacher_masks)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for L in Ls:
        h = results.teacher(L).history()
        axes[0].plot([r["epoch"] for r in h], [r["val_psnr"] for r in h], marker="o", ms=3, label=f"L_t = {L}")
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
            m, h = _seeds_ci(results, mode, key)
            ax.axhline(m, color=colour, label=f"{'E2E' if mode == 'e2e' else 'random'} (L = 1)")
            if not math.isnan(h):
                ax.axhspan(m - h, m + h, color=colour, alpha=0.15)
        ax.plot(Ls, [results.metric(f"student L_t={L} s0", key) for L in Ls], marker="o", color="tab:blue",
                label="student (L_s = 1), seed 0")
        m, h = _seeds_ci(results, f"student L_t={plan.table_teacher}", key)
        ax.errorbar([plan.table_teacher], [m], yerr=None if math.isnan(h) else [h], fmt="s", color="tab:red",
                    capsize=4, label=f"student, L_t = {plan.table_teacher}: mean ± 95 % CI")
        ax.set(xlabel="teacher snapshots L_t", ylabel=label, xticks=Ls)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Fig. 3 -- student vs teacher ({plan.preset} preset)")
    fig.tight_layout()
    return fig


def fig4_reconstructions(results: Results, device: torch.device | str = "cpu"):
    """Fig. 4: the images ``FIG4_IMAGES`` through teacher (L_t = 9), random, E2E and student (seed 0), each
    titled with its PSNR / SSIM, with the error map |x_hat - x| under each row."""
    from .plots import show_reconstructions

    L = results.plan.table_teacher
    runs = {f"teacher (L_t = {L})": results.teacher(L), "random": results.runs["random s0"],
            "E2E": results.runs["e2e s0"], "student (L_s = 1)": results.runs[f"student L_t={L} s0"]}
    cfg = runs["E2E"].config()
    img = to_images(load_splits(cfg.data).test[list(FIG4_IMAGES)], cfg.data.image_size).to(device)
    with torch.no_grad():
        estimates = {name: run.load_system(device)(img).x_hat for name, run in runs.items()}
    return show_reconstructions(img, estimates, error_maps=True,
                                suptitle=f"Fig. 4 -- reconstructions ({results.plan.preset} preset), PSNR dB / SSIM")


def _per_image_gain(results: Results, device: torch.device | str = "cpu") -> tuple[float, float]:
    """Largest per-image gain (PSNR dB, SSIM) of the seed-0 student over E2E and random on the test split."""
    L = results.plan.table_teacher
    cfg = results.runs["e2e s0"].config()
    img = to_images(load_splits(cfg.data).test, cfg.data.image_size).to(device)
    with torch.no_grad():
        out = {n: results.runs[n].load_system(device)(img).x_hat for n in ("e2e s0", "random s0", f"student L_t={L} s0")}
    s = out[f"student L_t={L} s0"]
    dp = max((psnr(s, img) - psnr(out[n], img)).max().item() for n in ("e2e s0", "random s0"))
    ds = max((ssim(s, img) - ssim(out[n], img)).max().item() for n in ("e2e s0", "random s0"))
    return dp, ds


def _holds(flag: bool) -> str:
    return "yes" if flag else "no"


def comparison(results: Results, device: torch.device | str = "cpu") -> list[dict]:
    """Each of the paper's numbers and claims beside this run's measurement, and whether the claim holds here.

    Absolute values differ by design when the preset is not ``paper`` (smaller images, fewer epochs);
    orderings and ratios are what can agree.
    """
    plan, rows = results.plan, []
    L = plan.table_teacher

    def row(quantity, paper, here, holds=""):
        rows.append({"quantity": quantity, "paper": paper, "this run": here, "claim holds here": holds})

    t1 = {name: (_seeds_ci(results, ablation_prefix(plan, name), "test_psnr"),
                 _seeds_ci(results, ablation_prefix(plan, name), "test_ssim")) for name in ABLATIONS}
    for name, ((p, ph), (s, sh)) in t1.items():
        row(f"Table 1, {name}: PSNR (dB) / SSIM", f"{PAPER['table1'][name][0]:.2f} / {PAPER['table1'][name][1]:.3f}",
            f"{format_ci(p, ph, 2)} / {format_ci(s, sh, 3)}")
    best_p = max(t1, key=lambda n: t1[n][0][0])
    best_s = max(t1, key=lambda n: t1[n][1][0])
    row("Table 1: best PSNR", "L_cdp + L_feat", best_p, _holds(best_p == "L_cdp + L_feat"))
    row("Table 1: best SSIM", "L_cdp only", best_s, _holds(best_s == "L_cdp only"))
    row("Table 1: every KD variant beats 'neither' (E2E) in PSNR", "yes",
        ", ".join(f"{n} {t1[n][0][0] - t1['neither'][0][0]:+.2f} dB" for n in ABLATIONS if n != "neither"),
        _holds(all(t1[n][0][0] > t1["neither"][0][0] for n in ABLATIONS if n != "neither")))
    means = {n: _seeds_ci(results, p, "test_psnr") for n, p in
             (("random", "random"), ("E2E", "e2e"), ("student", f"student L_t={L}"))}
    order = means["random"][0] < means["E2E"][0] < means["student"][0]
    separated = (means["random"][0] + means["random"][1] < means["E2E"][0] - means["E2E"][1]
                 and means["E2E"][0] + means["E2E"][1] < means["student"][0] - means["student"][1])
    row(f"random < E2E < student (L_t = {L}), test PSNR", "yes (Fig. 4, Table 1)",
        " < ".join(f"{n} {format_ci(m, h, 2)}" for n, (m, h) in sorted(means.items(), key=lambda kv: kv[1][0])),
        _holds(order) + ("" if not order else (", and the 95 % CIs are apart" if separated else ", but the 95 % CIs overlap")))
    dp, ds = _per_image_gain(results, device)
    row("largest per-image gain of the student over random / E2E (PSNR dB / SSIM)",
        f"up to {PAPER['fig4_gain'][0]} / {PAPER['fig4_gain'][1]}", f"{dp:.2f} / {ds:.3f}")
    teachers = [results.teacher(Lt).metrics()["test_psnr"] for Lt in sorted(plan.teacher_masks)]
    row("Fig. 2: teacher PSNR rises with L_t", "yes",
        ", ".join(f"L_t={Lt}: {v:.2f}" for Lt, v in zip(sorted(plan.teacher_masks), teachers)),
        _holds(all(b > a for a, b in zip(teachers, teachers[1:]))))
    students = {Lt: results.metric(f"student L_t={Lt} s0", "test_psnr") for Lt in sorted(plan.teacher_masks)}
    e2e = means["E2E"][0]
    row("Fig. 3: students beat the E2E baseline for every L_t (PSNR, seed 0)", "yes",
        ", ".join(f"L_t={Lt}: {v - e2e:+.2f} dB" for Lt, v in students.items()),
        _holds(all(v > e2e for v in students.values())))
    row("Fig. 3: student PSNR plateau for larger L_t (dB)", "26.95 to 27.0",
        ", ".join(f"L_t={Lt}: {students[Lt]:.2f}" for Lt in sorted(plan.teacher_masks)[-2:]))
    t2 = {r["model"]: r for r in table2(results)}
    teacher_m = results.teacher(L).metrics()
    student_m = [results.runs[f"student L_t={L} s{s}"].metrics() for s in plan.seeds]
    ratio_t = sum(m["train_seconds"] for m in student_m) / len(student_m) / teacher_m["train_seconds"]
    ratio_m = sum(m["peak_memory_mb"] for m in student_m) / len(student_m) / teacher_m["peak_memory_mb"]
    ratio_i = teacher_m["inference_ms_per_batch"] / (sum(m["inference_ms_per_batch"] for m in student_m) / len(student_m))
    pt, ps = PAPER["table2"]["teacher"], PAPER["table2"]["student"]
    row("Table 2: student / teacher training time", f"{ps[0] / pt[0]:.2f}", f"{ratio_t:.2f}")
    row("Table 2: student / teacher peak memory", f"{ps[1] / pt[1]:.2f}", f"{ratio_m:.2f}")
    row("Table 2: teacher / student inference time", f"{pt[2] / ps[2]:.2f}", f"{ratio_i:.2f}",
        _holds(ratio_i > 1))
    row("device", PAPER["table2_device"], next(iter(t2.values()))["device"])
    return rows


#: Tables, and rows of the comparison table, that hold times, memory or the device: they differ between any two
#: runs and machines, so ``compare_results`` leaves them out.
MEASURED_ON_THE_MACHINE = {"tables": ("table2_cost",), "comparison_rows": ("Table 2", "device")}


def compare_results(committed: Path, fresh: Path) -> list[str]:
    """Differences outside tolerance between two folders of tables written by notebook 06 (e.g.
    ``docs/results/quick`` and a fresh run's ``outputs/figures/quick``), one line per cell naming the table,
    row, column, both values and the tolerance; empty when they agree.

    Float kernels differ between CPU types, so cells are compared within a tolerance taken from their own seed
    spread (``prkd.tolerance``; the rule and the measured cross-machine spread are in docs/check-results.md),
    not as text. Times, memory and the device (``MEASURED_ON_THE_MACHINE``) are left out. Notes (a verdict or
    a ranking that flipped between numbers within tolerance) are not failures: ``prkd.tolerance.compare_folders``
    returns them too. Raises FileNotFoundError when ``committed`` holds no table or ``fresh`` lacks one.
    """
    return compare_folders(committed, fresh, MEASURED_ON_THE_MACHINE).failures
