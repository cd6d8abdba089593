"""The study of notebook 07 -- does distillation help a single-snapshot system? -- as a plan of runs.

Every run goes through the registry (``prkd.learning.train.get_or_train``), so the study resumes after any
stop and never trains a finished run again; two configs that are the same (e.g. the beta = 0 end of a sweep
and the L_feat-only student) are the same run. The plan, per ``StudyPlan``:

* teachers (seed 0, masks drawn U[0, 2 pi)) for each L_t of ``teacher_masks`` -- Fig. 2 re-run with masks
  that learn -- and the L_t = 9 teacher with masks drawn N(0, 1);
* ``core_seeds`` paired seeds of E2E, random, the KD student at the paper's weights (alpha 0.5, beta 0.25),
  its L_cdp-only and L_feat-only ablations (Table 1), all distilled from the L_t = 9 teacher;
* ``sweep_seeds`` seeds of: a beta sweep with sigma = 0 (alpha = 1 - beta) and one with sigma > 0
  (alpha = 0.5, sigma = 0.5 - beta); E2E and KD with masks drawn N(0, 1); KD with the standardized L_cdp,
  from both initialisations; students of the teachers with ``student_masks`` snapshots (Fig. 3's plateau).

Seed s of every single-snapshot configuration shares its data order, initial masks (with the same
``mask_init``), filter and U-Net weights with seed s of the others, so their comparisons are paired
(``prkd.experiments.stats``). The teachers are single runs; a system with more masks draws more phases from
the seed's generator before its U-Net, so teachers of different L_t do not share initial weights
(``prkd.experiments.verdict``).

``train_study`` trains the plan as one graph of runs (``prkd.experiments.graph``: each student after its
teacher, the longest teacher-and-students chains first) on an executor (``prkd.experiments.executors``). Its
default is a pool of two one-thread processes: two processes on two cores train about 2.9x faster than one
process with two threads on this project's CPU (measured: an E2E epoch at quick shapes takes 6.4 s in each of
two one-thread processes, 9 s in one two-thread process). Each launch adds its wall time to ``wall.json``.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prkd.utils import atomic
from prkd.config import Config, ConfigError, make
from prkd.experiments.executors import ProcessPool
from prkd.experiments.graph import PlanGraph, run_plan
from prkd.registry import Registry
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA

__all__ = ["StudyPlan", "STUDY_PLANS", "study_configs", "train_study", "wall_time"]


@dataclass(frozen=True)
class StudyPlan:
    """What the study of a preset trains (see the module docstring)."""

    preset: str
    core_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    sweep_seeds: tuple[int, ...] = (0, 1, 2)
    betas: tuple[float, ...] = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3)
    teacher_masks: tuple[int, ...] = (3, 5, 9, 15)
    student_masks: tuple[int, ...] = (3, 15)
    table_teacher: int = 9


STUDY_PLANS: dict[str, StudyPlan] = {
    "smoke": StudyPlan("smoke", core_seeds=(0, 1), sweep_seeds=(0, 1), betas=(0.0, 0.01, 0.3),
                       teacher_masks=(3, 9), student_masks=(3,)),
    "study": StudyPlan("study"),
}



def _plan(preset: str) -> StudyPlan:
    if preset not in STUDY_PLANS:
        raise ConfigError("config field 'preset' of the study must be one of "
                          f"{', '.join(map(repr, STUDY_PLANS))}; got {preset!r}")
    return STUDY_PLANS[preset]


def _student(plan: StudyPlan, seed: int, alpha: float, beta: float, *, L_t: int | None = None,
             mask_init: str = "uniform", cdp_loss: str = "paper") -> Config:
    if (alpha, beta) == (1.0, 0.0):
        return make(plan.preset, mode="e2e", seed=seed, mask_init=mask_init)
    return make(plan.preset, mode="student", alpha=alpha, beta=beta, teacher_masks=L_t or plan.table_teacher,
                teacher_seed=0, seed=seed, mask_init=mask_init, cdp_loss=cdp_loss)


def study_configs(preset: str) -> dict[str, Config]:
    """Every run of the study by name ``"<group> s<seed>"`` (teachers: ``"teacher L_t=<L>[ normal]"``), in
    order."""
    plan = _plan(preset)
    a, b = STUDENT_ALPHA, STUDENT_BETA
    out: dict[str, Config] = {}
    for L in sorted(set(plan.teacher_masks) | {plan.table_teacher}, reverse=True):
        out[f"teacher L_t={L}"] = make(plan.preset, mode="teacher", n_masks=L, seed=0)
    out[f"teacher L_t={plan.table_teacher} normal"] = make(plan.preset, mode="teacher",
                                                           n_masks=plan.table_teacher,
                                                            seed=0, mask_init="normal")
    groups: list[tuple[str, tuple[int, ...], Callable[[int], Config]]] = [
        ("e2e", plan.core_seeds, lambda s: _student(plan, s, 1.0, 0.0)),
        ("random", plan.core_seeds, lambda s: make(plan.preset, mode="random", seed=s)),
        ("KD", plan.core_seeds, lambda s: _student(plan, s, a, b)),
        ("L_cdp only", plan.core_seeds, lambda s: _student(plan, s, a, 1.0 - a)),
        ("L_feat only", plan.core_seeds, lambda s: _student(plan, s, a, 0.0)),
    ]
    for beta in plan.betas:
        groups.append((f"sigma=0 beta={beta:g}", plan.sweep_seeds, lambda s,
                       beta=beta: _student(plan, s, 1 - beta, beta)))
        groups.append((f"alpha=0.5 beta={beta:g}", plan.sweep_seeds, lambda s,
                       beta=beta: _student(plan, s, 0.5, beta)))
    groups += [
        ("e2e normal", plan.sweep_seeds, lambda s: _student(plan, s, 1.0, 0.0, mask_init="normal")),
        ("KD normal", plan.sweep_seeds, lambda s: _student(plan, s, a, b, mask_init="normal")),
        ("KD standardized", plan.sweep_seeds, lambda s: _student(plan, s, a, b, cdp_loss="standardized")),
        ("KD normal standardized", plan.sweep_seeds,
         lambda s: _student(plan, s, a, b, mask_init="normal", cdp_loss="standardized")),
    ]
    groups += [(f"KD L_t={L}", plan.sweep_seeds, lambda s, L=L: _student(plan, s, a, b, L_t=L))
               for L in plan.student_masks]
    for group, seeds, build in groups:
        for seed in seeds:
            out[f"{group} s{seed}"] = build(seed)
    return out


def _wall_file(preset: str, registry: Registry) -> Path:
    return registry.folder("study", preset) / "wall.json"


def wall_time(preset: str, registry: Registry) -> dict:
    """The study's recorded launches (start, seconds, workers) and their total seconds."""
    path = _wall_file(preset, registry)
    sessions = json.loads(path.read_text())["sessions"] if path.is_file() else []
    return {"sessions": sessions, "total_seconds": sum(s["seconds"] for s in sessions)}


def train_study(preset: str, *, registry: Registry, executor=None, log: Callable[[str], None] = print,
                progress: bool = True) -> dict:
    """Train (or take from the registry) every run of the study on ``executor`` (default: a ``ProcessPool`` of
    two one-thread processes), as one graph of runs, and add this launch's wall time to
    ``<root>/study/<preset>/wall.json``. Returns ``wall_time(preset, registry)``.

    Raises RunFailedError naming the runs that failed and those skipped because of them (the finished runs are
    kept; launch again to resume).
    """
    graph = PlanGraph.from_configs(study_configs(preset))
    start, started_at = time.monotonic(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(ProcessPool(2, torch_threads=1))
        outcome = run_plan(graph, registry, executor=executor, progress=progress, log=log)
    seconds = time.monotonic() - start
    session = {"started": started_at, "seconds": round(seconds, 1), "executor": type(executor).__name__,
               "workers": getattr(executor, "processes", None) or getattr(executor, "workers", None),
               "complete": len(outcome.complete), "failed": len(outcome.failed),
               "skipped": len(outcome.skipped)}
    atomic.write_json(_wall_file(preset, registry),
                      {"sessions": wall_time(preset, registry)["sessions"] + [session]})
    outcome.raise_if_failed(f"the {preset!r} study")
    log(f"study {preset!r}: {len(outcome.complete)} runs complete; this launch took {seconds:.0f} s")
    return wall_time(preset, registry)
