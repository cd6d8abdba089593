"""The experiments of Section 4 as lists of configs, trained through the run registry, and their results.

* Fig. 2 -- teachers (Eq. 4, all parameters learned) for each L_t of ``Plan.teacher_masks``.
* Fig. 3 -- a single-snapshot student (Eq. 7) distilled from each of those teachers, against the E2E and
  random baselines (Sec. 4.1).
* Fig. 4 and Table 1 -- the teacher with ``Plan.table_teacher`` snapshots (L_t = 9 in the paper), its
  student and the ablation of the two KD terms (``ABLATIONS``), each with every seed of ``Plan.seeds``.
* Table 2 -- training time, peak memory and inference time, read from the runs' metrics.

``REPRODUCTION`` is the reproduction's spec (``prkd.experiments.spec``): the one engine
(``prkd.experiments.engine``) trains it (``run_all``) through ``prkd.learning.train.get_or_train`` -- a run
already in the registry is never trained again, so the notebooks 03-05 share their runs and ``run_all`` can be
interrupted and re-run -- and collects it; ``collect`` reads the registry only (notebook 06), names what is
missing and gives the runs by name (``Results``). Its comparisons (``reproduction_comparisons``: the student
of the table teacher against E2E and random, E2E against random, each KD term alone against E2E) are read by
the same verdict as every experiment's (``prkd.experiments.verdicts``); its report is notebook 06's figures
and tables (``prkd.views.report``) in ``docs/results/<preset>``; it keeps no records (a quick reproduction
trains in one sitting).

The paper reports single runs. Here the E2E and random baselines and the L_t = 9 student with its ablations
are trained with several seeds (``seed`` draws the masks, the filter, the U-Net, the shuffling and the noise;
the data split stays fixed), and the tables give mean +- 95 % confidence half-width (Student's t).
The teachers (one per L_t) use seed 0 -- the same teacher for every student seed, as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from prkd.experiments.catalog import plan_of
from prkd.config import Config, make
from prkd.data import Splits
from prkd.experiments.engine import collect as collect_spec, plan_run_id, run_of, train as train_spec
from prkd.experiments.spec import Comparison, ExperimentSpec, planned_runs
from prkd.registry import Registry, Run, RunNotFoundError
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA

__all__ = ["ABLATIONS", "PLANS", "REPRODUCTION", "ablation_prefix", "Plan", "Results", "collect",
           "experiment_configs", "mean_ci95", "plan_run_id", "reproduction_comparisons", "reproduction_runs",
           "run_all", "run_of"]

#: Table 1 (Sec. 4.3): KD term(s) used -> Eq. (7) weights (alpha, beta); sigma = 1 - alpha - beta weighs
#: L_feat. alpha stays at the student's 0.5 and the weight of a dropped term goes to the other KD term, so
#: the task term keeps the same weight in every column; "neither" is alpha = 1, beta = 0: Eq. (4), the E2E
#: baseline. In the paper's column order.
ABLATIONS: dict[str, tuple[float, float]] = {
    "L_cdp only": (STUDENT_ALPHA, 1.0 - STUDENT_ALPHA),
    "L_cdp + L_feat": (STUDENT_ALPHA, STUDENT_BETA),
    "L_feat only": (STUDENT_ALPHA, 0.0),
    "neither": (1.0, 0.0),
}


@dataclass(frozen=True)
class Plan:
    """What a preset's reproduction trains.

    Attributes:
        preset: the config preset of every run.
        teacher_masks: the L_t values of Figs. 2 and 3.
        seeds: seeds of the baselines, of the ``table_teacher`` student and of its ablations.
        table_teacher: L_t of Fig. 4 and Table 1 (the paper's L_t = 9).
    """

    preset: str
    teacher_masks: tuple[int, ...]
    seeds: tuple[int, ...] = (0, 1, 2)
    table_teacher: int = 9


#: The paper sweeps L_t = 1..15 (Sec. 4.2). On a 2-core CPU ``quick`` takes a spread of five teachers, which
#: with the other 16 runs keeps the quick reproduction near half an hour (README, What they produce).
PLANS: dict[str, Plan] = {
    "smoke": Plan("smoke", (1, 3, 9)),
    "quick": Plan("quick", (1, 3, 5, 9, 15)),
    "paper": Plan("paper", tuple(range(1, 16))),
}


def student_config(plan: Plan, L_t: int, seed: int, alpha: float = STUDENT_ALPHA, beta: float = STUDENT_BETA
                   ) -> Config:
    """A single-snapshot student of the seed-0 teacher with L_t snapshots; (1, 0) gives the E2E baseline."""
    if (alpha, beta) == (1.0, 0.0):
        return make(plan.preset, mode="e2e", seed=seed)
    return make(plan.preset, mode="student", alpha=alpha, beta=beta, teacher_masks=L_t,
                teacher_seed=0, seed=seed)


def experiment_configs(preset: str) -> dict[str, Config]:
    """Every run of the reproduction, by name, in training order (teachers first, then baselines,
    students)."""
    plan = plan_of(PLANS, preset)
    out: dict[str, Config] = {}
    for L in sorted(set(plan.teacher_masks) | {plan.table_teacher}):
        out[f"teacher L_t={L}"] = make(plan.preset, mode="teacher", n_masks=L, seed=0)
    for seed in plan.seeds:
        out[f"e2e s{seed}"] = make(plan.preset, mode="e2e", seed=seed)
        out[f"random s{seed}"] = make(plan.preset, mode="random", seed=seed)
    for L in plan.teacher_masks:
        out[f"student L_t={L} s0"] = student_config(plan, L, 0)
    for name, (alpha, beta) in ABLATIONS.items():  # "neither" and the seed-0 student are already there
        for seed in plan.seeds:
            out.setdefault(f"{ablation_prefix(plan, name)} s{seed}",
                           student_config(plan, plan.table_teacher, seed, alpha, beta))
    return out


def ablation_prefix(plan: Plan, name: str) -> str:
    """Run-name prefix of a Table 1 column: its student runs are named ``f"{prefix} s{seed}"``."""
    return {"L_cdp + L_feat": f"student L_t={plan.table_teacher}", "neither": "e2e"}.get(name, name)


def reproduction_runs(preset: str) -> list:
    """``experiment_configs`` as the engine's runs (``spec.planned_runs``): group ``"e2e"``, seed 1 for
    ``"e2e s1"``; a teacher is the seed-0 run of the group of its name."""
    return planned_runs(experiment_configs(preset))


def reproduction_comparisons(results) -> list[Comparison]:
    """The paper's claims at this preset, paired over the seeds (one Holm family, raw test PSNR): the student
    of the table teacher against E2E and random, E2E against random, each KD term alone against E2E."""
    student = f"student L_t={results.plan.table_teacher}"
    pairs = ((f"{student} − E2E", student, "e2e"), (f"{student} − random", student, "random"),
             ("E2E − random", "e2e", "random"), ("L_cdp only − E2E", "L_cdp only", "e2e"),
             ("L_feat only − E2E", "L_feat only", "e2e"))
    return [Comparison(label, a, b, family="raw") for label, a, b in pairs
            if results.complete(max(results.rungs), a, b)]


def run_all(preset: str, *, registry: Registry, executor=None, device: torch.device | None = None,
            progress: bool = True, data: Splits | None = None, log=print) -> dict[str, Run]:
    """Train (or take from the registry) every run of ``experiment_configs(preset)`` with the engine
    (``engine.train``: one graph in critical-path order on ``executor``, in this process by default); return
    the runs by name. Interrupt it and call it again to continue: finished runs are taken from the registry, a
    run in progress resumes from its checkpoint.

    Raises:
        RunFailedError: some runs failed (named, with the runs skipped because of them); the others are kept.
    """
    train_spec(REPRODUCTION, preset, registry=registry, executor=executor, device=device, progress=progress,
               log=log, data=data)
    return {name: run_of(cfg, registry) for name, cfg in experiment_configs(preset).items()}


def mean_ci95(values) -> tuple[float, float]:
    """Mean and half-width of the 95 % confidence interval of the mean (Student's t, n - 1 dof; nan for n =
    1)."""
    from scipy import stats

    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)


@dataclass
class Results:
    """The reproduction's runs, read from the registry (``collect``)."""

    plan: Plan
    runs: dict[str, Run]

    def metric(self, name: str, key: str) -> float:
        return float(self.runs[name].metrics()[key])

    def seeds(self, prefix: str, key: str) -> list[float]:
        """``key`` of the runs ``f"{prefix} s{seed}"`` for every seed of the plan."""
        return [self.metric(f"{prefix} s{seed}", key) for seed in self.plan.seeds]

    def teacher(self, L: int) -> Run:
        return self.runs[f"teacher L_t={L}"]


def collect(preset: str, *, registry: Registry) -> Results:
    """The runs of ``experiment_configs(preset)`` from the registry, all complete; nothing is trained.

    Raises:
        RunNotFoundError: some are missing or unfinished (named, with how to produce them).
    """
    plan, collected = plan_of(PLANS, preset), collect_spec(REPRODUCTION, preset, registry=registry)
    runs, missing = {}, []
    for (name, cfg), item in zip(experiment_configs(preset).items(), collected.items):
        run = collected.runs.get((item.steps, item.group, item.seed))
        if run is not None:
            runs[name] = run
        else:
            missing.append(f"{name} ({plan_run_id(cfg)})")
    if missing:
        raise RunNotFoundError(
            f"{len(missing)} run(s) of the {preset!r} reproduction are not in the registry yet: "
            f"{', '.join(missing)}. Run notebooks 03-05 first (python -m prkd reproduce --preset {preset}), "
            f"or prkd.experiments.run_all({preset!r}).")
    return Results(plan, runs)


#: The reproduction's spec (see the module docstring).
REPRODUCTION = ExperimentSpec("reproduction", "the reproduction", PLANS, "quick", reproduction_runs,
                              reproduction_comparisons, order="critical path")
