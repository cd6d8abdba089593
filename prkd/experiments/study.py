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
default is a pool of two one-thread processes: what that gains over one two-thread process depends on the CPU
(measured: 2.9x on one 2-core machine, 1.18x on a 2-core AMD EPYC, 0.90x on a 2-core Intel Xeon;
docs/scale-out.md). Each launch, finished or interrupted, adds its wall time to ``wall.json``.

The study takes longer than a sitting on a 2-core CPU (about 3.5 h on that Intel Xeon), and a sitting's
registry does not outlive it. So the runs of earlier sittings are kept as records
(``prkd.registry.records``, with their per-image scores and what the report needs of their weights:
``prkd.views.study_records.keep_study_records``) in ``records``; ``train_study`` skips them (a student whose
teacher is only a record trains the teacher again first), and the launches' wall times are kept beside them.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prkd.utils import atomic
from prkd.experiments import catalog
from prkd.experiments.catalog import plan_of, results_folder
from prkd.config import Config, make
from prkd.experiments.executors import ProcessPool
from prkd.experiments.graph import PlanGraph, run_plan
from prkd.experiments.plans import plan_run_id
from prkd.registry import Registry
from prkd.registry.records import read_records
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA

__all__ = ["COMMITTED_RECORDS", "committed_records", "StudyPlan", "STUDY_PLANS", "study_configs",
           "keep_wall_time", "recorded_launch", "train_study", "wall_time"]

#: Where the committed study keeps the records of the runs of earlier sittings (``prkd.registry.records``).
COMMITTED_RECORDS = results_folder("study") / "records"
#: The preset whose runs the committed records hold.
COMMITTED_PRESET = "study"
#: The launches' wall times kept beside the records (the registry's ``wall.json`` does not outlive a sitting).
RECORDED_WALL = "_launches.json"


def committed_records(preset: str) -> Path | None:
    """The committed records' folder if ``preset`` is the one they were trained at, else None."""
    return catalog.committed_records("study", preset, COMMITTED_PRESET)


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
    return plan_of(STUDY_PLANS, preset, "the study")


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


def _sessions(path: Path | None) -> list[dict]:
    return json.loads(path.read_text())["sessions"] if path is not None and path.is_file() else []


def wall_time(preset: str, registry: Registry, records: Path | None = None) -> dict:
    """The study's launches (start, seconds, workers), this registry's and those kept in ``records``, and
    their total seconds."""
    kept = _sessions(Path(records) / RECORDED_WALL if records is not None else None)
    starts = {s["started"] for s in kept}
    sessions = kept + [s for s in _sessions(_wall_file(preset, registry)) if s["started"] not in starts]
    return {"sessions": sessions, "total_seconds": sum(s["seconds"] for s in sessions)}


def keep_wall_time(preset: str, registry: Registry, records: Path) -> None:
    """Copy the launches' wall times into ``records`` (beside the runs' records)."""
    Path(records).mkdir(parents=True, exist_ok=True)
    atomic.write_json(Path(records) / RECORDED_WALL,
                      {"sessions": wall_time(preset, registry, records)["sessions"]})


@contextlib.contextmanager
def recorded_launch(preset: str, registry: Registry, executor):
    """Add this launch's wall time to the study's ``wall.json`` when it ends, finished, failed or interrupted
    (``"interrupted": true``); yields the session's dict for the caller to add its outcome to."""
    start = time.monotonic()
    session = {"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "executor": type(executor).__name__ if executor is not None else "InProcess",
               "workers": getattr(executor, "processes", None) or getattr(executor, "workers", None),
               "interrupted": False}
    try:
        yield session
    except KeyboardInterrupt:
        session["interrupted"] = True
        raise
    finally:
        session["seconds"] = round(time.monotonic() - start, 1)
        atomic.write_json(_wall_file(preset, registry),
                          {"sessions": _sessions(_wall_file(preset, registry)) + [session]})


def train_study(preset: str, *, registry: Registry, executor=None, log: Callable[[str], None] = print,
                progress: bool = True, records: Path | None = None) -> dict:
    """Train (or take from the registry) every run of the study on ``executor`` (default: a ``ProcessPool`` of
    two one-thread processes), as one graph of runs, except those kept as records in ``records``; add this
    launch's wall time, finished or interrupted, to ``<root>/study/<preset>/wall.json``. Returns
    ``wall_time(preset, registry, records)``.

    Raises RunFailedError naming the runs that failed and those skipped because of them (the finished runs are
    kept; launch again to resume).
    """
    kept = read_records(records)
    graph = PlanGraph.from_configs({name: cfg for name, cfg in study_configs(preset).items()
                                    if plan_run_id(cfg) not in kept})
    if not graph.tasks:  # every run is a record: nothing to train, no launch to time
        return wall_time(preset, registry, records)
    with contextlib.ExitStack() as stack:
        if executor is None:
            executor = stack.enter_context(ProcessPool(2, torch_threads=1))
        with recorded_launch(preset, registry, executor) as session:
            outcome = run_plan(graph, registry, executor=executor, progress=progress, log=log)
            session.update(complete=len(outcome.complete), failed=len(outcome.failed),
                           skipped=len(outcome.skipped))
    outcome.raise_if_failed(f"the {preset!r} study")
    log(f"study {preset!r}: {len(outcome.complete)} runs complete; this launch took "
        f"{session['seconds']:.0f} s")
    return wall_time(preset, registry, records)
