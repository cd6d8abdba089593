"""The budget ladder's report (``prkd.experiments.ladder.LADDER``): the engine's files
(``prkd.views.experiment_report``: runs, verdict, flatness, training, the trend, the gap within the runs, the
normalized-L_cdp sweep, wall_time.json and records/), its verdict.md (the scope, the top rung's flatness, the
verdict and the trend) and its two figures. Nothing here trains; rungs that are not complete yet are left out,
so the files can be written as each rung finishes. The ladder's records keep the fair comparison's scores of
the seed-0 single-snapshot runs (``prkd.experiments.ladder.fair_scores_extra``), which notebook 08 needs.
"""

from __future__ import annotations

import math
from pathlib import Path

from prkd.experiments.engine import Results
from prkd.experiments.ladder import fair_scores_extra
from prkd.experiments.ladder_tables import COMPARISONS, PAPER_STEPS
from prkd.learning.rescoring import DEFAULT_REFINE as REFINE
from prkd.views.experiment_report import READING_RULES, missing_groups, write_report
from prkd.views.tables import save_figure, to_markdown

__all__ = ["fig_trend", "fig_within_runs", "verdict_markdown",
           "write_ladder"]


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


def verdict_markdown(results: Results, tables: dict[str, list[dict]]) -> str:
    """verdict.md: the scope, the top rung's precondition, the verdict table and the trend."""
    cfg = results.first_config()
    top = max(results.rungs)
    flat = [r for r in tables["flatness"] if r["steps"] == top and r["group"] in ("e2e", "KD")]
    flat_text = ("; ".join(f"{r['group']}: {r['reading']} (largest gain "
                           f"{r['largest gain, last 10 % (dB)']:+.3f} dB over {r['runs']} runs)"
                           for r in flat)
                 or "the top rung is not complete yet")
    lines = [
        f"# Budget ladder `{results.plan.preset}`",
        "",
        f"Scope: {cfg.data.image_size}×{cfg.data.image_size} Fashion-MNIST phase objects, n_train "
        f"{cfg.data.n_train}, batch {cfg.train.batch_size}, learning rates decayed by a cosine to 0 (every "
        f"mode alike), the teacher with L_t = {results.plan.teacher_masks}; planned rungs of "
        f"{', '.join(map(str, results.rungs))} Adam steps (the paper: {PAPER_STEPS}). {len(results.runs)} of "
        f"{len(results.items)} planned runs "
        f"complete.{missing_groups(results)}",
        "",
        f"The top rung's ends ({top} steps): {flat_text}.",
        "",
        f"{READING_RULES} Holm's families: every raw row, and every refined row. Refined = the output "
        f"refined by {REFINE[0].upper()} for {REFINE[1]} iterations on its own CDPs, with its own global "
        "phase (no oracle).",
        "",
        to_markdown(tables["verdict"], "Verdict, paired over seeds"),
    ]
    if tables["trend"]:
        lines += ["", to_markdown(tables["trend"], f"Trend against log2(steps); the value at {PAPER_STEPS} "
                                                   f"steps is an extrapolation beyond the data")]
    lines += ["", _gap_course(tables["within_runs"])]
    return "\n".join(lines) + "\n"


def write_ladder(results: Results, folder: Path) -> dict[str, list[dict]]:
    """Write the ladder's report and its figures to ``folder``; return the tables."""
    import matplotlib.pyplot as plt

    tables = write_report(results, folder, markdown=verdict_markdown, record_extra=fair_scores_extra)
    for name, fig in (("ladder_trend", fig_trend(tables["verdict"]) if tables["verdict"] else None),
                      ("ladder_within_runs", fig_within_runs(tables["within_runs"])
                       if tables["within_runs"] else None)):
        if fig is not None:
            save_figure(fig, Path(folder), name)
            plt.close(fig)
    return tables
