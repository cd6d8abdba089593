"""The study of notebook 07 -- does distillation help a single-snapshot system? -- as a plan of runs.

Every run goes through the registry (``prkd.learning.train.get_or_train``), so the study resumes after any stop and
never trains a finished run again; two configs that are the same (e.g. the beta = 0 end of a sweep and the
L_feat-only student) are the same run. The plan, per ``StudyPlan``:

* teachers (seed 0, masks drawn U[0, 2 pi)) for each L_t of ``teacher_masks`` -- Fig. 2 re-run with masks
  that learn -- and the L_t = 9 teacher with masks drawn N(0, 1);
* ``core_seeds`` paired seeds of E2E, random, the KD student at the paper's weights (alpha 0.5, beta 0.25),
  its L_cdp-only and L_feat-only ablations (Table 1), all distilled from the L_t = 9 teacher;
* ``sweep_seeds`` seeds of: a beta sweep with sigma = 0 (alpha = 1 - beta) and one with sigma > 0
  (alpha = 0.5, sigma = 0.5 - beta); E2E and KD with masks drawn N(0, 1); KD with the standardized L_cdp,
  from both initialisations; students of the teachers with ``student_masks`` snapshots (Fig. 3's plateau).

Seed s of every single-snapshot configuration shares its data order, initial masks (with the same
``mask_init``), filter and U-Net weights with seed s of the others, so their comparisons are paired
(``prkd.experiments.stats``). The teachers are single runs; a system with more masks draws more phases from the seed's
generator before its U-Net, so teachers of different L_t do not share initial weights (``prkd.experiments.verdict``).

Two processes on two cores train about 2.9x faster than one process with two threads on this project's
CPU (measured: an E2E epoch at quick shapes takes 6.4 s in each of two one-thread processes, 9 s in
one two-thread process), so ``launch`` splits the plan into shards, one process each. Teachers come
first; each shard waits until every teacher is complete before training students and baselines, so no
run is ever trained by two processes at once. Within each phase the runs go, in critical-path order
(``prkd.experiments.schedule``: longest first), each to the shard with the least fitted training seconds so
far. The barrier stays: it costs the spread of the teachers' phase (on two shards 884 s against 983 s of
measured teacher training, docs/results/study/runs.csv: about 100 s of the study's 5319 s,
docs/results/study/wall_time.json), and without it a shard could reach a student whose teacher the other
shard is still training.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from prkd.utils import atomic
from prkd.utils.allocator import allocator_env
from prkd.config import Config, ConfigError, make
from prkd.data import Splits, load_splits
from prkd.utils.device import default_device
from prkd.experiments.plans import plan_run_id, run_of
from prkd.experiments.schedule import STUDY_FIT
from prkd.registry import Registry, Run
from prkd.learning import STUDENT_ALPHA, STUDENT_BETA, RunFailedError, TrainingDiverged, get_or_train

__all__ = ["StudyPlan", "STUDY_PLANS", "study_configs", "run_shard", "launch", "wall_time"]


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


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _plan(preset: str) -> StudyPlan:
    if preset not in STUDY_PLANS:
        raise ConfigError(f"config field 'preset' of the study must be one of {', '.join(map(repr, STUDY_PLANS))}; "
                          f"got {preset!r}")
    return STUDY_PLANS[preset]


def _student(plan: StudyPlan, seed: int, alpha: float, beta: float, *, L_t: int | None = None,
             mask_init: str = "uniform", cdp_loss: str = "paper") -> Config:
    if (alpha, beta) == (1.0, 0.0):
        return make(plan.preset, mode="e2e", seed=seed, mask_init=mask_init)
    return make(plan.preset, mode="student", alpha=alpha, beta=beta, teacher_masks=L_t or plan.table_teacher,
                teacher_seed=0, seed=seed, mask_init=mask_init, cdp_loss=cdp_loss)


def study_configs(preset: str) -> dict[str, Config]:
    """Every run of the study by name ``"<group> s<seed>"`` (teachers: ``"teacher L_t=<L>[ normal]"``), in order."""
    plan = _plan(preset)
    a, b = STUDENT_ALPHA, STUDENT_BETA
    out: dict[str, Config] = {}
    for L in sorted(set(plan.teacher_masks) | {plan.table_teacher}, reverse=True):
        out[f"teacher L_t={L}"] = make(plan.preset, mode="teacher", n_masks=L, seed=0)
    out[f"teacher L_t={plan.table_teacher} normal"] = make(plan.preset, mode="teacher", n_masks=plan.table_teacher,
                                                            seed=0, mask_init="normal")
    groups: list[tuple[str, tuple[int, ...], Callable[[int], Config]]] = [
        ("e2e", plan.core_seeds, lambda s: _student(plan, s, 1.0, 0.0)),
        ("random", plan.core_seeds, lambda s: make(plan.preset, mode="random", seed=s)),
        ("KD", plan.core_seeds, lambda s: _student(plan, s, a, b)),
        ("L_cdp only", plan.core_seeds, lambda s: _student(plan, s, a, 1.0 - a)),
        ("L_feat only", plan.core_seeds, lambda s: _student(plan, s, a, 0.0)),
    ]
    for beta in plan.betas:
        groups.append((f"sigma=0 beta={beta:g}", plan.sweep_seeds, lambda s, beta=beta: _student(plan, s, 1 - beta, beta)))
        groups.append((f"alpha=0.5 beta={beta:g}", plan.sweep_seeds, lambda s, beta=beta: _student(plan, s, 0.5, beta)))
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


def _cost(cfg: Config) -> float:
    """Training seconds of a run by the measured cost model. Every shard must compute the same split, so the
    shards use the fixed ``STUDY_FIT``, never a fit to the registry (which changes as runs complete)."""
    return STUDY_FIT.seconds(cfg)


def _shard_items(items: list[tuple[str, Config]], shard: int, n_shards: int) -> list[tuple[str, Config]]:
    """The items of one shard: each distinct run, longest first (ties keep the plan's order), to the shard with
    the least cost so far. Within a phase no run depends on another, so this is the critical-path order of
    ``prkd.experiments.schedule`` (longest-processing-time-first)."""
    unique: dict[str, tuple[str, Config]] = {}
    for name, cfg in items:
        unique.setdefault(plan_run_id(cfg), (name, cfg))
    load = [0.0] * n_shards
    mine = []
    for name, cfg in sorted(unique.values(), key=lambda item: -_cost(item[1])):
        target = min(range(n_shards), key=lambda i: (load[i], i))
        load[target] += _cost(cfg)
        if target == shard:
            mine.append((name, cfg))
    return mine


def _wait_for(runs: dict[str, Run], log: Callable[[str], None], poll_s: float, timeout_s: float) -> None:
    """Block until every run is complete (another shard trains it); raise if one failed or time runs out."""
    start = time.monotonic()
    while True:
        failed = [name for name, run in runs.items() if run.is_failed]
        if failed:
            raise RunFailedError(f"teacher run(s) {', '.join(failed)} failed; see their failed.json")
        waiting = [name for name, run in runs.items() if not run.is_complete]
        if not waiting:
            return
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"waited {timeout_s:.0f} s for teachers {', '.join(waiting)} trained by another "
                               f"shard; run the study again (finished runs are kept)")
        log(f"waiting for {', '.join(waiting)} (trained by another shard)")
        time.sleep(poll_s)


def run_shard(preset: str, *, registry: Registry, shard: int = 0, n_shards: int = 1, device: torch.device | None = None,
              progress: bool = True, log: Callable[[str], None] = print, data: Splits | None = None,
              poll_s: float = 10.0, timeout_s: float = 4 * 3600) -> None:
    """Train (or take from the registry) this shard's part of the study: its teachers, then its other runs.

    A student or baseline whose training diverges is marked failed and skipped; the shard trains the rest and
    then raises RunFailedError naming the failed runs. A failed teacher stops the shard at once.
    """
    if not (_is_int(n_shards) and n_shards >= 1 and _is_int(shard) and 0 <= shard < n_shards):
        raise ConfigError(f"study shard must be an integer in [0, n_shards - 1] with n_shards >= 1; "
                          f"got shard={shard!r}, n_shards={n_shards!r}")
    configs = study_configs(preset)
    device = device or default_device()
    data = data or load_splits(next(iter(configs.values())).data)
    teachers = [(n, c) for n, c in configs.items() if c.train.mode == "teacher"]
    others = [(n, c) for n, c in configs.items() if c.train.mode != "teacher"]
    failed = []
    for phase, items in (("teachers", teachers), ("runs", others)):
        mine = _shard_items(items, shard, n_shards)
        bar = tqdm(mine, desc=f"study {preset} shard {shard + 1}/{n_shards}: {phase}", unit="run",
                   disable=not progress)
        for name, cfg in bar:
            bar.set_postfix_str(name)
            if phase == "teachers":  # every student waits for them: a failure stops the study
                get_or_train(cfg, registry=registry, device=device, progress=False, data=data, log=log)
                continue
            try:
                get_or_train(cfg, registry=registry, device=device, progress=False, data=data, log=log)
            except (RunFailedError, TrainingDiverged) as err:  # marked failed in the registry; the rest goes on
                log(f"run {name} failed: {err}")
                failed.append(name)
        if phase == "teachers":
            _wait_for({n: run_of(c, registry) for n, c in teachers}, log, poll_s, timeout_s)
    if failed:
        raise RunFailedError(f"{len(failed)} run(s) of shard {shard} failed (see their failed.json): {', '.join(failed)}")


def _wall_file(preset: str, registry: Registry) -> Path:
    return registry.folder("study", preset) / "wall.json"


def wall_time(preset: str, registry: Registry) -> dict:
    """The study's recorded launches (start, seconds, workers) and their total seconds."""
    path = _wall_file(preset, registry)
    sessions = json.loads(path.read_text())["sessions"] if path.is_file() else []
    return {"sessions": sessions, "total_seconds": sum(s["seconds"] for s in sessions)}


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGINT to every live shard: each saves a checkpoint of its run at the next step and exits."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)


def _wait_all(procs: list[subprocess.Popen], poll_s: float = 1.0) -> list[int]:
    """Wait for every shard; when one fails, stop the others (they could wait hours for its teachers). An
    interrupt of the caller (Ctrl-C, a kernel interrupt) stops the shards too instead of leaving them behind."""
    try:
        while any(p.poll() is None for p in procs):
            if any(p.poll() not in (None, 0) for p in procs):
                _stop(procs)
            time.sleep(poll_s)
    except BaseException:
        _stop(procs)
        for p in procs:
            p.wait()
        raise
    return [p.returncode for p in procs]


def launch(preset: str, *, registry: Registry, shards: int = 2, log: Callable[[str], None] = print) -> dict:
    """Train the whole study in ``shards`` one-thread processes (``python -m prkd study --shard i/n``), all on
    ``registry``.

    Each launch adds its wall time to ``<root>/study/<preset>/wall.json``. Returns ``wall_time(preset, registry)``.
    Raises RuntimeError naming the shards that failed (their finished runs are kept; launch again to resume).
    """
    if not (_is_int(shards) and 1 <= shards <= 64):
        raise ConfigError(f"study 'shards' must be an integer in [1, 64]; got {shards!r}")
    configs = study_configs(preset)
    load_splits(next(iter(configs.values())).data)  # found (or downloaded) once, before the shards look for it
    start, started_at = time.monotonic(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    env = {**os.environ, **allocator_env(), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # set at launch
    procs = [subprocess.Popen([sys.executable, "-m", "prkd", "--output-dir", str(registry.root), "study", "--preset",
                               preset, "--shard", f"{i}/{shards}"], env=env) for i in range(shards)]
    codes = _wait_all(procs)
    seconds = time.monotonic() - start
    record = wall_time(preset, registry)["sessions"] + [{"started": started_at, "seconds": round(seconds, 1),
                                                "workers": shards, "exit_codes": codes}]
    atomic.write_json(_wall_file(preset, registry), {"sessions": record})
    failed = [i for i, c in enumerate(codes) if c != 0]
    if failed:
        raise RuntimeError(f"study shard(s) {failed} of {shards} exited with {[codes[i] for i in failed]}; "
                           f"launch again to resume (finished runs are kept)")
    log(f"study {preset!r}: {shards} shards finished in {seconds:.0f} s")
    return wall_time(preset, registry)


def run_on_dask(preset: str, *, registry: Registry, client, log: Callable[[str], None] = print):
    """Train the whole study on a Dask ``client`` as one graph of runs (students after their teachers; no shards,
    no barrier): ``prkd.experiments.graph``. Raises RunFailedError naming the runs that failed."""
    from prkd.experiments.executors import train_plan
    from prkd.experiments.graph import PlanGraph
    return train_plan(PlanGraph.from_configs(study_configs(preset)), registry, client=client,
                    log=log).raise_if_failed(f"the {preset!r} study")
