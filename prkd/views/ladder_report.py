"""The budget ladder's files from its finished runs (``prkd.experiments.ladder_verdict``): ``runs.csv``, the
verdict (``verdict.csv`` / ``verdict.md``), the trend against steps (``trend.csv``, ``ladder_trend.png``), the
gap within the runs (``within_runs.csv``, ``ladder_within_runs.png``), the top rung's flattening
(``flatness.csv``), the normalized-L_cdp sweep (``beta_sweep.csv``), ``wall_time.json`` and ``records/``, one
record per run (``prkd.registry.records``) from which a later sitting reports them again (with the fair
comparison's scores of the seed-0 single-snapshot runs, ``FAIR_GROUPS``, which notebook 08 needs). Nothing
here trains; rungs that are not complete yet are left out, so the files can be written as each rung finishes.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

from prkd.experiments.ladder_verdict import (COMPARISONS, EQUIVALENCE_MARGIN_DB, FLAT_DB, PAPER_STEPS, REFINE,
                                             LadderResults, beta_rows, flat_gain, flatness_rows, trend_rows,
                                             verdict_rows, within_run_rows)
from prkd.data import load_splits
from prkd.experiments.fair_comparison import FAIR_IMAGES, run_method_scores
from prkd.learning.rescoring import refined_columns
from prkd.registry import Registry
from prkd.registry.records import RunRecord, keep_records
from prkd.utils import atomic
from prkd.views.tables import save_figure, to_markdown, write_table

__all__ = ["FAIR_GROUPS", "results_dir", "runs_rows", "fig_trend", "fig_within_runs", "verdict_markdown",
           "write_ladder"]


#: The runs (of seed 0) that notebook 08's fair comparison may choose (``fair_comparison.ladder_systems``).
FAIR_GROUPS = ("e2e", "KD", "random", "e2e noisy", "KD noisy", "random noisy")


def keep_fair_scores(results: LadderResults) -> None:
    """Score every seed-0 run of ``FAIR_GROUPS`` that is in the registry for the fair comparison (kept in its
    folder, and so in its record), while its weights are at hand."""
    test = None
    for (_, group, seed), run in results.runs.items():
        if group in FAIR_GROUPS and seed == 0 and not isinstance(run, RunRecord):
            test = load_splits(run.config().data).test if test is None else test
            run_method_scores(run, test, n_images=FAIR_IMAGES)


def results_dir(registry: Registry, preset: str) -> Path:
    """``<root>/figures/ladder`` (``figures/ladder-<preset>`` for another preset, e.g. smoke). Created."""
    return registry.folder("figures", "ladder" if preset == "ladder" else f"ladder-{preset}")


def runs_rows(results: LadderResults) -> list[dict]:
    """One row per complete run: its rung, group, seed and config, raw and refined test scores, the loss
    ratio, the flattening and its training time."""
    rows = []
    for (steps, group, seed), run in sorted(results.runs.items(), key=lambda kv: kv[0]):
        cfg, m = run.config(), run.metrics()
        refined = refined_columns(run)
        t = cfg.train
        rows.append({"steps": steps, "n_train": cfg.data.n_train, "group": group, "seed": seed,
                     "run_id": run.id,
                     "mode": t.mode, "L": cfg.optics.n_masks, "teacher_seed": t.teacher_seed if t.mode
                     == "student" else "",
                     "alpha": t.alpha, "beta": t.beta, "cdp_loss": t.cdp_loss if t.mode == "student" else "",
                     "noise": cfg.optics.noise, "test_psnr": round(m["test_psnr"], 4),
                     "test_ssim": round(m["test_ssim"], 4),
                     "refined_psnr": refined["refined_psnr"], "refined_ssim": refined["refined_ssim"],
                     "val_psnr": round(m["val_psnr"], 4), "val_gain_last_10pct": round(flat_gain(run), 4),
                     "kd_ratio_start": _round(m.get("kd_ratio_start")),
                     "kd_ratio_end": _round(m.get("kd_ratio_end")),
                     "speckle_contrast_end": _round(m.get("speckle_contrast_end")),
                     "mask_drift_rad": _round(m.get("mask_drift_rad")),
                     "train_seconds": round(m["train_seconds"], 1)})
    return rows


def _round(value, digits: int = 4):
    return "" if value is None else round(value, digits)


def fig_trend(rows: list[dict]):
    """The paired differences of ``COMPARISONS`` against steps (log axis), raw and refined, with 95 % CIs."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(COMPARISONS), figsize=(4.2 * len(COMPARISONS), 3.4), squeeze=False)
    for ax, (label, _, _) in zip(axes[0], COMPARISONS):
        for scoring, marker in (("raw", "o"), ("refined", "s")):
            part = [r for r in rows if r["comparison"] == label and r["scoring"] == scoring]
            if not part:
                continue
            x = [r["steps"] for r in part]
            y = [r["ΔPSNR (dB)"] for r in part]
            err = [[r["ΔPSNR (dB)"] - r["low"] if not math.isnan(r["low"]) else 0 for r in part],
                   [r["high"] - r["ΔPSNR (dB)"] if not math.isnan(r["high"]) else 0 for r in part]]
            ax.errorbar(x, y, yerr=err, marker=marker, capsize=3, label=f"{scoring} test PSNR")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set(title=f"Δ {label}", xlabel="Adam steps", ylabel="paired ΔPSNR (dB, 95 % CI)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def fig_within_runs(rows: list[dict]):
    """The paired KD − E2E validation gap along training, one line per rung, with its 95 % band."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for steps in sorted({r["steps"] for r in rows}):
        part = [r for r in rows if r["steps"] == steps]
        x = [r["step"] for r in part]
        ax.plot(x, [r["val ΔPSNR gap (dB)"] for r in part], label=f"{steps} steps")
        ax.fill_between(x, [r["low"] for r in part], [r["high"] for r in part], alpha=0.2)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xscale("log", base=2)
    ax.set(xlabel="step", ylabel="KD − E2E validation PSNR (dB)", title="The gap within the runs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _gap_course(within: list[dict]) -> str:
    """Whether the top rung's KD − E2E gap closes, holds or widens from a quarter of its steps to the end."""
    if not within:
        return ""
    top = max(r["steps"] for r in within)
    part = [r for r in within if r["steps"] == top]
    quarter, end = part[max(0, len(part) // 4 - 1)], part[-1]
    change = end["val ΔPSNR gap (dB)"] - quarter["val ΔPSNR gap (dB)"]
    return (f"Within the {top}-step runs the paired KD − E2E validation gap goes from "
            f"{quarter['val ΔPSNR gap (dB)']:+.2f} dB [{quarter['low']:+.2f}, {quarter['high']:+.2f}] at "
            f"step {quarter['step']} to {end['val ΔPSNR gap (dB)']:+.2f} dB [{end['low']:+.2f}, "
            f"{end['high']:+.2f}] at its end ({change:+.2f} dB).")


def _missing_groups(results: LadderResults) -> str:
    """' Not reported, runs missing: ...' for every planned group of a rung that has not all its seeds."""
    missing = [f"{group} at {steps} steps ({len(results.seeds(steps, group))} of "
               f"{len(results.planned(steps, group))} seeds)"
               for steps in results.rungs
               for group in dict.fromkeys(i.group for i in results.items if i.steps == steps)
               if not results.complete(steps, group)]
    return f" Not reported, runs missing: {'; '.join(missing)}." if missing else ""


def verdict_markdown(results: LadderResults, tables: dict[str, list[dict]]) -> str:
    """verdict.md: the scope, the top rung's precondition, the verdict table and the trend."""
    cfg = results.items[0].cfg
    flat = [r for r in tables["flatness"] if r["steps"] == max(results.rungs) and r["group"] in ("e2e", "KD")]
    flat_text = ("; ".join(f"{r['group']}: largest gain {r['largest gain (dB)']:+.3f} dB over {r['runs']} "
                           "runs"
                           for r in flat) or "the top rung is not complete yet")
    met = bool(flat) and all(r[f"flat (< {FLAT_DB} dB)"] for r in flat)
    lines = [
        f"# Budget ladder `{results.plan.preset}`",
        "",
        f"Scope: {cfg.data.image_size}×{cfg.data.image_size} Fashion-MNIST phase objects, n_train "
        f"{cfg.data.n_train}, batch {cfg.train.batch_size}, learning rates decayed by a cosine to 0 (every "
        f"mode alike), the teacher with L_t = {results.plan.teacher_masks}; planned rungs of "
        f"{', '.join(map(str, results.rungs))} Adam steps (the paper: {PAPER_STEPS}). {len(results.runs)} of "
        f"{len(results.items)} planned runs "
        f"complete.{_missing_groups(results)}",
        "",
        f"Precondition at the top rung (validation PSNR gains < {FLAT_DB} dB over the last 10 % of steps): "
        f"{'met' if met else 'not met'} -- {flat_text}.",
        "",
        f"Reading: Holm's adjustment over every raw row (and separately every refined row) of the table; "
        f"'A > B (Holm p < 0.05)' is the only wording that claims a difference; an interval that holds 0 is "
        f"tested for equivalence within ±{EQUIVALENCE_MARGIN_DB} dB (two one-sided tests) before anything is "
        f"said to tie. Refined = the output refined by {REFINE[0].upper()} for {REFINE[1]} iterations on its "
        f"own CDPs, with its own global phase (no oracle).",
        "",
        to_markdown(tables["verdict"], "Verdict, paired over seeds"),
    ]
    if tables["trend"]:
        lines += ["", to_markdown(tables["trend"], f"Trend against log2(steps); the value at {PAPER_STEPS} "
                                                   f"steps is an extrapolation beyond the data")]
    lines += ["", _gap_course(tables["within"])]
    return "\n".join(lines) + "\n"


def write_ladder(results: LadderResults, folder: Path) -> dict[str, list[dict]]:
    """Write every file of the module docstring to ``folder``; return the tables."""
    import matplotlib.pyplot as plt
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"runs": runs_rows(results), "verdict": verdict_rows(results), "trend": trend_rows(results),
              "within": within_run_rows(results), "flatness": flatness_rows(results),
              "beta": beta_rows(results)}
    for name, key in (("runs", "runs"), ("verdict", "verdict"), ("trend", "trend"), ("within_runs", "within"),
                      ("flatness", "flatness"), ("beta_sweep", "beta")):
        if tables[key]:
            write_table(tables[key], folder, name)
    atomic.write_text(folder / "verdict.md", verdict_markdown(results, tables))
    keep_fair_scores(results)
    # what a later sitting needs to report these runs without retraining them
    keep_records(results.runs.values(), folder / "records")
    seconds = [r["train_seconds"] for r in tables["runs"]]
    by_rung = {str(s): round(sum(r["train_seconds"] for r in tables["runs"] if r["steps"] == s), 1)
               for s in results.rungs}
    atomic.write_json(folder / "wall_time.json", {"training_seconds": round(sum(seconds), 1),
                                                  "by_rung": by_rung,
                                                  "runs": len(seconds), "mean_run_seconds":
                                                      round(statistics.fmean(seconds), 1)
                                                      if seconds else None})
    for name, fig in (("ladder_trend", fig_trend(tables["verdict"]) if tables["verdict"] else None),
                      ("ladder_within_runs", fig_within_runs(tables["within"])
                       if tables["within"] else None)):
        if fig is not None:
            save_figure(fig, folder, name)
            plt.close(fig)
    return tables
