"""An experiment plan as a graph of runs keyed by run id, and the in-process executor that runs it.

A plan (the reproduction's ``experiment_configs``, the study's ``study_configs``, any user sweep: a dict of
name -> Config) becomes a :class:`PlanGraph`. It has one :class:`RunTask` per distinct run id, and each
student depends on its teacher's task, named by its run id. A teacher that the plan does not list itself is
added, so that no task ever trains a teacher implicitly. Every student is trained with ``teacher_run=`` its
teacher's id, so it only loads the teacher and never trains it.

``run_plan(graph, registry)`` runs the graph in this process in critical-path order (``prkd.experiments.schedule``:
the longest teacher-and-students chains first, a teacher always before its students);
``prkd.experiments.dask_runner.run_on_client`` runs it on Dask, and ``prkd.experiments.executors.train_plan``
chooses between the two. Both return the same :class:`PlanOutcome`. A run that fails for its own reasons (a bad config, a NaN loss, a
damaged folder) is reported, not retried; the runs that depend on it are reported as skipped; everything
else finishes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from prkd.config import Config, ConfigError
from prkd.data import Splits, load_splits
from prkd.learning import RunFailedError, TrainingDiverged, get_or_train, teacher_config
from prkd.registry import CorruptCheckpointError, DamagedRunError, Registry, Run, RunNotFoundError, run_id_for
from prkd.experiments.schedule import RunCost, critical_path_order, default_cost_model

__all__ = ["RUN_FAILURES", "PlanGraph", "PlanOutcome", "RunTask", "plan_cost", "run_plan"]

#: Errors of a run itself: reported and not retried (a worker that dies is another matter: see dask_runner).
RUN_FAILURES = (ConfigError, RunFailedError, TrainingDiverged, DamagedRunError, CorruptCheckpointError,
                RunNotFoundError)


@dataclass(frozen=True)
class RunTask:
    """One run of a plan: its config, its id and, for a student, its teacher's run id (another task)."""

    run_id: str
    cfg: Config
    teacher: str | None = None


@dataclass
class PlanGraph:
    """The distinct runs of a plan (``tasks``, keyed by run id, teachers before their students) and the plan's
    names for each run (two names may share one run)."""

    tasks: dict[str, RunTask]
    names: dict[str, list[str]]

    @classmethod
    def from_configs(cls, configs: dict[str, Config]) -> "PlanGraph":
        teachers: dict[str, RunTask] = {}
        others: dict[str, RunTask] = {}
        names: dict[str, list[str]] = {}
        for name, cfg in configs.items():
            teacher = None
            if cfg.train.mode == "student":
                tcfg = teacher_config(cfg)
                teacher = run_id_for(tcfg)
                teachers.setdefault(teacher, RunTask(teacher, tcfg))
                names.setdefault(teacher, [])
            task = RunTask(run_id_for(cfg), cfg, teacher)
            (teachers if cfg.train.mode == "teacher" else others).setdefault(task.run_id, task)
            names.setdefault(task.run_id, []).append(name)
        return cls({**teachers, **others}, names)

    def label(self, run_id_: str) -> str:
        """The plan's first name for a run (its run id when the plan only implies it, e.g. a teacher)."""
        return (self.names.get(run_id_) or [run_id_])[0]

    def dependents(self, run_id_: str) -> list[str]:
        return [t.run_id for t in self.tasks.values() if t.teacher == run_id_]


@dataclass
class PlanOutcome:
    """What a plan run did: complete runs by run id, failures (run id -> message), skipped runs (their teacher
    failed), and wall seconds."""

    graph: PlanGraph
    complete: dict[str, Run] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    def runs_by_name(self) -> dict[str, Run]:
        return {name: run for rid, run in self.complete.items() for name in self.graph.names.get(rid, [])}

    def raise_if_failed(self, what: str) -> "PlanOutcome":
        """This outcome when every run completed; RunFailedError naming the failed and skipped runs otherwise."""
        if not self.ok:
            raise RunFailedError(f"{what} did not finish:\n{self.summary()}")
        return self

    def summary(self) -> str:
        lines = [f"{len(self.complete)} of {len(self.graph.tasks)} runs complete in {self.seconds:.0f} s"]
        lines += [f"failed: {self.graph.label(r)} ({r}): {m}" for r, m in self.failed.items()]
        lines += [f"skipped: {self.graph.label(r)} ({r}): {m}" for r, m in self.skipped.items()]
        return "\n".join(lines)


def skip_reason(teacher: str) -> str:
    """Why a student was not trained: its teacher failed (or was skipped itself)."""
    return f"its teacher {teacher} failed"


def _skip_dependents(outcome: PlanOutcome, run_id_: str) -> None:
    for dependent in outcome.graph.dependents(run_id_):
        outcome.skipped[dependent] = skip_reason(run_id_)


def plan_cost(graph: PlanGraph, registry: Registry) -> RunCost:
    """The cost model that orders ``graph``: fitted to the registry's complete runs of the plan's preset when
    they fix one, else the measured default (``prkd.experiments.schedule.default_cost_model``)."""
    presets = {task.cfg.preset for task in graph.tasks.values()}
    return default_cost_model(registry, preset=presets.pop() if len(presets) == 1 else None)


def run_plan(graph: PlanGraph, registry: Registry, *, device: torch.device | None = None,
             progress: bool = True, log: Callable[[str], None] = print, data: Splits | None = None,
             cost: RunCost | None = None) -> PlanOutcome:
    """Train (or take from the registry) every run of ``graph`` in this process, in critical-path order under
    ``cost`` (default ``plan_cost``). ``prkd.experiments.executors.train_plan`` chooses between this and Dask."""
    start = time.monotonic()
    outcome = PlanOutcome(graph)
    tasks = [graph.tasks[rid] for rid in critical_path_order(graph, cost or plan_cost(graph, registry))]
    data = data or (load_splits(tasks[0].cfg.data) if tasks else None)
    bar = tqdm(tasks, desc="plan", unit="run", disable=not progress)
    for task in bar:
        bar.set_postfix_str(graph.label(task.run_id))
        if task.run_id in outcome.skipped:
            continue
        try:
            outcome.complete[task.run_id] = get_or_train(task.cfg, registry=registry, teacher_run=task.teacher,
                                                         device=device, progress=progress, data=data, log=log)
        except RUN_FAILURES as err:
            outcome.failed[task.run_id] = f"{type(err).__name__}: {err}"
            _skip_dependents(outcome, task.run_id)
    outcome.seconds = time.monotonic() - start
    return outcome
