"""The budget ladder: does the study's verdict survive training to convergence? Its runs, in the order they
train.

The study's main comparison -- the L_t = 9 teacher, E2E, random and the KD student at the paper's alpha, beta
-- trained at several budgets (``Rung``: epochs x ``steps_per_epoch`` Adam steps, everything else equal).
Every rung draws its batches from the whole 30k training split (preset ``ladder``), so only the number of
steps changes from rung to rung, and every run's learning rates decay to 0 by a cosine (``lr_schedule``), so
each run ends where its rate no longer moves it (the flattening that ``prkd.views.ladder_report`` measures).

* Every rung: ``seeds`` paired seeds of E2E, random and KD; the teacher with each of ``teacher_seeds``;
  student seed s distils teacher seed ``teacher_seeds[s % len(teacher_seeds)]``, so with two teachers the
  interval includes teacher-to-teacher variance.
* ``ablations``: the L_cdp-only and L_feat-only students (Table 1) on that rung's seeds.
* ``beta_sweep``: students with the normalized L_cdp (``cdp_loss="normalized"``) and sigma = 0 (alpha = 1 -
  beta), so that beta is the share of the loss L_cdp contributes at step 0, on ``sweep_seeds``.
* ``noisy``: the teacher, E2E, random and KD re-trained with the plan's sensor noise, on ``sweep_seeds``.

``ladder_runs`` lists the runs cheapest rung first; within a rung E2E and random first, then each teacher just
before the students that distil it (a teacher's weights do not outlive a sitting, so a sitting that trains a
teacher trains its students too), the optional extras last; ``train_ladder`` trains them through the registry
(resumable: finished runs are taken from it, a run in progress resumes from its checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from prkd.experiments import catalog
from prkd.experiments.catalog import plan_of, results_folder
from prkd.config import Config, make
from prkd.data import Splits
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA
from prkd.experiments.graph import PlanGraph, run_plan
from prkd.experiments.plans import plan_run_id
from prkd.registry import Registry, Run
from prkd.registry.records import read_records

#: Where the committed ladder keeps the records of the runs of earlier sittings (``prkd.registry.records``).
COMMITTED_RECORDS = results_folder("ladder") / "records"
#: The preset whose runs the committed records hold.
COMMITTED_PRESET = "ladder"

__all__ = ["COMMITTED_RECORDS", "committed_records", "Rung", "LadderPlan", "LadderRun", "LADDER_PLANS",
           "ladder_runs", "fair_comparison_runs", "train_ladder", "train_in_order"]


def committed_records(preset: str) -> Path | None:
    """The committed records' folder if ``preset`` is the one they were trained at, else None."""
    return catalog.committed_records("ladder", preset, COMMITTED_PRESET)


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


@dataclass(frozen=True)
class LadderRun:
    """One run of the ladder: its rung's steps, its group (``teacher``, ``e2e``, ``random``, ``KD``, ...), its
    seed and its config. ``name`` is ``"<group> s<seed> @<steps>"``."""

    steps: int
    group: str
    seed: int
    cfg: Config

    @property
    def name(self) -> str:
        return f"{self.group} s{self.seed} @{self.steps}"


def _plan(preset: str) -> LadderPlan:
    return plan_of(LADDER_PLANS, preset, "the ladder")


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


def ladder_runs(preset: str) -> list[LadderRun]:
    """Every run of the preset's ladder in training order: rung by rung (cheapest first), within a rung E2E
    and random seed by seed, then each teacher followed by its KD students, then the rung's extras."""
    plan = _plan(preset)
    out = []
    for rung in sorted(plan.rungs, key=lambda r: r.epochs):
        for group, seed, cfg in _core(plan, rung, rung.seeds, {}, "") + _extras(plan, rung):
            out.append(LadderRun(cfg.total_steps, group, seed, cfg))
    return out


def fair_comparison_runs(preset: str, seed: int = 0) -> list[LadderRun]:
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


def train_ladder(preset: str, *, registry: Registry, executor=None, device: torch.device | None = None,
                 progress: bool = True, log: Callable[[str], None] = print, data: Splits | None = None,
                 max_steps: int | None = None, records: Path | None = None) -> dict[str, Run]:
    """Train (or take from the registry) every run of the ladder with at most ``max_steps`` steps (all if
    None), in ``ladder_runs`` order, except those kept as records in ``records`` (an earlier sitting's,
    ``prkd.registry.records``), on ``executor`` (``prkd.experiments.executors``; default: in this process);
    return the complete runs by name.

    A run that fails is reported and skipped (the rest goes on); a failed teacher's students are skipped.
    Raises RunFailedError at the end naming every run that failed or was skipped.
    """
    kept = read_records(records)
    runs = [r for r in ladder_runs(preset) if (max_steps is None or r.steps <= max_steps)
            and plan_run_id(r.cfg) not in kept]
    return train_in_order(runs, registry=registry, executor=executor, device=device, progress=progress,
                          log=log, data=data, what=f"ladder {preset}")


def train_in_order(runs: list[LadderRun], *, registry: Registry, executor=None,
                   device: torch.device | None = None, progress: bool = True,
                   log: Callable[[str], None] = print, data: Splits | None = None,
                   what: str = "plan") -> dict[str, Run]:
    """Train (or take from the registry) ``runs`` as a plan (``prkd.experiments.graph.run_plan``) in their own
    order, a teacher they only imply just before its first student, on ``executor``. Returns the complete
    runs by name; RunFailedError names every run that failed or was skipped."""
    if not runs:
        return {}
    graph = PlanGraph.from_configs({item.name: item.cfg for item in runs})
    order: list[str] = []
    for item in runs:
        task = graph.tasks[plan_run_id(item.cfg)]
        for rid in (task.teacher, task.run_id):
            if rid is not None and rid not in order:
                order.append(rid)
    outcome = run_plan(graph, registry, executor=executor, device=device, progress=progress, log=log,
                       data=data, order=order, what=what)
    return outcome.raise_if_failed(what).runs_by_name()
