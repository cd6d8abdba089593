"""In which order a plan's runs start: longest chains first, from a cost model fitted to measured run times.

A teacher and its students form a chain: no student can start before its teacher is complete. When the
longest chain starts last, the other workers finish early and then wait for it. So each task gets a
priority: its own cost plus the largest priority among the tasks that depend on it (a teacher's students).
Tasks run in decreasing priority, and a student never comes before its teacher (``critical_path_order``).
Every executor of a plan (``prkd.execution.executors``: in-process, a process pool, Dask with
``priority=``) uses this order.

The cost of a run (:class:`RunCost`) is its training time in seconds::

    seconds = epochs * (n_train // batch_size) * (c0 + c1 * L) * (image_size / 32) ** 2

with L the run's number of masks. A student (L = 1) costs what an E2E run costs: its teacher's targets
are computed once and cached (``prkd.learning.teacher_targets``), so its steps are barely dearer (measured:
mean student run 110 s, mean E2E run 102 s at the study preset). ``fit_cost_model`` fits c0 and c1 by least
squares. The model only has to rank runs, so it is kept rough. Width, depth and T of the U-Net are not in it,
and the random baseline (no mask gradients, mean 76 s) is costed as E2E.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np

from prkd.config import Config

if TYPE_CHECKING:
    from prkd.execution.graph import PlanGraph
    from prkd.registry import Registry

__all__ = ["STUDY_FIT", "RunCost", "critical_path_order", "default_cost_model", "fit_cost_model",
           "fit_from_registry", "priorities"]

REFERENCE_IMAGE_SIZE = 32  # the quick and study presets' scenes; other sizes scale with the pixel count


@dataclass(frozen=True)
class RunCost:
    """Training seconds of a run: ``steps * (seconds_per_step + seconds_per_step_per_mask * L) * shape``."""

    seconds_per_step: float
    seconds_per_step_per_mask: float

    @staticmethod
    def step_factors(cfg: Config) -> tuple[float, float]:
        """The multipliers of c0 and c1 in the run's seconds: steps x shape, and steps x shape x L."""
        scaled = cfg.total_steps * (cfg.data.image_size / REFERENCE_IMAGE_SIZE) ** 2
        return scaled, scaled * cfg.optics.n_masks

    def seconds(self, cfg: Config) -> float:
        per_run, per_mask = self.step_factors(cfg)
        return per_run * self.seconds_per_step + per_mask * self.seconds_per_step_per_mask


#: Fitted (``fit_cost_model``) to the ``wall_seconds`` (metrics.json ``train_seconds``) of all 78 rows of
#: docs/results/study/runs.csv: the study preset (32x32, 16 epochs x 32 steps), trained by two one-thread
#: processes on a 2-core Intel Xeon with AVX-512 (2026-12-07). The rows are the teachers L_t = 3, 5, 9, 15
#: (and L_t = 9 with masks drawn N(0, 1)): 323-743 s; the E2E, random and KD runs (L = 1): 201-647 s (median
#: 292 s; the students, mean 313 s, cost more than E2E, mean 275 s, which the model does not see). That gives
#: c0 = 0.5370 s and c1 = 0.0586 s per step and mask, i.e. 275.0 s + 30.0 s x L per run, with an RMS residual
#: of 63 s. tests/test_plan_schedule.py refits the CSV and checks these numbers.
STUDY_FIT = RunCost(seconds_per_step=0.5370, seconds_per_step_per_mask=0.0586)


def fit_cost_model(samples: Iterable[tuple[Config, float]]) -> RunCost:
    """c0 and c1 fitted by least squares (``numpy.linalg.lstsq``) to (config, measured training seconds)
    pairs.

    Raises:
        ValueError: the samples cannot fix both coefficients (fewer than two distinct numbers of masks).
    """
    samples = list(samples)
    if len({cfg.optics.n_masks for cfg, _ in samples}) < 2:
        raise ValueError("fitting a run cost needs runs with at least two different numbers of masks")
    design = np.array([RunCost.step_factors(cfg) for cfg, _ in samples], dtype=float)
    seconds = np.array([s for _, s in samples], dtype=float)
    (c0, c1), *_ = np.linalg.lstsq(design, seconds, rcond=None)
    return RunCost(float(c0), float(c1))


def fit_from_registry(registry: "Registry", *, preset: str | None = None) -> RunCost | None:
    """The model fitted to the complete runs of ``registry`` (of ``preset``, when given), from their
    ``train_seconds``; None when they cannot fix a model with positive coefficients."""
    samples = []
    for run in registry.runs(preset=preset, complete=True):
        seconds = run.metrics().get("train_seconds")
        if isinstance(seconds, (int, float)) and seconds > 0:
            samples.append((run.config(), float(seconds)))
    try:
        fitted = fit_cost_model(samples)
    except ValueError:
        return None
    return fitted if fitted.seconds_per_step > 0 and fitted.seconds_per_step_per_mask >= 0 else None


def default_cost_model(registry: "Registry | None" = None, *, preset: str | None = None) -> RunCost:
    """Fitted to ``registry``'s complete runs when they fix a model (``fit_from_registry``), else
    ``STUDY_FIT``."""
    fitted = fit_from_registry(registry, preset=preset) if registry is not None else None
    return fitted or STUDY_FIT


def priorities(graph: "PlanGraph", cost: RunCost) -> dict[str, float]:
    """Each task's own cost plus the largest priority among its dependents (the longest chain it starts)."""
    dependents: dict[str, list[str]] = {rid: [] for rid in graph.tasks}
    for task in graph.tasks.values():
        if task.teacher in dependents:
            dependents[task.teacher].append(task.run_id)
    out: dict[str, float] = {}

    def priority(rid: str) -> float:  # a teacher's students have no students: the recursion is shallow
        if rid not in out:
            longest_after = max((priority(d) for d in dependents[rid]), default=0.0)
            out[rid] = cost.seconds(graph.tasks[rid].cfg) + longest_after
        return out[rid]

    return {rid: priority(rid) for rid in graph.tasks}


def critical_path_order(graph: "PlanGraph", cost: RunCost) -> list[str]:
    """Run ids by decreasing priority (ties: the graph's order), never a student before its teacher."""
    prio = priorities(graph, cost)
    position = {rid: i for i, rid in enumerate(graph.tasks)}
    ranked = sorted(graph.tasks, key=lambda rid: (-prio[rid], position[rid]))
    order: list[str] = []
    placed: set[str] = set()
    # the first task whose teacher is placed (or outside the plan); with costs > 0, always ranked[0]
    while ranked:
        ready = next(rid for rid in ranked if _teacher_placed(graph, rid, placed))
        ranked.remove(ready)
        order.append(ready)
        placed.add(ready)
    return order


def _teacher_placed(graph: "PlanGraph", rid: str, placed: set[str]) -> bool:
    teacher = graph.tasks[rid].teacher
    return teacher is None or teacher in placed or teacher not in graph.tasks
