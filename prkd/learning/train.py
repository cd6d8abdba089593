"""One training entry point for the four configurations of Section 4.1, through the run registry.

* ``teacher`` -- E2E, Eq. (4), L_t snapshots; phi, psi, theta trained.
* ``e2e``     -- the E2E baseline: the same with L = 1.
* ``random``  -- Eq. (4) with phi and psi frozen at their random initialisation; theta trained.
* ``student`` -- KD, Eq. (7); all trained; the teacher (``teacher_masks`` snapshots, ``teacher_seed``) is
  loaded from its finished run -- trained first if the registry lacks it -- and kept frozen.

``get_or_train(cfg, registry=...)`` returns a complete :class:`~prkd.registry.Run`: an existing complete run
as it is, an interrupted one resumed from its checkpoint (``prkd.learning.loop``), or a new one trained from
scratch -- by exactly one process, under the run's lock, with every step recorded in its ``events.jsonl``.
It alone writes a run's files; the loop it drives (``prkd.learning.loop.fit``) and the step write none.
"""

from __future__ import annotations

from contextlib import closing, contextmanager
from typing import Callable, Iterator

import torch

from prkd.config import Config, ConfigError
from prkd.data import Splits, load_splits
from prkd.learning.diagnostics import LOW_DRIFT_RAD, OpticsProbe
from prkd.learning.evaluation import device_name
from prkd.learning.loop import (HISTORY_COLUMNS, Position, TrainingDiverged, TrainingInterrupted, checkpoint,
                                fit, new_fit, resume)
from prkd.learning.objectives import STUDENT_ALPHA, STUDENT_BETA
from prkd.learning.run_metrics import final_metrics, kd_terms_at_start
from prkd.physics.system import PRSystem
from prkd.registry import Registry, Run, RunNotFoundError, events, load_checkpoint
from prkd.registry.run import teacher_config
from prkd.utils import atomic
from prkd.utils.arithmetic import resolve_arithmetic
from prkd.utils.device import default_device, to_device
from prkd.utils.memory import PeakMemory

__all__ = ["STUDENT_ALPHA", "STUDENT_BETA", "RunFailedError", "TrainingDiverged", "TrainingInterrupted",
           "check_teacher_fits", "get_or_train", "teacher_config"]


class RunFailedError(RuntimeError):
    """The run failed earlier (see its failed.json); it is not trained again automatically."""


def check_teacher_fits(student: Config, teacher: Config, teacher_id: str) -> None:
    """Raise ConfigError unless run ``teacher_id`` (config ``teacher``) is a teacher that ``student`` can
    distil from."""
    if teacher.train.mode != "teacher":
        raise ConfigError(f"run '{teacher_id}' is a {teacher.train.mode!r} run, not a teacher")
    for section, name in (("data", "image_size"), ("data", "pad_factor"), ("data", "phase_range"),
                          ("net", "unet_depth"), ("net", "unet_width"), ("net", "arch"),
                          ("net", "unroll_stages"),
                          ("net", "unroll_width")):
        s, t = getattr(getattr(student, section), name), getattr(getattr(teacher, section), name)
        if s != t:
            raise ConfigError(f"teacher run '{teacher_id}' has {name}={t!r} but the student has "
                              f"{name}={s!r}; the student must share the teacher's image size and U-Net")


def _resolve_teacher(cfg: Config, registry: Registry, teacher_run: str | None, device: torch.device,
                     log: Callable[[str], None], progress: bool) -> Run:
    if teacher_run is not None:
        run = registry.find(teacher_run)
        check_teacher_fits(cfg, run.config(), run.id)
        if not run.is_complete:
            raise RunNotFoundError(f"teacher run '{teacher_run}' is not complete; train it (or resume it) "
                                   "first")
        return run
    tcfg = teacher_config(cfg)
    run = registry.run_for(tcfg)
    if not run.is_complete:
        log(f"the student needs teacher {run.id} (L_t = {tcfg.optics.n_masks}), which is not in the registry "
            f"yet: training it first")
    return get_or_train(tcfg, registry=registry, device=device, log=log, progress=progress)


def get_or_train(cfg: Config, *, registry: Registry, teacher_run: str | None = None,
                 device: torch.device | None = None, progress: bool = True,
                 log: Callable[[str], None] = print,
                 data: Splits | None = None) -> Run:
    """Return the complete run of ``cfg``: from the registry, resumed from its checkpoint, or trained now.

    Exactly one process trains a run: the others wait on its lock (``prkd.registry.locks``, with a message)
    and then load it; a lock left by a killed process is broken and its checkpoint resumed. Every step is
    recorded in the run's ``events.jsonl``.

    Args:
        cfg: the experiment (``cfg.train.mode`` picks the configuration).
        registry: where runs live (``prkd.open_registry``).
        teacher_run: mode ``student`` only: an explicit teacher run id instead of the one ``cfg`` implies.
        device: default ``prkd.default_device()``.
        progress: show tqdm bars (epochs with loss and validation PSNR; steps within an epoch).
        log: where messages go.
        data: preloaded splits (default: loaded from ``cfg.data``).
    Raises:
        ConfigError: a teacher that does not fit the student.
        RunNotFoundError: an explicit teacher run id that does not exist.
        DamagedRunError: the run's folder is damaged (named; nothing is deleted).
        TrainingInterrupted: Ctrl-C; the checkpoint is saved, and the same call resumes.
    """
    device = device or default_device()
    resolve_arithmetic(cfg.net.precision, device)  # refuses an emulated bfloat16 before any file is written
    mode = cfg.train.mode
    if teacher_run is not None and mode != "student":
        raise ConfigError(f"teacher_run applies only to mode 'student'; got mode {mode!r}")
    teacher = _resolve_teacher(cfg, registry, teacher_run, device, log,
                               progress) if mode == "student" else None
    run = registry.check(registry.run_for(cfg, teacher.id if teacher else None))
    if _is_done(run, log):
        return run
    with registry.lock(run).acquire(log=log) as lock:
        if lock.recovered is not None:
            events.record(run.path, "recovered", holder=lock.recovered.describe())
        if lock.waited_for is not None:
            registry.check(run)
            events.record(run.path, "waited", holder=lock.waited_for.describe(),
                          outcome="loaded" if run.is_complete else "took over")
        if _is_done(run, log):
            return run
        if not run.config_file.is_file():
            atomic.write_json(run.config_file, {"config": cfg.to_dict(), "run_id": run.id,
                                                "teacher_run": teacher.id if teacher else None})
        data = data or load_splits(cfg.data)
        probe, start = _optics_probe(cfg, registry, teacher, device, data)  # outside the run's memory
        # the teacher, model, optimiser, caches, steps
        with _outcome_recorded(run), PeakMemory(device) as memory:
            _train(run, cfg, teacher.load_system(device) if teacher else None, device=device,
                   progress=progress, log=log, data=data, memory=memory, probe=probe, start=start)
    return run


def _write_history(run: Run, history: list[dict]) -> None:
    lines = [",".join(HISTORY_COLUMNS)]
    for row in history:
        lines.append(",".join("" if row.get(c) is None else repr(row[c]) for c in HISTORY_COLUMNS))
    atomic.write_text(run.history_file, "\n".join(lines) + "\n")


def _start_or_resume(run: Run, setup, log: Callable[[str], None]) -> Position:
    """The position of the run's checkpoint (loaded into ``setup``), or a fresh start; recorded either way."""
    atomic.remove_stale(run.path)  # half-written temporary files of a killed process
    if not run.checkpoint_file.is_file():
        events.record(run.path, "started", device=device_name(setup.device),
                      arithmetic=setup.system.arithmetic(setup.device))
        return Position()
    at = resume(setup, load_checkpoint(run.checkpoint_file, setup.device))
    _write_history(run, at.history)  # a process killed between checkpoint and history leaves it behind
    log(f"resuming run {run.id} at epoch {at.epoch + 1}, step {at.step + 1} of {setup.steps}")
    events.record(run.path, "resumed", epoch=at.epoch + 1, step=at.step + 1)
    return at


def _train(run: Run, cfg: Config, teacher: PRSystem | None, *, device: torch.device, progress: bool,
           log: Callable[[str], None], data: Splits, memory: PeakMemory, probe: OpticsProbe,
           start: dict) -> None:
    """Train ``run`` from its checkpoint (or from scratch) to the end and test it (``prkd.learning.loop``),
    writing as it goes: a checkpoint and ``history.csv`` after each epoch, a checkpoint on Ctrl-C, then
    ``model.pt`` and ``metrics.json``, which completes the run."""
    setup = new_fit(cfg, teacher, device=device, data=data)
    # the fresh system, before any resume
    kd_start = kd_terms_at_start(setup) if setup.targets is not None else {}
    at = _start_or_resume(run, setup, log)
    with closing(fit(setup, at, data=data, probe=probe, progress=progress, desc=run.id)) as positions:
        for at in positions:
            atomic.torch_save(run.checkpoint_file, {**checkpoint(setup, at), "run_id": run.id})
            if at.interrupted:
                raise TrainingInterrupted(
                    f"training of run {run.id} interrupted at epoch {at.epoch + 1}, step {at.step} of "
                    f"{setup.steps}; checkpoint saved in {run.checkpoint_file}. Run the same command (or "
                    "call) again to resume.")
            _write_history(run, at.history)
    metrics = final_metrics(setup, at, start, kd_start, data=data, memory=memory)
    atomic.torch_save(run.model_file, {"config": cfg.to_dict(), "state_dict": setup.system.state_dict()})
    atomic.write_json(run.metrics_file, {**metrics, "run_id": run.id})
    run.checkpoint_file.unlink(missing_ok=True)
    events.record(run.path, "completed", test_psnr=round(metrics["test_psnr"], 4))
    drift = metrics["mask_drift_rad"]
    log(f"run {run.id}: test PSNR {metrics['test_psnr']:.2f} dB, SSIM {metrics['test_ssim']:.3f}, mask drift "
        f"{drift:.3f} rad ({run.path})")
    if cfg.train.mode != "random" and drift < LOW_DRIFT_RAD:
        log(f"run {run.id}: its masks moved only {drift:.3f} rad on average (< {LOW_DRIFT_RAD} rad): the "
            "optics barely trained, so this run compares U-Nets more than masks (raise mask_lr or epochs)")


def _is_done(run: Run, log: Callable[[str], None]) -> bool:
    """True for a complete run (said in ``log``); RunFailedError for a failed one; False otherwise."""
    if run.is_failed:
        f = run.failure()
        raise RunFailedError(f"run {run.id} failed earlier: {f['message']} Its last good checkpoint is kept "
                             f"in {run.path}; change the config (e.g. a lower lr) for a new run, or delete "
                             f"{run.failure_file.name} to try this one again.")
    if run.is_complete:
        log(f"run {run.id} is complete: taken from the registry ({run.path})")
        return True
    return False


@contextmanager
def _outcome_recorded(run: Run) -> Iterator[None]:
    """Record how training stopped when it did not complete: a divergence marks the run failed
    (``failed.json``, with the step and terms) and raises it again naming the run; an interrupt or any other
    error is recorded in ``events.jsonl``."""
    try:
        yield
    except TrainingDiverged as err:
        message = str(err)
        atomic.write_json(run.failure_file, {"epoch": err.epoch, "step": err.step, "terms": err.terms,
                                             "message": message})
        events.record(run.path, "failed", message=message)
        raise TrainingDiverged(f"training of run {run.id} stopped: {message} The run is marked failed; its "
                               f"last good checkpoint is kept in {run.path}.", epoch=err.epoch, step=err.step,
                               terms=tuple(err.terms)) from None
    except KeyboardInterrupt as err:  # TrainingInterrupted too
        events.record(run.path, "interrupted", message=str(err) or "KeyboardInterrupt")
        raise
    except BaseException as err:
        events.record(run.path, "aborted", error=f"{type(err).__name__}: {err}"[:500])
        raise


def _optics_probe(cfg: Config, registry: Registry, teacher: Run | None, device: torch.device, data: Splits
                  ) -> tuple[OpticsProbe, dict]:
    """The run's diagnostics probe (``prkd.learning.diagnostics``) and its values before training (a fresh
    system redrawn from the seed). L_cdp is measured against the student's teacher or, for the E2E and random
    baselines, the teacher their student would have if that run is complete now (blank otherwise); it is
    loaded, used and freed here, so it never counts in the run's peak memory."""
    if teacher is None and cfg.train.mode != "teacher":
        candidate = registry.run_for(teacher_config(cfg))
        teacher = candidate if candidate.is_complete else None
    teacher_system = teacher.load_system(device) if teacher else None
    probe = OpticsProbe(to_device(data.val, device), image_size=cfg.data.image_size, teacher=teacher_system)
    del teacher_system
    start = probe(PRSystem(cfg, trainable_optics=cfg.train.mode != "random").to(device), seed=cfg.train.seed)
    return probe, start
