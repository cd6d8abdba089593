"""An experiment plan as a graph of runs keyed by run id, and the in-process executor that runs it.

A plan (the reproduction's ``experiment_configs``, the study's ``study_configs``, any user sweep: a dict of
name -> Config) becomes a :class:`PlanGraph`. It has one :class:`RunTask` per distinct run id, and each
student depends on its teacher's task, named by its run id. A teacher that the plan does not list itself is
added, so that no task ever trains a teacher implicitly. Every student is trained with ``teacher_run=`` its
teacher's id, so it only loads the teacher and never trains it.

``run_plan(graph, registry, executor=...)`` submits the graph's runs to an executor
(``prkd.execution.executors``: in this process by default, a local process pool, or Dask) in critical-path
order (``prkd.execution.schedule``: the longest teacher-and-students chains first, a teacher always before
its students) and returns a :class:`PlanOutcome`. One failure rule holds for every executor: a run that fails
(a bad config, a NaN loss, a damaged folder) is reported, not retried; the runs that depend on it are
reported as skipped; everything else finishes. An interrupt stops the plan; the same call resumes it.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from prkd.config import Config, ConfigError
from prkd.data import Splits, load_splits
from prkd.learning import RunFailedError, get_or_train, teacher_config
from prkd.registry import Registry, Run, open_registry, run_id_for
from prkd.execution.executors import Executor, InProcess
from prkd.execution.schedule import RunCost, critical_path_order, default_cost_model

__all__ = ["PlanGraph", "PlanOutcome", "RunTask", "plan_cost", "run_plan", "train_task"]


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
        """This outcome when every run completed; RunFailedError naming the failed and skipped runs
        otherwise."""
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


def plan_cost(graph: PlanGraph, registry: Registry) -> RunCost:
    """The cost model that orders ``graph``: fitted to the registry's complete runs of the plan's preset when
    they fix one, else the measured default (``prkd.execution.schedule.default_cost_model``)."""
    presets = {task.cfg.preset for task in graph.tasks.values()}
    return default_cost_model(registry, preset=presets.pop() if len(presets) == 1 else None)


def train_task(cfg: Config, teacher: str | None, *, registry_root: str) -> str:
    """The work of one run on a worker (a process of a pool, a Dask worker): train (or load, or resume) it in
    the registry at ``registry_root``; return its run id. ``teacher`` is the teacher task's result for a
    student."""
    run = get_or_train(cfg, registry=open_registry(registry_root), teacher_run=teacher, progress=False,
                       log=lambda message: None)
    return run.id


def _train_here(cfg: Config, teacher: str | None, *, registry: Registry, device, data, progress, log) -> str:
    """The work of one run in this process, with the plan's device, data and progress."""
    return get_or_train(cfg, registry=registry, teacher_run=teacher, device=device,
                        progress=progress, data=data,
                        log=log).id


def _work(graph: PlanGraph, registry: Registry, executor: Executor, *, device, data, progress,
          log) -> Callable:
    if executor.in_process:
        first = next(iter(graph.tasks.values()), None)
        data = data or (load_splits(first.cfg.data) if first else None)  # loaded once for the whole plan
        return functools.partial(_train_here, registry=registry, device=device, data=data, progress=progress,
                                 log=log)
    given = [name for name, value in (("device", device), ("data", data)) if value is not None]
    if given:
        raise ConfigError(f"{' and '.join(repr(g) for g in given)} apply only to training in this process; "
                          "in worker processes each one chooses its own device (PRKD_DEVICE) and loads the "
                          "data itself")
    return functools.partial(train_task, registry_root=str(registry.root))


def run_plan(graph: PlanGraph, registry: Registry, *, executor: Executor | None = None,
             device: torch.device | None = None, progress: bool = True, log: Callable[[str], None] = print,
             data: Splits | None = None, cost: RunCost | None = None,
             order: list[str] | None = None, what: str = "plan") -> PlanOutcome:
    """Train (or take from the registry) every run of ``graph`` on ``executor`` (default: ``InProcess()``), in
    critical-path order under ``cost`` (default ``plan_cost``), or in ``order`` (every run id of the graph,
    each teacher before its students) when given; each student after its teacher. ``what`` labels the
    progress bar.

    ``device`` and ``data`` apply in this process only; with another executor they raise ConfigError (its
    workers choose their device and load the data themselves) instead of being ignored.
    """
    start = time.monotonic()
    executor = executor or InProcess()
    work = _work(graph, registry, executor, device=device, data=data, progress=progress, log=log)
    order = _checked(graph, order) if order is not None else critical_path_order(
        graph, cost or plan_cost(graph, registry))
    futures: dict[str, object] = {}
    for rank, rid in enumerate(order):
        task = graph.tasks[rid]
        teacher = futures[task.teacher] if task.teacher else None
        futures[rid] = executor.submit(work, task.cfg, teacher, key=rid, priority=len(order) - rank)
    bar = tqdm(total=len(futures), desc=what, unit="run", disable=not progress)
    for _ in executor.as_completed(list(futures.values()),
                                   started=lambda rid: bar.set_postfix_str(graph.label(rid))):
        bar.update()
    bar.close()
    outcome = PlanOutcome(graph)
    for rid in order:
        _collect(outcome, registry, rid, futures[rid])
    outcome.seconds = time.monotonic() - start
    return outcome


def _checked(graph: PlanGraph, order: list[str]) -> list[str]:
    """``order`` when it lists every run of ``graph`` once, each teacher before its students; else
    ValueError."""
    if sorted(order) != sorted(graph.tasks):
        raise ValueError("the order must list every run of the plan exactly once")
    position = {rid: i for i, rid in enumerate(order)}
    late = [rid for rid, t in graph.tasks.items() if t.teacher and position[t.teacher] > position[rid]]
    if late:
        raise ValueError(f"the order puts students before their teachers: {', '.join(late)}")
    return list(order)


def _collect(outcome: PlanOutcome, registry: Registry, rid: str, future) -> None:
    """File one finished future under complete, failed (its own error) or skipped (its teacher's)."""
    teacher = outcome.graph.tasks[rid].teacher
    err = future.exception()
    if err is None:
        outcome.complete[rid] = registry.find(future.result())
    elif teacher and (teacher in outcome.failed or teacher in outcome.skipped):
        outcome.skipped[rid] = skip_reason(teacher)
    else:
        outcome.failed[rid] = f"{type(err).__name__}: {err}"
