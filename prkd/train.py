"""One training entry point for the four configurations of Section 4.1, through the run registry.

* ``teacher`` -- E2E, Eq. (4), L_t snapshots; phi, psi, theta trained.
* ``e2e``     -- the E2E baseline: the same with L = 1.
* ``random``  -- Eq. (4) with phi and psi frozen at their random initialisation; theta trained.
* ``student`` -- KD, Eq. (7); all trained; the teacher (``teacher_masks`` snapshots, ``teacher_seed``) is
  loaded from its finished run -- trained first if the registry lacks it -- and kept frozen.

``get_or_train(cfg)`` returns a complete :class:`~prkd.runs.Run`: an existing complete run as it is, an
interrupted one resumed from its checkpoint, or a new one trained from scratch. Every random choice
(shuffling, noise) is drawn from a generator seeded by (seed, epoch, step), so a resumed run ends with the
same weights and metrics as an uninterrupted one.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

from . import atomic
from .config import Config, ConfigError, make
from .data import Splits, load_splits, to_images
from .device import default_device, to_device
from .diagnostics import DIAGNOSTICS, LOW_DRIFT_RAD, OpticsProbe
from .evaluation import device_name, evaluate, inference_ms, seeded_generator as _generator
from .distill import TeacherTargets
from .memory import PeakMemory
from .losses import cdp_loss, feature_loss, objective, task_loss
from .registry import Registry, Run, RunNotFoundError, events, load_checkpoint
from .system import PRSystem

__all__ = ["TrainingInterrupted", "TrainingDiverged", "RunFailedError", "teacher_config", "check_teacher_fits",
           "get_or_train", "evaluate", "train_step", "STUDENT_ALPHA", "STUDENT_BETA"]

#: Default KD weights of a student (the paper does not state its alpha and beta); sigma = 1 - alpha - beta.
STUDENT_ALPHA, STUDENT_BETA = 0.5, 0.25

#: On a GPU, the loop reads the loss terms (one host synchronisation) once per this many steps.
_SYNC_EVERY = 25
_HISTORY_COLUMNS = ["epoch", "loss", "task", "penalty", "cdp", "feat", "val_psnr", "val_ssim", *DIAGNOSTICS,
                    "seconds"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C / a kernel interrupt after saving a checkpoint; the message says how to resume."""


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite; the run is marked failed and its last good checkpoint kept."""


class RunFailedError(RuntimeError):
    """The run failed earlier (see its failed.json); it is not trained again automatically."""


def teacher_config(cfg: Config) -> Config:
    """The config of a student's teacher: same data, optics noise, initialization, U-Net and optimisation,
    with ``teacher_masks`` snapshots, seed ``teacher_seed``, mode ``teacher`` and the E2E objective."""
    d = cfg.to_dict()
    d["optics"]["n_masks"] = cfg.train.teacher_masks
    d["train"].update(mode="teacher", seed=cfg.train.teacher_seed, alpha=1.0, beta=0.0, cdp_loss="paper")
    flat = {k: v for section in ("data", "optics", "init", "net", "train") for k, v in d[section].items()}
    return make(cfg.preset, **flat)


def check_teacher_fits(student: Config, teacher: Config, teacher_id: str) -> None:
    """Raise ConfigError unless run ``teacher_id`` (config ``teacher``) is a teacher that ``student`` can distil from."""
    if teacher.train.mode != "teacher":
        raise ConfigError(f"run '{teacher_id}' is a {teacher.train.mode!r} run, not a teacher")
    for section, name in (("data", "image_size"), ("data", "pad_factor"), ("data", "phase_range"),
                          ("net", "unet_depth"), ("net", "unet_width")):
        s, t = getattr(getattr(student, section), name), getattr(getattr(teacher, section), name)
        if s != t:
            raise ConfigError(f"teacher run '{teacher_id}' has {name}={t!r} but the student has {name}={s!r}; "
                              f"the student must share the teacher's image size and U-Net")


def _resolve_teacher(cfg: Config, registry: Registry, teacher_run: str | None, device: torch.device,
                     log: Callable[[str], None], progress: bool) -> Run:
    if teacher_run is not None:
        run = registry.find(teacher_run)
        check_teacher_fits(cfg, run.config(), run.id)
        if not run.is_complete:
            raise RunNotFoundError(f"teacher run '{teacher_run}' is not complete; train it (or resume it) first")
        return run
    tcfg = teacher_config(cfg)
    run = registry.run_for(tcfg)
    if not run.is_complete:
        log(f"the student needs teacher {run.id} (L_t = {tcfg.optics.n_masks}), which is not in the registry "
            f"yet: training it first")
    return get_or_train(tcfg, registry=registry, device=device, log=log, progress=progress)


class _InterruptFlag:
    """Turns SIGINT into a flag checked between steps, so an interrupt never lands mid-update."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def _write_history(run: Run, history: list[dict]) -> None:
    lines = [",".join(_HISTORY_COLUMNS)]
    for row in history:
        lines.append(",".join("" if row.get(c) is None else repr(row[c]) for c in _HISTORY_COLUMNS))
    atomic.write_text(run.history_file, "\n".join(lines) + "\n")


def train_step(system: PRSystem, optimizer: torch.optim.Optimizer, images: torch.Tensor, index: torch.Tensor, *,
               targets: TeacherTargets | None = None, noise: tuple = (0, 0, 0)) -> dict[str, torch.Tensor]:
    """One optimisation step of Eq. (4) (no teacher) or Eq. (7) (with the teacher's ``targets``).

    Args:
        system: the system being trained (its config gives alpha, beta and rho).
        images: uint8 training images (n, 28, 28) on the training device; ``index`` picks the batch.
        noise: (seed, epoch, step): seeds the sensor noise of this step (and the teacher's, if it runs).
    Returns:
        each unweighted term and the weighted total (key ``"loss"``) as detached 0-d tensors on the device:
        the step never waits for the device (the caller reads the values in batches, ``_StepLog``).
    """
    t = system.cfg.train
    img = to_images(images[index], system.cfg.data.image_size)
    out = system(img, generator=_generator(*noise, "noise"))
    cdp = feat = None
    if targets is not None:
        mean_cdp, features = targets(index, img, generator=_generator(*noise, "teacher-noise"))
        cdp, feat = cdp_loss(mean_cdp, out.y, t.cdp_loss), feature_loss(features, out.features)
    loss, terms = objective(task=task_loss(out.x_hat, img), penalty=system.mask_penalty(),
                            alpha=t.alpha, beta=t.beta, cdp=cdp, feat=feat)
    terms["loss"] = loss.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return terms


class _StepLog:
    """The steps' loss terms, read from the device in batches (one host synchronisation per ``every`` steps).

    ``flush`` stops the run (``_stop_if_not_finite``) at the first step whose loss is not finite, before any
    checkpoint can be written from the weights that step produced, and otherwise adds the steps to the
    epoch's sums. On a CPU ``every`` is 1: reading a value costs nothing there.
    """

    def __init__(self, run: Run, sums: dict[str, float], every: int):
        self.run, self.sums, self.every = run, sums, every
        self.pending: list[tuple[int, int, dict[str, torch.Tensor]]] = []
        self.last: dict[str, float] = {}

    def add(self, epoch: int, step: int, terms: dict[str, torch.Tensor]) -> bool:
        """Queue one step; True when the queue was flushed (so the progress bar can show the loss)."""
        self.pending.append((epoch, step, terms))
        if len(self.pending) < self.every:
            return False
        self.flush()
        return True

    def flush(self) -> None:
        if not self.pending:
            return
        keys = list(self.pending[0][2])
        values = torch.stack([torch.stack([terms[k] for k in keys]) for _, _, terms in self.pending]).tolist()
        pending, self.pending = self.pending, []
        for (epoch, step, _), row in zip(pending, values):
            terms = dict(zip(keys, row))
            _stop_if_not_finite(self.run, epoch, step, terms["loss"], terms)
            for k, v in terms.items():
                self.sums[k] = self.sums.get(k, 0.0) + v
            self.last = terms


def _stop_if_not_finite(run: Run, epoch: int, step: int, loss: float, terms: dict[str, float]) -> None:
    """Mark the run failed and raise TrainingDiverged, naming the non-finite terms, when ``loss`` is NaN or inf."""
    if math.isfinite(loss):
        return
    names = {"task": "L_task", "penalty": "rho R(phi)", "cdp": "L_cdp", "feat": "L_feat"}
    bad = [names[name] for name, value in terms.items() if name in names and not math.isfinite(value)] or ["the total"]
    message = f"the loss became {loss} at epoch {epoch + 1}, step {step + 1} (non-finite term: {', '.join(bad)})."
    atomic.write_json(run.failure_file, {"epoch": epoch + 1, "step": step + 1, "terms": bad, "message": message})
    events.record(run.path, "failed", message=message)
    raise TrainingDiverged(f"training of run {run.id} stopped: {message} The run is marked failed; its last "
                           f"good checkpoint is kept in {run.path}.")


def get_or_train(cfg: Config, *, registry: Registry, teacher_run: str | None = None,
                 device: torch.device | None = None, progress: bool = True, log: Callable[[str], None] = print,
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
    mode = cfg.train.mode
    if teacher_run is not None and mode != "student":
        raise ConfigError(f"teacher_run applies only to mode 'student'; got mode {mode!r}")
    teacher = _resolve_teacher(cfg, registry, teacher_run, device, log, progress) if mode == "student" else None
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
        with _outcome_recorded(run), PeakMemory(device) as memory:  # the teacher, model, optimiser, caches, steps
            _train(run, cfg, teacher.load_system(device) if teacher else None, device, progress, log, data, memory,
                   probe, start)
    return run


def _is_done(run: Run, log: Callable[[str], None]) -> bool:
    """True for a complete run (said in ``log``); RunFailedError for a failed one; False otherwise."""
    if run.is_failed:
        f = run.failure()
        raise RunFailedError(f"run {run.id} failed earlier: {f['message']} Its last good checkpoint is kept in "
                             f"{run.path}; change the config (e.g. a lower lr) for a new run, or delete "
                             f"{run.failure_file.name} to try this one again.")
    if run.is_complete:
        log(f"run {run.id} is complete: taken from the registry ({run.path})")
        return True
    return False


@contextmanager
def _outcome_recorded(run: Run) -> Iterator[None]:
    """Record in ``events.jsonl`` how training stopped when it did not complete (divergence records itself)."""
    try:
        yield
    except TrainingDiverged:
        raise
    except KeyboardInterrupt as err:  # TrainingInterrupted too
        events.record(run.path, "interrupted", message=str(err) or "KeyboardInterrupt")
        raise
    except BaseException as err:
        events.record(run.path, "aborted", error=f"{type(err).__name__}: {err}"[:500])
        raise


def _optics_probe(cfg: Config, registry: Registry, teacher: Run | None, device: torch.device, data: Splits
                  ) -> tuple[OpticsProbe, dict]:
    """The run's diagnostics probe (``prkd.diagnostics``) and its values before training (a fresh system redrawn
    from the seed). L_cdp is measured against the student's teacher or, for the E2E and random baselines, the
    teacher their student would have if that run is complete now (blank otherwise); it is loaded, used and freed
    here, so it never counts in the run's peak memory."""
    if teacher is None and cfg.train.mode != "teacher":
        candidate = registry.run_for(teacher_config(cfg))
        teacher = candidate if candidate.is_complete else None
    teacher_system = teacher.load_system(device) if teacher else None
    probe = OpticsProbe(to_device(data.val, device), image_size=cfg.data.image_size, teacher=teacher_system)
    del teacher_system
    start = probe(PRSystem(cfg, trainable_optics=cfg.train.mode != "random").to(device), seed=cfg.train.seed)
    return probe, start


def _optimizer(system: PRSystem, t) -> torch.optim.Adam:
    """Adam with the learning rates of the masks phi (mask_lr), the filter psi (filter_lr) and the U-Net (lr)."""
    groups = [(list(system.sensing.parameters()), t.mask_lr), (list(system.init.parameters()), t.filter_lr),
              (list(system.unet.parameters()), t.lr)]
    groups = [{"params": [p for p in params if p.requires_grad], "lr": lr} for params, lr in groups]
    return torch.optim.Adam([g for g in groups if g["params"]])


def _train(run: Run, cfg: Config, teacher: PRSystem | None, device: torch.device, progress: bool,
           log: Callable[[str], None], data: Splits, memory: PeakMemory, probe: OpticsProbe, start: dict) -> None:
    t = cfg.train
    system = PRSystem(cfg, trainable_optics=t.mode != "random").to(device)
    optimizer = _optimizer(system, t)
    train_images = to_device(data.train, device)
    targets = TeacherTargets(teacher, train_images, device=device) if teacher is not None else None
    n = len(train_images)
    batch = min(t.batch_size, n)
    steps = n // batch  # full batches only, so batch-norm never sees a batch of one
    epoch, step, history, sums, elapsed = 0, 0, [], {}, 0.0
    atomic.remove_stale(run.path)  # half-written temporary files of a killed process
    if run.checkpoint_file.is_file():
        state = load_checkpoint(run.checkpoint_file, device)
        system.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        epoch, step, history, sums, elapsed = (state["epoch"], state["step"], state["history"], state["sums"],
                                               state["elapsed"])
        _write_history(run, history)  # a process killed between checkpoint and history leaves it behind
        log(f"resuming run {run.id} at epoch {epoch + 1}, step {step + 1} of {steps}")
        events.record(run.path, "resumed", epoch=epoch + 1, step=step + 1)
    else:
        events.record(run.path, "started", device=device_name(device))

    def save_checkpoint() -> None:
        atomic.torch_save(run.checkpoint_file, {"model": system.state_dict(), "optimizer": optimizer.state_dict(),
                                                "epoch": epoch, "step": step, "history": history, "sums": sums,
                                                "elapsed": elapsed, "run_id": run.id})

    epochs_bar = tqdm(range(t.epochs), initial=epoch, desc=run.id, unit="epoch", disable=not progress)
    if history:
        epochs_bar.set_postfix(loss=history[-1]["loss"], val_psnr=history[-1]["val_psnr"])
    with _InterruptFlag() as interrupt:
        while epoch < t.epochs:
            system.train()
            started = time.perf_counter()
            perm = torch.randperm(n, generator=_generator(t.seed, "shuffle", epoch)).to(device)
            steps_bar = tqdm(range(step, steps), desc=f"epoch {epoch + 1}", unit="step", leave=False,
                             disable=not progress)
            log_steps = _StepLog(run, sums, every=1 if device.type == "cpu" else _SYNC_EVERY)
            for step in steps_bar:
                index = perm[step * batch:(step + 1) * batch]
                terms = train_step(system, optimizer, train_images, index, targets=targets,
                                   noise=(t.seed, epoch, step))
                if log_steps.add(epoch, step, terms):
                    steps_bar.set_postfix(loss=f"{log_steps.last['loss']:.4g}")
                if interrupt.raised:
                    log_steps.flush()
                    step += 1
                    elapsed += time.perf_counter() - started
                    save_checkpoint()
                    steps_bar.close()
                    epochs_bar.close()
                    raise TrainingInterrupted(
                        f"training of run {run.id} interrupted at epoch {epoch + 1}, step {step} of {steps}; "
                        f"checkpoint saved in {run.checkpoint_file}. Run the same command (or call) again to "
                        f"resume.")
            log_steps.flush()
            steps_bar.close()
            val = evaluate(system, data.val, batch_size=max(batch, 256), seed=t.seed, device=device)
            elapsed += time.perf_counter() - started
            row = {"epoch": epoch + 1, **{k: v / steps for k, v in sums.items()},
                   "val_psnr": val["psnr"], "val_ssim": val["ssim"], **probe(system, seed=t.seed),
                   "seconds": elapsed}
            history.append(row)
            epoch, step, sums = epoch + 1, 0, {}
            save_checkpoint()
            _write_history(run, history)
            epochs_bar.update(1)
            epochs_bar.set_postfix(loss=f"{row['loss']:.4g}", val_psnr=f"{row['val_psnr']:.2f}")
    epochs_bar.close()
    _finish(run, cfg, system, history, start, elapsed=elapsed, steps=steps, batch=batch, data=data, device=device,
            memory=memory, log=log)


def _finish(run: Run, cfg: Config, system: PRSystem, history: list[dict], start: dict, *, elapsed: float, steps: int,
            batch: int, data: Splits, device: torch.device, memory: PeakMemory, log: Callable[[str], None]) -> None:
    """Test the trained system, save it and write ``metrics.json`` (which completes the run); say if the masks
    barely moved."""
    t = cfg.train
    test = evaluate(system, data.test, batch_size=max(batch, 256), seed=t.seed + 1, device=device)
    peak = memory.mb()
    inference = inference_ms(system, data.test, batch, device)
    atomic.torch_save(run.model_file, {"config": cfg.to_dict(), "state_dict": system.state_dict()})
    optics = {**{f"{k}_start": v for k, v in start.items() if k != "mask_drift"},
              **{f"{k}_end": v for k, v in history[-1].items() if k in DIAGNOSTICS and k != "mask_drift"},
              "mask_drift_rad": history[-1]["mask_drift"]}
    atomic.write_json(run.metrics_file, {**optics,
        "test_psnr": test["psnr"], "test_ssim": test["ssim"], "n_test": len(data.test),
        "test_psnr_per_image": [round(v, 4) for v in test["psnr_per_image"]],
        "test_ssim_per_image": [round(v, 5) for v in test["ssim_per_image"]],
        "val_psnr": history[-1]["val_psnr"], "val_ssim": history[-1]["val_ssim"],
        "train_seconds": elapsed, "epochs": t.epochs, "images_per_second": t.epochs * steps * batch / max(elapsed, 1e-9),
        "peak_memory_mb": peak, "peak_memory_kind": memory.kind, "inference_ms_per_batch": inference,
        "inference_batch": batch, "device": device_name(device),
        "torch": torch.__version__, "run_id": run.id,
    })
    run.checkpoint_file.unlink(missing_ok=True)
    events.record(run.path, "completed", test_psnr=round(test["psnr"], 4))
    log(f"run {run.id}: test PSNR {test['psnr']:.2f} dB, SSIM {test['ssim']:.3f}, mask drift "
        f"{optics['mask_drift_rad']:.3f} rad ({run.path})")
    if t.mode != "random" and optics["mask_drift_rad"] < LOW_DRIFT_RAD:
        log(f"run {run.id}: its masks moved only {optics['mask_drift_rad']:.3f} rad on average (< {LOW_DRIFT_RAD} "
            f"rad): the optics barely trained, so this run compares U-Nets more than masks (raise mask_lr or epochs)")

