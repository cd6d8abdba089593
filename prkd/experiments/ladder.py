"""The budget ladder: does the study's verdict survive a 16x longer training? Its runs, in the order they
train.

The study's main comparison -- the L_t = 9 teacher, E2E, random and the KD student at the paper's alpha, beta
-- trained at several budgets (``Rung``: epochs x ``steps_per_epoch`` Adam steps, everything else equal).
Every rung draws its batches from the whole 30k training split (preset ``ladder``), so only the number of
steps changes from rung to rung, and every run's learning rates decay to 0 by a cosine (``lr_schedule``), so
each run ends where its rate no longer moves it (the flattening that
``prkd.experiments.verdicts.flatness_rows`` reads: flat under its schedule).

* Every rung: ``seeds`` paired seeds of E2E, random and KD; the teacher with each of ``teacher_seeds``;
  student seed s distils teacher seed ``teacher_seeds[s % len(teacher_seeds)]``, so with two teachers the
  interval includes teacher-to-teacher variance.
* ``ablations``: the L_cdp-only and L_feat-only students (Table 1) on that rung's seeds.
* ``beta_sweep``: students with the normalized L_cdp (``cdp_loss="normalized"``) and sigma = 0 (alpha = 1 -
  beta), so that beta is the share of the loss L_cdp contributes at step 0, on ``sweep_seeds``.
* ``noisy``: the teacher, E2E, random and KD re-trained with the plan's sensor noise, on ``sweep_seeds``.

``ladder_runs`` lists the runs cheapest rung first; within a rung E2E and random first, then each teacher just
before the students that distil it (a teacher's weights do not outlive a sitting, so a sitting that trains a
teacher trains its students too), the optional extras last. ``LADDER`` is the experiment's spec
(``prkd.experiments.spec``): the engine (``prkd.experiments.engine``) trains it through the registry in that
order (resumable) and collects it; its comparisons per rung are ``ladder_comparisons``, its extra tables
``prkd.experiments.ladder_tables``.
"""

from __future__ import annotations

from dataclasses import dataclass

from prkd.config import Config, make
from prkd.data import load_splits
from prkd.experiments import ladder_tables
from prkd.experiments.fair_comparison import FAIR_IMAGES, run_method_scores
from prkd.experiments.ladder_tables import COMPARISONS, EXTRA_COMPARISONS
from prkd.experiments.catalog import plan_of
from prkd.experiments.spec import Comparison, ExperimentSpec, PlannedRun
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA
from prkd.learning.rescoring import DEFAULT_REFINE

__all__ = ["Rung", "LadderPlan", "LADDER_PLANS", "LADDER", "ladder_runs", "ladder_comparisons",
           "fair_comparison_runs", "fair_scores_extra", "FAIR_GROUPS", "COMPARISONS", "EXTRA_COMPARISONS",
           "teacher_seeds"]


@dataclass(frozen=True)
class Rung:
    """One budget: ``epochs`` epochs of ``steps_per_epoch`` steps (None: the preset's), and what is trained
    at it."""

    epochs: int
    seeds: tuple[int, ...]
    steps_per_epoch: int | None = None
    teacher_seeds: tuple[int, ...] = (0,)
    ablations: bool = False
    beta_sweep: bool = False
    noisy: bool = False


@dataclass(frozen=True)
class LadderPlan:
    """The rungs of a preset's ladder and the settings of its extras."""

    preset: str
    rungs: tuple[Rung, ...]
    teacher_masks: int = 9
    betas: tuple[float, ...] = (0.003, 0.01, 0.03, 0.1)
    sweep_seeds: tuple[int, ...] = (0, 1, 2)
    noise: tuple[tuple[str, object], ...] = (("noise", "poisson"), ("photons", 100.0))


LADDER_PLANS: dict[str, LadderPlan] = {
    # 128, 512 and 2048 steps (16x); the paper trains ~56k steps. Planned from the 512 rung's measured run
    # times (docs/ladder.md): about 5 h on a 2-core CPU without the top rung's Table 1 ablations, which come
    # last and add about 1.5 h. The top rung validates every 64 steps (32 times per run): at 512 steps the 16
    # validations and probes took a large share of an E2E run's 235 s.
    "ladder": LadderPlan("ladder", (Rung(4, (0, 1, 2, 3, 4)),
                                    Rung(16, (0, 1, 2, 3, 4), beta_sweep=True, noisy=True),
                                    Rung(32, (0, 1, 2), steps_per_epoch=64, teacher_seeds=(0, 1),
                                         ablations=True))),
    # CI: two tiny rungs with every kind of run.
    "smoke": LadderPlan("smoke", (Rung(1, (0, 1)), Rung(4, (0, 1), teacher_seeds=(0, 1), ablations=True,
                                                      beta_sweep=True, noisy=True)),
                        teacher_masks=3, betas=(0.1,), sweep_seeds=(0, 1)),
}


def _budget(plan: LadderPlan, rung: Rung) -> dict:
    overrides = {"epochs": rung.epochs}
    if rung.steps_per_epoch is not None:
        overrides["steps_per_epoch"] = rung.steps_per_epoch
    if plan.preset != "ladder":  # other presets get the ladder's schedule
        overrides["lr_schedule"] = "cosine"
    return overrides


def _core(plan: LadderPlan, rung: Rung, seeds: tuple[int, ...], extra: dict, suffix: str) -> list[tuple]:
    """(group, seed, config) of the rung's teachers, E2E, random and KD students (with ``extra``
    overrides)."""
    base = {**_budget(plan, rung), **extra}
    out = []
    for s in seeds:
        out.append((f"e2e{suffix}", s, make(plan.preset, mode="e2e", seed=s, **base)))
        out.append((f"random{suffix}", s, make(plan.preset, mode="random", seed=s, **base)))
    for t in rung.teacher_seeds:  # each teacher just before the students that distil it
        out.append((f"teacher{suffix}", t, make(plan.preset, mode="teacher",
                                                n_masks=plan.teacher_masks, seed=t,
                                                **base)))
        out += [(f"KD{suffix}", s, _student(plan, rung, s, STUDENT_ALPHA, STUDENT_BETA, **base))
                for s in seeds if _teacher_seed(rung, s) == t]
    return out


def _student(plan: LadderPlan, rung: Rung, seed: int, alpha: float, beta: float, **overrides) -> Config:
    return make(plan.preset, mode="student", alpha=alpha, beta=beta, teacher_masks=plan.teacher_masks,
                teacher_seed=_teacher_seed(rung, seed), seed=seed, **overrides)


def _teacher_seed(rung: Rung, seed: int) -> int:
    return rung.teacher_seeds[seed % len(rung.teacher_seeds)]


def _extras(plan: LadderPlan, rung: Rung) -> list[tuple]:
    base = _budget(plan, rung)
    out = []
    if rung.beta_sweep:
        for beta in plan.betas:
            out += [(f"KD normalized beta={beta:g}", s,
                     _student(plan, rung, s, 1.0 - beta, beta, cdp_loss="normalized", **base))
                    for s in plan.sweep_seeds]
    if rung.noisy:
        out += _core(plan, Rung(rung.epochs, plan.sweep_seeds, rung.steps_per_epoch), plan.sweep_seeds,
                     dict(plan.noise), " noisy")
    if rung.ablations:
        for group, (alpha, beta) in (("L_cdp only", (STUDENT_ALPHA, 1 - STUDENT_ALPHA)),
                                     ("L_feat only", (STUDENT_ALPHA, 0.0))):
            out += [(group, s, _student(plan, rung, s, alpha, beta, **base)) for s in rung.seeds]
    return out


def ladder_runs(preset: str) -> list[PlannedRun]:
    """Every run of the preset's ladder in training order: rung by rung (cheapest first), within a rung E2E
    and random seed by seed, then each teacher followed by its KD students, then the rung's extras."""
    plan = plan_of(LADDER_PLANS, preset, "the ladder")
    out = []
    for rung in sorted(plan.rungs, key=lambda r: r.epochs):
        for group, seed, cfg in _core(plan, rung, rung.seeds, {}, "") + _extras(plan, rung):
            out.append(PlannedRun(cfg.total_steps, group, seed, cfg))
    return out


def fair_comparison_runs(preset: str, seed: int = 0) -> list[PlannedRun]:
    """The runs notebook 08's fair comparison reads (``fair_comparison.ladder_systems``): E2E, KD and random
    of ``seed`` at the highest rung that trains them, noise-free and noisy each (their teachers are implied);
    at ``smoke`` notebook 08 trains these instead of the whole ladder."""
    runs, out = ladder_runs(preset), []
    for noise in ("", " noisy"):
        triple = [r for r in runs if r.seed == seed
                  and r.group in {f"{g}{noise}" for g in ("e2e", "KD", "random")}]
        top = max((r.steps for r in triple), default=None)
        out += [r for r in triple if r.steps == top]
    return out




def teacher_seeds(results, steps: int, noisy: bool = False) -> dict[int, int]:
    """Student seed -> the seed of the teacher it distils at ``steps``, as the plan's KD students (the noisy
    ones distil the noisy teacher of seed 0) name it (``Rung.teacher_seeds``)."""
    group = "KD noisy" if noisy else "KD"
    return {i.seed: i.cfg.train.teacher_seed for i in results.items if i.steps == steps and i.group == group}


def _scope(results, steps: int, n: int, scoring: str) -> str:
    cfg = results.first_config()
    how = (f", refined by {DEFAULT_REFINE[0].upper()} ({DEFAULT_REFINE[1]} it., no oracle)"
           if scoring == "refined" else "")
    return (f"{steps} steps, {cfg.data.image_size}×{cfg.data.image_size} Fashion-MNIST, n_train "
            f"{cfg.data.n_train}, {n} seeds{how}")


def ladder_comparisons(results) -> list[Comparison]:
    """Every comparison of ``COMPARISONS`` and ``EXTRA_COMPARISONS`` at every rung where both groups are
    complete, raw and refined; Holm's families are the raw rows and the refined rows. A teacher is paired
    with B's seed s through the teacher that student seed s distils (``teacher_seeds``)."""
    out = []
    for steps in results.rungs:
        for label, a, b in COMPARISONS + EXTRA_COMPARISONS:
            if not results.complete(steps, a, b):
                continue
            seeds, of = results.seeds(steps, b), teacher_seeds(results, steps, noisy="noisy" in a)
            teachers = len({of[s] for s in seeds})
            pair = of.__getitem__ if a.startswith("teacher") else None
            for scoring in ("raw", "refined"):
                out.append(Comparison(label, a, b, scoring, steps=steps, family=scoring, a_seed=pair,
                                      keys=(("steps", steps), ("comparison", label), ("scoring", scoring),
                                            ("teachers", teachers)),
                                      scope=_scope(results, steps, len(seeds), scoring)))
    return out


#: The runs (of seed 0) that notebook 08's fair comparison may choose (``fair_comparison.ladder_systems``).
FAIR_GROUPS = ("e2e", "KD", "random", "e2e noisy", "KD noisy", "random noisy")


def fair_scores_extra(results, run) -> dict:
    """What the ladder's records keep beyond a run's scores (``record_extra`` of its report): score ``run``
    for the fair comparison while its weights are at hand, if it is a seed-0 run of ``FAIR_GROUPS`` (kept in
    its folder's fair.json, and so in its record); nothing goes to the record's extra."""
    if any(member.id == run.id and group in FAIR_GROUPS and seed == 0
           for (_, group, seed), member in results.runs.items()):
        run_method_scores(run, load_splits(run.config().data).test, n_images=FAIR_IMAGES)
    return {}


LADDER = ExperimentSpec(
    "ladder", "the ladder", LADDER_PLANS, "ladder", ladder_runs, ladder_comparisons,
    tables={"trend": ladder_tables.trend_rows, "within_runs": ladder_tables.within_run_rows,
            "beta_sweep": ladder_tables.beta_rows})
