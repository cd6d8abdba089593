"""Beyond the paper: does a single-snapshot system that uses its measurements (``net.arch = "unrolled"``)
beat the paper's U-Net, the classical solvers and its own refinement -- and does distillation help it? The
experiment's spec (``UNROLLED``, ``prkd.experiments.spec``), its runs and its own tables.

Everything is trained with sensor noise (the budget ladder's Poisson noise, 100 photons) on the ladder
preset's data and cosine schedule, for ``epochs`` x 32 steps:

* unrolled teachers with L_t in ``teacher_masks`` (L_t = 1 is the unrolled E2E run itself), seed 0;
* at L = 1, unrolled: E2E, random and the KD student at the paper's alpha, beta on ``seeds``, and the student
  with the normalized L_cdp at ``best_beta`` (sigma = 0) on ``extra_seeds``, all distilling the L_t =
  ``table_teacher`` unrolled teacher;
* the U-Net E2E on ``seeds`` under the same noise and budget, the comparison the unrolled system must win.

``best_beta`` is read off the ladder's normalized sweep (``best_beta_of``): the beta whose paired gain over
E2E is largest, or ``None`` while the sweep is not complete -- then the plan leaves that group out and says
so. Seed s of every L = 1 group shares its data order, initial mask, filter and noise draws, so the
comparisons are paired; the U-Net and the unrolled reconstructor of a seed start from different network
weights (different architectures), which the pairing cannot remove. The classical solvers run on each E2E
system's own noisy CDPs, scored raw and with the oracle.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from prkd.config import Config, make
from prkd.data import load_splits
from prkd.experiments import engine
from prkd.experiments.catalog import plan_of
from prkd.experiments.fair_comparison import run_method_scores
from prkd.experiments.spec import Comparison, ExperimentSpec, PlannedRun
from prkd.experiments.stats import paired_seeds
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA
from prkd.registry import Registry

__all__ = ["UnrolledPlan", "UNROLLED_PLANS", "UNROLLED", "COMPARISONS", "best_beta", "best_beta_of",
           "plan_config", "unrolled_runs", "unrolled_comparisons", "teacher_rows", "classical_rows",
           "cost_rows"]


@dataclass(frozen=True)
class UnrolledPlan:
    """What the unrolled experiment trains at a preset."""

    preset: str
    epochs: int
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    extra_seeds: tuple[int, ...] = (0, 1, 2)
    teacher_masks: tuple[int, ...] = (3, 9)
    table_teacher: int = 9
    noise: tuple[tuple[str, object], ...] = (("noise", "poisson"), ("photons", 100.0))
    lr_schedule: str = "cosine"


UNROLLED_PLANS: dict[str, UnrolledPlan] = {
    "ladder": UnrolledPlan("ladder", epochs=32),  # 1024 steps: 143 min on 2 cores (docs/unrolled.md)
    "smoke": UnrolledPlan("smoke", epochs=2, seeds=(0, 1), extra_seeds=(0, 1), teacher_masks=(2, 3),
                          table_teacher=3),
}

#: (label, group A, scoring of A, group B, scoring of B); one Holm family.
COMPARISONS = (
    ("unrolled E2E − U-Net E2E", "unrolled e2e", "raw", "unet e2e", "raw"),
    ("unrolled E2E − U-Net E2E refined (the bar)", "unrolled e2e", "raw", "unet e2e", "refined"),
    ("unrolled E2E refined − U-Net E2E refined", "unrolled e2e", "refined", "unet e2e", "refined"),
    ("unrolled: KD − E2E", "unrolled KD", "raw", "unrolled e2e", "raw"),
    ("unrolled: KD − E2E, both refined", "unrolled KD", "refined", "unrolled e2e", "refined"),
    ("unrolled: KD − random", "unrolled KD", "raw", "unrolled random", "raw"),
    ("unrolled: E2E − random", "unrolled e2e", "raw", "unrolled random", "raw"),
)
BEST_BETA_GROUP = "unrolled KD normalized beta="


def best_beta_of(beta_rows: list[dict]) -> float | None:
    """The beta of the ladder's normalized sweep (``ladder_tables.beta_rows``) with the largest mean raw gain
    over E2E, or None when the sweep has no rows yet."""
    if not beta_rows:
        return None
    return max(beta_rows, key=lambda r: r["ΔPSNR vs E2E, raw (dB)"])["beta"]


def best_beta(preset: str, *, registry: Registry) -> float | None:
    """``best_beta_of`` the preset's ladder sweep, read from the registry and the ladder's committed
    records."""
    from prkd.experiments.ladder import LADDER
    from prkd.experiments.ladder_tables import beta_rows

    ladder = engine.collect(LADDER, preset, registry=registry, records=LADDER.committed_records(preset))
    return best_beta_of(beta_rows(ladder))


def plan_config(preset: str, arch: str, **overrides) -> Config:
    """A config of the experiment at ``preset``: its noise, schedule and epochs (``overrides`` win), with the
    recovery network ``arch`` ("unet" or "unrolled")."""
    plan = plan_of(UNROLLED_PLANS, preset, "the unrolled experiment")
    arch_fields = {"arch": arch} if arch == "unrolled" else {}
    extra = {} if plan.preset == "ladder" else {"lr_schedule": plan.lr_schedule}
    fields = {"epochs": plan.epochs, **dict(plan.noise), **arch_fields, **extra, **overrides}
    return make(plan.preset, **fields)


def unrolled_runs(preset: str, best_beta: float | None = None) -> list[PlannedRun]:
    """The experiment's runs in training order (teachers first); the best-beta students only if
    ``best_beta``."""
    plan = plan_of(UNROLLED_PLANS, preset, "the unrolled experiment")
    student = dict(mode="student", teacher_masks=plan.table_teacher, teacher_seed=0)
    items = [("unrolled teacher L_t=%d" % L, 0,
              plan_config(preset, "unrolled", mode="teacher", n_masks=L, seed=0)) for L in plan.teacher_masks]
    for s in plan.seeds:
        items += [("unrolled e2e", s, plan_config(preset, "unrolled", mode="e2e", seed=s)),
                  ("unrolled random", s, plan_config(preset, "unrolled", mode="random", seed=s)),
                  ("unrolled KD", s, plan_config(preset, "unrolled", **student, alpha=STUDENT_ALPHA,
                                                 beta=STUDENT_BETA, seed=s)),
                  ("unet e2e", s, plan_config(preset, "unet", mode="e2e", seed=s))]
    if best_beta is not None:
        items += [(f"{BEST_BETA_GROUP}{best_beta:g}", s,
                   plan_config(preset, "unrolled", **student, alpha=1 - best_beta, beta=best_beta,
                               cdp_loss="normalized", seed=s)) for s in plan.extra_seeds]
    return [PlannedRun(cfg.total_steps, group, seed, cfg) for group, seed, cfg in items]


def unrolled_comparisons(results) -> list[Comparison]:
    """``COMPARISONS`` and the best-beta student against E2E where the plan has it; one Holm family; rows
    with fewer than two paired seeds are left out."""
    specs = list(COMPARISONS) + [(f"unrolled: KD normalized β = {g[len(BEST_BETA_GROUP):]} − E2E", g, "raw",
                                  "unrolled e2e", "raw")
                                 for g in results.groups() if g.startswith(BEST_BETA_GROUP)]
    out = []
    for label, a, sa, b, sb in specs:
        ga, gb = results.group(a), results.group(b)
        if len(set(ga) & set(gb)) >= 2:
            out.append(Comparison(label, a, b, sa, sb, family="all"))
    return out


def teacher_rows(results) -> list[dict]:
    """The unrolled teachers' test PSNR (raw and refined) against L_t; L_t = 1 is the unrolled E2E of seed
    0."""
    teachers = {1: results.group("unrolled e2e").get(0)}
    teachers |= {int(g.rsplit("=", 1)[1]): results.group(g).get(0) for g in results.groups()
                 if g.startswith("unrolled teacher")}
    return [{"L_t": L, "test PSNR (dB)": round(engine.score(run), 2),
             "refined PSNR (dB)": round(engine.score(run, "refined"), 2), "run_id": run.id}
            for L, run in sorted(teachers.items()) if run is not None]


def _method_means(results, n_images: int) -> dict[tuple[str, str], dict[int, float]]:
    """(system or solver on its masks, scoring) -> seed -> mean PSNR, for the E2E systems."""
    images = load_splits(results.first_config().data).test
    per: dict[tuple[str, str], dict[int, float]] = {}
    for group in ("unrolled e2e", "unet e2e"):
        for seed, run in results.group(group).items():
            for method, both in run_method_scores(run, images, n_images=n_images, seed=seed).items():
                for scoring, values in both.items():
                    name = (f"{group} (learned)" if method == "learned (U-Net)"
                            else f"{method} on {group}'s masks")
                    per.setdefault((name, scoring), {})[seed] = statistics.fmean(values)
    return per


def classical_rows(results) -> list[dict]:
    """Per scoring: each E2E system (unrolled and U-Net) against the classical solvers on its own noisy CDPs,
    the per-seed means paired over seeds (``prkd.experiments.fair_comparison.run_method_scores``: computed
    once per run while its weights are at hand, then kept in its folder and its record)."""
    per = _method_means(results, 256 if results.preset == "ladder" else 16)
    rows = []
    for arch in ("unrolled e2e", "unet e2e"):
        for scoring in ("raw", "oracle"):
            learned = per.get((f"{arch} (learned)", scoring), {})
            for (name, sc), values in sorted(per.items()):
                seeds = sorted(set(values) & set(learned))
                if sc != scoring or not name.endswith(f"on {arch}'s masks") or len(seeds) < 2:
                    continue
                r = paired_seeds([learned[s] for s in seeds], [values[s] for s in seeds])
                rows.append({"system": arch, "scoring": scoring, "versus": name, "seeds": len(seeds),
                             "learned − classical (dB)": round(r.mean, 3), "low": round(r.low, 3),
                             "high": round(r.high, 3)})
    return rows


def cost_rows(results) -> list[dict]:
    """What each E2E system costs: training ms per step, peak memory and inference per batch, mean over its
    runs, and the device that measured them."""
    rows = []
    for group in ("unrolled e2e", "unet e2e"):
        ms = [r.metrics() for r in results.group(group).values()]
        if ms:
            rows.append({"system": group, "runs": len(ms),
                         "training ms per step": round(1000 * sum(m["train_seconds"] / m["steps"]
                                                                  for m in ms) / len(ms), 1),
                         "peak memory (MB)": round(sum(m["peak_memory_mb"] for m in ms) / len(ms), 1),
                         "inference (ms / batch)":
                             round(sum(m["inference_ms_per_batch"] for m in ms) / len(ms), 2),
                         "device": ms[0]["device"]})
    return rows


UNROLLED = ExperimentSpec("unrolled", "the unrolled experiment", UNROLLED_PLANS, "ladder", unrolled_runs,
                          unrolled_comparisons,
                          tables={"teachers": teacher_rows, "classical": classical_rows, "costs": cost_rows})
