"""The one engine under every experiment spec (``prkd.experiments.spec``): train its runs on any executor,
timing each launch, and collect them -- from the records of earlier sittings, else from the registry.

Every run goes through the registry (``prkd.learning.train.get_or_train``), so an experiment resumes after any
stop and never trains a finished run again. A run kept as a record (``prkd.registry.records``) is not trained
again and stays the result even when the registry holds the run too (a teacher trained again for a missing
student does not rewrite a committed result); a student whose teacher is only a record trains the teacher
again first. Each launch, finished, failed or interrupted, adds its wall time to
``<root>/<experiment>/<preset>/wall.json``; ``keep_launches`` copies them beside the records.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from prkd.data import Splits
from prkd.execution.executors import ProcessPool
from prkd.execution.graph import PlanGraph, run_plan
from prkd.experiments.spec import ExperimentSpec, PlannedRun
from prkd.learning.rescoring import refined_columns
from prkd.registry import Registry, Run, run_id_for
from prkd.registry.records import read_records
from prkd.utils import atomic

__all__ = ["Results", "plan_run_id", "run_of", "kept_records", "collect", "train", "train_in_order", "score",
           "launches", "keep_launches", "recorded_launch", "KEPT_LAUNCHES"]

#: The launches' wall times kept beside the records (the registry's ``wall.json`` does not outlive a sitting).
KEPT_LAUNCHES = "_launches.json"


@dataclass
class Results:
    """An experiment's complete runs by (steps, group, seed), the runs its plan lists, and where they came
    from."""

    spec: ExperimentSpec
    preset: str
    items: list[PlannedRun]
    runs: dict[tuple[int, str, int], Run]
    registry: Registry | None = None
    records: Path | None = None

    @property
    def plan(self):
        return self.spec.plan(self.preset)

    @property
    def rungs(self) -> list[int]:
        return sorted({item.steps for item in self.items})

    def seeds(self, steps: int, group: str) -> list[int]:
        return sorted(seed for (s, g, seed) in self.runs if s == steps and g == group)

    def planned(self, steps: int, group: str) -> list[int]:
        return sorted({i.seed for i in self.items if i.steps == steps and i.group == group})

    def complete(self, steps: int, *groups: str) -> bool:
        """Whether every planned seed of each group has a complete run at ``steps``."""
        return all(self.planned(steps, g) and self.seeds(steps, g) == self.planned(steps, g) for g in groups)

    def group(self, group: str, steps: int | None = None) -> dict[int, Run]:
        """Seed -> run of ``group`` at ``steps`` (default: the experiment's top budget)."""
        steps = max(self.rungs) if steps is None else steps
        return {seed: run for (s, g, seed), run in self.runs.items() if s == steps and g == group}

    def groups(self) -> list[str]:
        return list(dict.fromkeys(i.group for i in self.items))

    def members(self):
        """(steps, group, its complete runs) of every budget and group with any, budgets in order."""
        for steps in self.rungs:
            for group in self.groups():
                runs = list(self.group(group, steps).values())
                if runs:
                    yield steps, group, runs

    def first_config(self):
        return self.items[0].cfg


def plan_run_id(cfg) -> str:
    """The run id of a plan's config: a student's includes its implied teacher's (``registry.run_id_for``)."""
    return run_id_for(cfg)


def run_of(cfg, registry: Registry) -> Run:
    """The registry folder of a plan's config."""
    return Run(registry.runs_dir / plan_run_id(cfg))


def score(run, scoring: str = "raw") -> float:
    """A complete run's (or record's) mean test PSNR: ``"raw"``, or ``"refined"`` by the solver of
    ``prkd.learning.rescoring`` (computed once, kept in the run)."""
    if scoring not in ("raw", "refined"):
        raise ValueError(f"scoring must be 'raw' or 'refined'; got {scoring!r}")
    return refined_columns(run)["refined_psnr"] if scoring == "refined" else run.metrics()["test_psnr"]


def kept_records(spec: ExperimentSpec, preset: str, records: Path | None) -> dict:
    """The records a spec's runs are read from instead of trained: those in ``records`` and the committed
    records of the specs it reuses (``ExperimentSpec.reuses``), by run id; ``records`` wins."""
    kept = {}
    for other in spec.reuses:
        kept |= read_records(other.committed_records(preset))
    return kept | read_records(records)


def collect(spec: ExperimentSpec, preset: str, *, registry: Registry, records: Path | None = None,
            **options) -> Results:
    """The spec's runs (``spec.runs(preset, **options)``) kept as a record in ``records``, or else complete in
    the registry; the rest are left out (a report says which groups are incomplete)."""
    items = spec.runs(preset, **options)
    kept, runs = kept_records(spec, preset, records), {}
    for item in items:
        run = run_of(item.cfg, registry)
        if run.id in kept or run.is_complete:
            runs[(item.steps, item.group, item.seed)] = kept.get(run.id, run)
    return Results(spec, preset, items, runs, registry, records)


def train(spec: ExperimentSpec, preset: str, *, registry: Registry, executor=None,
          records: Path | None = None, max_steps: int | None = None, device: torch.device | None = None,
          progress: bool = True, log: Callable[[str], None] = print, data: Splits | None = None,
          **options) -> dict[str, Run]:
    """Train (or take from the registry) every run of the spec with at most ``max_steps`` steps, except those
    kept as records in ``records``, on ``executor`` (default: the spec's ``default_processes`` one-thread
    worker processes, or this process); add this launch's wall time to ``wall.json``. Returns the complete
    runs by name. A run that fails is reported and its dependants skipped (the rest goes on);
    RunFailedError names them all at the end (launch again to resume)."""
    kept = kept_records(spec, preset, records)
    runs = [r for r in spec.runs(preset, **options) if (max_steps is None or r.steps <= max_steps)
            and plan_run_id(r.cfg) not in kept]
    if not runs:  # every run is a record: nothing to train, no launch to time
        return {}
    what = f"the {preset!r} {spec.name}"
    with contextlib.ExitStack() as stack:
        if executor is None and spec.default_processes:
            executor = stack.enter_context(ProcessPool(spec.default_processes, torch_threads=1))
        with recorded_launch(spec, preset, registry, executor) as session:
            outcome = train_in_order(runs, registry=registry, executor=executor, device=device,
                                     progress=progress, log=log, data=data, what=what,
                                     listed_order=spec.order == "listed")
            session.update(complete=len(outcome.complete), failed=len(outcome.failed),
                           skipped=len(outcome.skipped))
    log(f"{what}: {len(outcome.complete)} runs complete; this launch took {session['seconds']:.0f} s")
    return outcome.raise_if_failed(what).runs_by_name()


def train_in_order(runs: list[PlannedRun], *, registry: Registry, executor=None,
                   device: torch.device | None = None, progress: bool = True,
                   log: Callable[[str], None] = print, data: Splits | None = None, what: str = "plan",
                   listed_order: bool = True):
    """Train ``runs`` as one plan (``prkd.execution.graph.run_plan``): in their listed order (a teacher they
    only imply just before its first student), or in critical-path order. Returns the ``PlanOutcome``."""
    graph = PlanGraph.from_configs({item.name: item.cfg for item in runs})
    order = None
    if listed_order:
        order = []
        for item in runs:
            task = graph.tasks[plan_run_id(item.cfg)]
            order += [rid for rid in (task.teacher, task.run_id) if rid is not None and rid not in order]
    return run_plan(graph, registry, executor=executor, device=device, progress=progress, log=log, data=data,
                    order=order, what=what)


def _wall_file(spec: ExperimentSpec, preset: str, registry: Registry) -> Path:
    return registry.folder(spec.name, preset) / "wall.json"


def _sessions(path: Path | None) -> list[dict]:
    return json.loads(path.read_text())["sessions"] if path is not None and path.is_file() else []


def launches(spec: ExperimentSpec, preset: str, registry: Registry, records: Path | None = None,
             *more_records: Path | None) -> dict:
    """The experiment's launches (start, seconds, executor, workers), those kept in ``records`` (and
    ``more_records``) and this registry's, each once, and their total seconds."""
    sessions: list[dict] = []
    for folder in (records, *more_records):  # a launch kept in two folders (copied) is one launch
        if folder is not None:
            starts = {s["started"] for s in sessions}
            sessions += [s for s in _sessions(Path(folder) / KEPT_LAUNCHES) if s["started"] not in starts]
    starts = {s["started"] for s in sessions}
    sessions += [s for s in _sessions(_wall_file(spec, preset, registry)) if s["started"] not in starts]
    return {"sessions": sessions, "total_seconds": sum(s["seconds"] for s in sessions)}


def keep_launches(spec: ExperimentSpec, preset: str, registry: Registry, folder: Path,
                  source: Path | None = None) -> None:
    """Copy the launches' wall times (those kept in ``source``, in ``folder`` and this registry's) into
    ``folder``, beside the runs' records."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    atomic.write_json(Path(folder) / KEPT_LAUNCHES,
                      {"sessions": launches(spec, preset, registry, source, folder)["sessions"]})


@contextlib.contextmanager
def recorded_launch(spec: ExperimentSpec, preset: str, registry: Registry, executor):
    """Add this launch's wall time to ``wall.json`` when it ends, finished, failed or interrupted
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
        path = _wall_file(spec, preset, registry)
        atomic.write_json(path, {"sessions": _sessions(path) + [session]})
