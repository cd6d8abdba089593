"""Beyond the paper: does a single-snapshot system that uses its measurements (``net.arch = "unrolled"``)
beat the paper's U-Net, the classical solvers and its own refinement -- and does distillation help it? The
runs, in order.

Everything is trained with sensor noise (the budget ladder's Poisson noise, 100 photons) on the ladder
preset's data and cosine schedule, for ``epochs`` x 32 steps:

* unrolled teachers with L_t in ``teacher_masks`` (L_t = 1 is the unrolled E2E run itself), seed 0;
* at L = 1, unrolled: E2E, random and the KD student at the paper's alpha, beta on ``seeds``, and the student
  with the normalized L_cdp at ``best_beta`` (sigma = 0) on ``extra_seeds``, all distilling the L_t =
  ``table_teacher`` unrolled teacher;
* the U-Net E2E on ``seeds`` under the same noise and budget, the comparison the unrolled system must win.

``best_beta`` is read off the ladder's normalized sweep (``best_beta_of``): the beta whose paired gain over
E2E is largest, or ``None`` while the sweep is not complete -- then the plan leaves that group out and says
so.
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
from prkd.experiments.plans import plan_run_id
from prkd.experiments import ladder_verdict
from prkd.experiments import ladder
from prkd.experiments.ladder import LadderRun, train_in_order
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA
from prkd.registry import Registry, Run
from prkd.registry.records import read_records

__all__ = ["COMMITTED_RECORDS", "committed_records", "UnrolledPlan", "UNROLLED_PLANS", "best_beta",
           "best_beta_of", "plan_config", "unrolled_runs", "train_unrolled"]

#: Where the committed experiment keeps the records of earlier sittings' runs (``prkd.registry.records``).
COMMITTED_RECORDS = results_folder("unrolled") / "records"


def committed_records(preset: str) -> Path | None:
    """The committed records' folder if ``preset`` is the one they are trained at (the ladder's), else
    None."""
    return catalog.committed_records("unrolled", preset, ladder.COMMITTED_PRESET)


@dataclass(frozen=True)
class UnrolledPlan:
    """What the unrolled experiment trains at a preset."""

    preset: str
    epochs: int
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    extra_seeds: tuple[int, ...] = (0, 1, 2)
    teacher_masks: tuple[int, ...] = (3, 9)
    table_teacher: int = 9
    noise: tuple[tuple[str, object], ...] = (("noise", "poisson"), ("photons", 100.0))
    lr_schedule: str = "cosine"


UNROLLED_PLANS: dict[str, UnrolledPlan] = {
    "ladder": UnrolledPlan("ladder", epochs=32),  # 1024 steps: 143 min on 2 cores (docs/unrolled.md)
    "smoke": UnrolledPlan("smoke", epochs=2, seeds=(0, 1), extra_seeds=(0, 1), teacher_masks=(2, 3),
                          table_teacher=3),
}


def _plan(preset: str) -> UnrolledPlan:
    return plan_of(UNROLLED_PLANS, preset, "the unrolled experiment")


def best_beta_of(beta_rows: list[dict]) -> float | None:
    """The beta of the ladder's normalized sweep (``ladder_verdict.beta_rows``) with the largest mean raw
    gain over E2E, or None when the sweep has no rows yet."""
    if not beta_rows:
        return None
    return max(beta_rows, key=lambda r: r["ΔPSNR vs E2E, raw (dB)"])["beta"]


def best_beta(preset: str, *, registry: Registry) -> float | None:
    """``best_beta_of`` the preset's ladder sweep, read from the registry and, at preset ladder, from the
    ladder's committed records (``prkd.experiments.ladder.committed_records``)."""
    kept = ladder.committed_records(preset)
    return best_beta_of(ladder_verdict.beta_rows(ladder_verdict.collect_ladder(preset, registry=registry,
                                                                               records=kept)))


def plan_config(preset: str, arch: str, **overrides) -> Config:
    """A config of the experiment at ``preset``: its noise, schedule and epochs (``overrides`` win), with the
    recovery network ``arch`` ("unet" or "unrolled")."""
    plan = _plan(preset)
    arch_fields = {"arch": arch} if arch == "unrolled" else {}
    extra = {} if plan.preset == "ladder" else {"lr_schedule": plan.lr_schedule}
    fields = {"epochs": plan.epochs, **dict(plan.noise), **arch_fields, **extra, **overrides}
    return make(plan.preset, **fields)


def unrolled_runs(preset: str, best_beta: float | None = None) -> list[LadderRun]:
    """The experiment's runs in training order (teachers first); the best-beta students only if
    ``best_beta``."""
    plan = _plan(preset)
    student = dict(mode="student", teacher_masks=plan.table_teacher, teacher_seed=0)
    items = [("unrolled teacher L_t=%d" % L, 0,
              plan_config(preset, "unrolled", mode="teacher", n_masks=L, seed=0)) for L in plan.teacher_masks]
    for s in plan.seeds:
        items += [("unrolled e2e", s, plan_config(preset, "unrolled", mode="e2e", seed=s)),
                  ("unrolled random", s, plan_config(preset, "unrolled", mode="random", seed=s)),
                  ("unrolled KD", s, plan_config(preset, "unrolled", **student, alpha=STUDENT_ALPHA,
                                                 beta=STUDENT_BETA, seed=s)),
                  ("unet e2e", s, plan_config(preset, "unet", mode="e2e", seed=s))]
    if best_beta is not None:
        items += [(f"unrolled KD normalized beta={best_beta:g}", s,
                   plan_config(preset, "unrolled", **student, alpha=1 - best_beta, beta=best_beta,
                               cdp_loss="normalized", seed=s)) for s in plan.extra_seeds]
    return [LadderRun(cfg.total_steps, group, seed, cfg) for group, seed, cfg in items]


def train_unrolled(preset: str, *, registry: Registry, best_beta: float | None = None, executor=None,
                   device: torch.device | None = None, progress: bool = True,
                   log: Callable[[str], None] = print,
                   data: Splits | None = None, records: Path | None = None) -> dict[str, Run]:
    """Train (or take from the registry) every run of ``unrolled_runs`` except those kept as records in
    ``records`` (an earlier sitting's), on ``executor`` (``prkd.experiments.executors``; default: in this
    process); a diverged run is marked failed and skipped, and RunFailedError names all such runs at the
    end."""
    kept = read_records(records)
    runs = [r for r in unrolled_runs(preset, best_beta) if plan_run_id(r.cfg) not in kept]
    return train_in_order(runs, registry=registry, executor=executor, device=device, progress=progress,
                          log=log, data=data, what=f"unrolled {preset}")
