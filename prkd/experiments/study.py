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

``STUDY`` is the study's spec (``prkd.experiments.spec``): the engine (``prkd.experiments.engine``) trains it
as one graph of runs (each student after its teacher, the longest teacher-and-students chains first) on an
executor (``prkd.execution.executors``), and its verdict is the claims of ``prkd.experiments.study_claims``.
The default executor is a pool of two one-thread processes: what that gains over one two-thread process
depends on the CPU (measured: 2.9x on one 2-core machine, 1.18x on a 2-core AMD EPYC, 0.90x on a 2-core Intel
Xeon; docs/scale-out.md). Each launch, finished or interrupted, adds its wall time to ``wall.json``.

The study takes longer than a sitting on a 2-core CPU (about 3.5 h on that Intel Xeon), and a sitting's
registry does not outlive it. So the runs of earlier sittings are kept as records
(``prkd.registry.records``, with their per-image scores and what the report needs of their weights:
``prkd.views.study_records.keep_study_records``) in ``records``; training skips them (a student whose teacher
is only a record trains the teacher again first), and the launches' wall times are kept beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prkd.config import Config, make
from prkd.experiments import engine
from prkd.experiments.catalog import plan_of
from prkd.experiments.plans import plan_run_id
from prkd.experiments.spec import ExperimentSpec, PlannedRun, planned_runs
from prkd.experiments.study_claims import verdict_rows
from prkd.experiments.study_sweep import beta_sweep_rows
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA
from prkd.registry import Registry, RunNotFoundError
from prkd.registry.records import RunRecord

__all__ = ["StudyPlan", "STUDY_PLANS", "STUDY", "study_configs", "study_runs", "collect_study",
           "teacher_group", "train_study", "wall_time", "committed_records", "first_mask",
           "drift_without_offset"]


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



def teacher_group(L: int) -> str:
    """The group of the teacher with L snapshots; L = 1 is the E2E baseline (the same objective)."""
    return "e2e" if L == 1 else f"teacher L_t={L}"


def _student(plan: StudyPlan, seed: int, alpha: float, beta: float, *, L_t: int | None = None,
             mask_init: str = "uniform", cdp_loss: str = "paper") -> Config:
    if (alpha, beta) == (1.0, 0.0):
        return make(plan.preset, mode="e2e", seed=seed, mask_init=mask_init)
    return make(plan.preset, mode="student", alpha=alpha, beta=beta, teacher_masks=L_t or plan.table_teacher,
                teacher_seed=0, seed=seed, mask_init=mask_init, cdp_loss=cdp_loss)


def study_configs(preset: str) -> dict[str, Config]:
    """Every run of the study by name ``"<group> s<seed>"`` (teachers: ``"teacher L_t=<L>[ normal]"``), in
    order."""
    plan = plan_of(STUDY_PLANS, preset, "the study")
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


def study_runs(preset: str) -> list[PlannedRun]:
    """``study_configs`` as the engine's runs: group ``"KD"`` and seed 3 for ``"KD s3"``; a teacher is the
    seed-0 run of the group of its name."""
    return planned_runs(study_configs(preset))


def first_mask(run):
    """(phi before, phi after training) of the run's first mask, as tensors: from its weights, or as its
    record kept them (``prkd.views.study_records``)."""
    import torch

    from prkd.utils.device import default_device
    if isinstance(run, RunRecord):
        return torch.tensor(run.extra["first_mask_phi0"]), torch.tensor(run.extra["first_mask_phi"])
    sensing = run.load_system(default_device()).sensing
    return sensing.phi0[0].cpu(), sensing.phi.detach()[0].cpu()


def drift_without_offset(run) -> float:
    """The run's final mask drift once each mask's common phase offset (invisible to the CDPs) is removed:
    from its weights, or as its record kept it."""
    from prkd.utils.device import default_device
    if isinstance(run, RunRecord):
        return run.extra["mask_drift_no_offset_rad"]
    return float(run.load_system(default_device()).sensing.drift_rad(remove_offset=True))


def _run_columns(run) -> dict:
    return {"mask_drift_no_offset_rad": round(drift_without_offset(run), 4)}


#: The study's spec: its verdict is its claims (``prkd.experiments.study_claims``), its own table the beta
#: sweeps (``prkd.experiments.study_sweep``).
STUDY = ExperimentSpec("study", "the study", STUDY_PLANS, "study", study_runs, lambda results: [],
                       tables={"beta_sweep": beta_sweep_rows}, order="critical path", default_processes=2,
                       verdict=verdict_rows,
                       run_columns=_run_columns)


def committed_records(preset: str) -> Path | None:
    """The committed records' folder (docs/results/study/records) if ``preset`` is study, else None."""
    return STUDY.committed_records(preset)


def collect_study(preset: str, *, registry: Registry, records: Path | None = None,
                  partial: bool = False) -> engine.Results:
    """The study's runs (``engine.collect``), all complete; RunNotFoundError names the missing ones unless
    ``partial``."""
    results = engine.collect(STUDY, preset, registry=registry, records=records)
    missing: dict[str, str] = {}  # run id -> the first name it is missing under
    for (name, cfg), item in zip(study_configs(preset).items(), results.items):
        if (item.steps, item.group, item.seed) not in results.runs:
            missing.setdefault(plan_run_id(cfg), name)
    if missing and not partial:
        names = ", ".join(list(missing.values())[:12]) + " ..." * (len(missing) > 12)
        raise RunNotFoundError(f"{len(missing)} run(s) of the {preset!r} study are not in the registry yet: "
                               f"{names}. Train them with: python -m prkd study --preset {preset}")
    return results


def train_study(preset: str, *, registry: Registry, executor=None, log: Callable[[str], None] = print,
                progress: bool = True, records: Path | None = None) -> dict:
    """Train the study (``engine.train``: default executor a pool of two one-thread processes) except the runs
    kept in ``records``; returns ``wall_time``. RunFailedError names the runs that failed or were skipped."""
    plan_of(STUDY_PLANS, preset, "the study")
    engine.train(STUDY, preset, registry=registry, executor=executor, records=records, log=log,
                 progress=progress)
    return wall_time(preset, registry, records)


def wall_time(preset: str, registry: Registry, records: Path | None = None) -> dict:
    """The study's launches (``engine.launches``) and their total seconds."""
    return engine.launches(STUDY, preset, registry, records)
