"""The main claim where the paper made it (notebook 11): the spec ``RESOLUTION`` of three parts, trained and
read by the one engine (``prkd.experiments.engine``).

* **Own teachers** (32×32, the ladder's 2048-step rung): E2E, random, the L_t = 9 teacher and the paper's KD
  student (α 0.5, β 0.25) on ``own_seeds``, each student distilling the teacher of its own seed, so that
  KD − E2E carries teacher-to-teacher variance. The configs the ladder already trained (E2E and random seeds
  0-2, teachers 0 and 1 and the students that distil them) are the same runs, read from the ladder's records.
* **The budget doubled** (32×32): E2E, the teacher and KD at twice that budget (4096 steps) on
  ``doubled_own_seeds``; the change of each group from 2048 to 4096 steps is a paired comparison, and the
  flatness table says "converged" only where that doubling moved the end within ±0.25 dB (two one-sided
  tests).
* **The paper's resolution** (``size`` × ``size``, 96 × 96 at preset ladder): the ladder's data, rates and
  cosine schedule with a depth-``unet_depth`` width-16 U-Net; the L_t = 9 teacher (seed 0, the truncated
  gradient through its initialization: ``catalog.NEW_TEACHER_FIELDS``), E2E, random and KD on ``seeds``, and
  E2E and KD of ``doubled_seeds`` at twice the budget (their teacher too).

Its verdict rows: KD − E2E, KD − random, E2E − random and teacher − E2E at each size, raw and refined (Holm
within each size and scoring), and each doubling; its own table ``mechanism`` gives the optics' state per
group at both sizes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from prkd.config import Config, make
from prkd.experiments.catalog import NEW_STUDENT_FIELDS, NEW_TEACHER_FIELDS, plan_of
from prkd.experiments.ladder import LADDER
from prkd.experiments.spec import Comparison, ExperimentSpec, PlannedRun
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA

__all__ = ["ResolutionPlan", "RESOLUTION_PLANS", "RESOLUTION", "resolution_runs", "resolution_comparisons",
           "mechanism_rows"]


@dataclass(frozen=True)
class ResolutionPlan:
    """What the experiment trains at a preset (budgets as config overrides; doubled: twice the epochs)."""

    preset: str
    size: int = 96
    unet_depth: int = 4
    budget: tuple[tuple[str, int], ...] = (("epochs", 16), ("steps_per_epoch", 64))
    seeds: tuple[int, ...] = (0, 1, 2)
    doubled_seeds: tuple[int, ...] = (0,)
    own_budget: tuple[tuple[str, int], ...] = (("epochs", 32), ("steps_per_epoch", 64))
    own_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    doubled_own_seeds: tuple[int, ...] = (0, 1, 2)
    teacher_masks: int = 9


RESOLUTION_PLANS: dict[str, ResolutionPlan] = {
    # 1024 steps at 96x96 (the least), the ladder's top rung (2048) at 32x32
    "ladder": ResolutionPlan("ladder"),
    # CI: the smoke preset's 16x16 against 24x24, one and two epochs
    "smoke": ResolutionPlan("smoke", size=24, unet_depth=3, budget=(("epochs", 1),), seeds=(0, 1),
                            own_budget=(("epochs", 1),), own_seeds=(0, 1), doubled_own_seeds=(0, 1)),
}


def _doubled(budget: tuple[tuple[str, int], ...]) -> dict:
    return {k: 2 * v if k == "epochs" else v for k, v in budget}


def _configs(plan: ResolutionPlan, budget: dict, seeds, extra: dict, teacher: dict, student: dict,
             groups=("e2e", "random", "teacher", "KD"),
             own_teacher: bool = True) -> list[tuple[str, int, Config]]:
    """(group, seed, config) of each of ``groups`` on ``seeds``; a student distils its own seed's teacher, or
    the seed-0 teacher unless ``own_teacher``."""
    base = {**budget, **extra} | ({} if plan.preset == "ladder" else {"lr_schedule": "cosine"})
    out = []
    for s in seeds:
        made = {"e2e": lambda: make(plan.preset, mode="e2e", seed=s, **base),
                "random": lambda: make(plan.preset, mode="random", seed=s, **base),
                "teacher": lambda: make(plan.preset, mode="teacher", n_masks=plan.teacher_masks, seed=s,
                                        **base, **teacher),
                "KD": lambda: make(plan.preset, mode="student", alpha=STUDENT_ALPHA, beta=STUDENT_BETA,
                                   teacher_masks=plan.teacher_masks, teacher_seed=s if own_teacher else 0,
                                   seed=s, **base, **student)}
        out += [(group, s, made[group]()) for group in groups]
    return out


def resolution_runs(preset: str) -> list[PlannedRun]:
    """Every run, cheapest part first: own teachers at 32×32, their doubled budget, then the paper's
    resolution (its seed-0 teacher distilled by every seed's student) and its doubling."""
    plan = plan_of(RESOLUTION_PLANS, preset, "the resolution experiment")
    own, big = dict(plan.own_budget), dict(plan.budget)
    at_size = {"image_size": plan.size, "unet_depth": plan.unet_depth}
    items = _configs(plan, own, plan.own_seeds, {}, {}, {})
    items += _configs(plan, _doubled(plan.own_budget), plan.doubled_own_seeds, {}, {}, {},
                      groups=("e2e", "teacher", "KD"))
    student96 = dict(NEW_STUDENT_FIELDS)
    parts = [(big, (0,), ("teacher",)), (big, plan.seeds, ("e2e", "random", "KD")),
             (_doubled(plan.budget), plan.doubled_seeds, ("e2e", "teacher", "KD"))]
    for budget, seeds, groups in parts:  # every student distils the seed-0 teacher of its budget
        items += [(f"{g} {plan.size}", s, c) for g, s, c in _configs(plan, budget, seeds, at_size,
                                                                      NEW_TEACHER_FIELDS, student96, groups,
                                                                      own_teacher=False)]
    return [PlannedRun(cfg.total_steps, group, seed, cfg) for group, seed, cfg in items]


#: (label, group A, group B) of each size's main comparison.
MAIN = (("KD − E2E", "KD", "e2e"), ("KD − random", "KD", "random"), ("E2E − random", "e2e", "random"),
        ("teacher − E2E", "teacher", "e2e"))


def _sized(results, size: int, steps: int, label: str, a: str, b: str, **fields) -> list[Comparison]:
    """The comparison raw and refined (a family per size and scoring), if both groups are complete."""
    steps_b = fields.get("steps_b") or steps
    if not (results.complete(steps, a) and results.complete(steps_b, b)):
        return []
    return [Comparison(label, a, b, scoring, steps=steps, family=f"{size}x{size} {scoring}",
                       keys=(("size", size), ("steps", steps), ("comparison", label), ("scoring", scoring)),
                       **fields) for scoring in ("raw", "refined")]


def resolution_comparisons(results) -> list[Comparison]:
    """At each size, ``MAIN`` at its base budget (a 96×96 teacher is seed 0 for every student seed; at 32×32
    each seed has its own), KD − E2E at the doubled budget, and each doubling (A: the doubled budget, B: the
    base one, paired over seeds)."""
    out = []
    for suffix, teacher_of in (("", None), (f" {results.plan.size}", lambda s: 0)):
        members = [i for i in results.items if i.group == "e2e" + suffix]
        size, budgets = members[0].cfg.data.image_size, sorted({i.steps for i in members})
        base, doubled = budgets[0], budgets[-1]
        for label, a, b in MAIN:
            pair = teacher_of if a == "teacher" else None
            out += _sized(results, size, base, label, a + suffix, b + suffix, a_seed=pair)
        out += _sized(results, size, doubled, "KD − E2E", "KD" + suffix, "e2e" + suffix)
        for group in ("e2e", "KD"):
            out += _sized(results, size, doubled, f"{group}: doubled − base budget", group + suffix,
                          group + suffix, steps_b=base)
    return out


def mechanism_rows(results) -> list[dict]:
    """Per size, budget and group: the median over its runs of the mask drift, the speckle contrast of the CDP
    at start and end, the initialization's correlation with the truth and L_cdp against the teacher."""
    rows = []
    for steps, group, runs in results.members():
        metrics = [run.metrics() for run in runs]

        def median(key: str):
            values = [m[key] for m in metrics if m.get(key) is not None]
            return round(statistics.median(values), 4) if values else ""
        rows.append({"size": runs[0].config().data.image_size, "steps": steps, "group": group,
                     "runs": len(metrics), "mask drift (rad)": median("mask_drift_rad"),
                     "speckle contrast start": median("speckle_contrast_start"),
                     "speckle contrast end": median("speckle_contrast_end"),
                     "init corr end": median("init_corr_end"), "L_cdp end": median("val_cdp_end")})
    return rows


RESOLUTION = ExperimentSpec("resolution", "the resolution experiment", RESOLUTION_PLANS, "ladder",
                            resolution_runs, resolution_comparisons, tables={"mechanism": mechanism_rows},
                            reuses=(LADDER,))
