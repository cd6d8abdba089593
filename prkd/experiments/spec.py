"""An experiment as data, which one engine (``prkd.experiments.engine``) trains, collects and judges, and one
report (``prkd.views.experiment_report``) writes to ``docs/results/<name>``.

* ``PlannedRun``: one run of a plan -- its budget in steps, its group (``"e2e"``, ``"KD"``, ``"teacher"``,
  ...), its seed and its config. Seed s of every group shares its data order, initial masks, filter and
  network weights, so two groups are compared on the seeds they share.
* ``Comparison``: A − B over the seeds both groups have at one budget: each side's scoring (``"raw"`` test
  PSNR, or ``"refined"`` by the solver of ``prkd.learning.rescoring``), the Holm family it is adjusted in, and
  where A is a teacher, the teacher seed that B's seed s is paired with.
* ``ExperimentSpec``: the experiment's name (its folder), its plans by preset, the preset its committed
  records were trained at, the function that lists its runs, the one that lists its comparisons for what is
  complete, and the extra tables it adds to the report.

The study (notebook 07), the budget ladder (09) and the unrolled experiment (10) are specs
(``study.STUDY``, ``ladder.LADDER``, ``unrolled.UNROLLED``); a new experiment is one more spec module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from prkd.config import Config
from prkd.experiments.catalog import committed_records, plan_of

__all__ = ["PlannedRun", "Comparison", "ExperimentSpec", "planned_runs"]


@dataclass(frozen=True)
class PlannedRun:
    """One run of an experiment; ``name`` is ``"<group> s<seed> @<steps>"``."""

    steps: int
    group: str
    seed: int
    cfg: Config

    @property
    def name(self) -> str:
        return f"{self.group} s{self.seed} @{self.steps}"


def planned_runs(configs: Mapping[str, Config]) -> list[PlannedRun]:
    """A plan's configs by name (``"KD s3"``; a single run without a seed in its name, e.g. ``"teacher
    L_t=9"``, is the seed-0 run of the group of its name) as the engine's runs, in the same order."""
    out = []
    for name, cfg in configs.items():
        found = re.fullmatch(r"(.+) s(\d+)", name)
        group, seed = (found.group(1), int(found.group(2))) if found else (name, 0)
        out.append(PlannedRun(cfg.total_steps, group, seed, cfg))
    return out


@dataclass(frozen=True)
class Comparison:
    """A − B paired over seeds at ``steps`` (None: the experiment's top budget), B at ``steps_b`` where it
    differs (a doubled budget against the budget it doubles).

    ``keys`` are the leading columns of its verdict row (e.g. the rung and the scoring); ``family`` the Holm
    family it is adjusted in; ``a_seed`` maps B's seed to the seed of A it is paired with (a teacher's, whose
    students of several seeds distil one run); ``scope`` a sentence of what the row speaks for."""

    label: str
    a: str
    b: str
    scoring_a: str = "raw"
    scoring_b: str | None = None
    steps: int | None = None
    steps_b: int | None = None
    family: str = "raw"
    keys: tuple[tuple[str, Any], ...] = ()
    a_seed: Callable[[int], int] | None = field(default=None, compare=False)
    scope: str = ""

    @property
    def scorings(self) -> tuple[str, str]:
        return self.scoring_a, self.scoring_b or self.scoring_a


@dataclass(frozen=True)
class ExperimentSpec:
    """What an experiment trains and reads (see the module docstring).

    ``runs(preset, **options)`` lists its runs in training order; ``comparisons(results)`` its comparisons
    whose groups are complete, which ``prkd.experiments.verdicts.verdict_rows`` reads, unless ``verdict``
    (``verdict(results)``: the rows of a verdict of claims, e.g. the study's, read with the same pairing,
    Holm step and readings); ``tables`` maps a table's name to ``rows(results)``; ``order`` is ``"listed"``
    (train in the listed order) or ``"critical path"`` (``prkd.execution.schedule``); ``default_processes``
    the local worker processes (one thread each) it trains on when no executor is given (None: in this
    process); ``run_columns(run)``
    adds the experiment's own columns to its runs table; ``reuses`` names the specs whose committed records
    hold runs it shares (the same configs, so the same run ids): they are read, not trained again."""

    name: str
    title: str
    plans: Mapping[str, Any]
    committed_preset: str
    runs: Callable[..., list[PlannedRun]]
    comparisons: Callable[[Any], list[Comparison]]
    tables: Mapping[str, Callable[[Any], list[dict]]] = field(default_factory=dict)
    order: str = "listed"
    default_processes: int | None = None
    verdict: Callable[[Any], list[dict]] | None = None
    run_columns: Callable[[Any], dict] | None = None
    reuses: tuple[Any, ...] = ()

    def plan(self, preset: str):
        """The preset's plan, or a ``ConfigError`` naming the field and the presets allowed."""
        return plan_of(self.plans, preset, self.title)

    def committed_records(self, preset: str) -> Path | None:
        """``docs/results/<name>/records`` if ``preset`` is the one its committed runs were trained at."""
        return committed_records(self.name, preset, self.committed_preset)

    def results_folder(self, preset: str, registry) -> Path:
        """Where a run of the notebooks writes the report: ``<root>/figures/<name>``, or
        ``<name>-<preset>`` at another preset than the committed one. Created."""
        return registry.folder("figures", self.name if preset == self.committed_preset
                               else f"{self.name}-{preset}")
