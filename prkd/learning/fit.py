"""The loop of one run, which writes no files: ``new_fit`` builds what a run trains, ``resume`` puts it back
at a checkpoint, ``epochs`` yields the run's position after each epoch (its history row appended) and once
more when Ctrl-C stops it mid-epoch, ``checkpoint`` is what a checkpoint holds and ``final_metrics`` what
``metrics.json`` does. ``prkd.learning.train.get_or_train`` writes all of them.

Every random choice (shuffling, noise) is drawn from a generator seeded by (seed, epoch, step), so a run
resumed from its checkpoint ends with the same weights and metrics as an uninterrupted one.
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch
from tqdm.auto import tqdm

from prkd.config import Config
from prkd.data import Splits, to_images
from prkd.learning.diagnostics import DIAGNOSTICS, OpticsProbe
from prkd.learning.evaluation import device_name, evaluate, final_test, inference_ms
from prkd.utils.seeding import seeded_generator
from prkd.learning.objectives import cdp_loss, normalized_cdp_scale, task_loss
from prkd.learning.step import SYNC_EVERY, StepKey, StepLog, train_step
from prkd.learning.teacher_targets import TeacherTargets
from prkd.physics.system import PRSystem
from prkd.utils.device import to_device
from prkd.utils.memory import PeakMemory

__all__ = ["HISTORY_COLUMNS", "Position", "TrainingInterrupted", "build_optimizer", "checkpoint", "epochs",
           "final_metrics", "kd_terms_at_start", "new_fit", "resume", "schedule_learning_rates"]

HISTORY_COLUMNS = ["epoch", "loss", "task", "penalty", "cdp", "feat", "val_psnr", "val_ssim",
                   *DIAGNOSTICS, "seconds"]


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C / a kernel interrupt after saving a checkpoint; the message says how to
    resume."""


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


@dataclass
class Position:
    """Where a run's training stands; what its checkpoint holds besides the weights and the optimiser.
    ``interrupted``: Ctrl-C stopped it after step ``step`` of epoch ``epoch``."""

    epoch: int = 0
    step: int = 0
    history: list[dict] = field(default_factory=list)
    sums: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    interrupted: bool = False


@dataclass
class _Fit:
    """What one run's loop works with."""

    cfg: Config
    system: PRSystem
    optimizer: torch.optim.Optimizer
    images: torch.Tensor
    targets: TeacherTargets | None
    batch: int
    steps: int
    device: torch.device


def build_optimizer(system: PRSystem, t) -> torch.optim.Adam:
    """Adam with the learning rates of the masks phi (mask_lr), the filter psi (filter_lr) and the U-Net
    (lr)."""
    groups = [(list(system.sensing.parameters()), t.mask_lr), (list(system.init.parameters()), t.filter_lr),
              (list(system.unet.parameters()), t.lr)]
    groups = [{"params": [p for p in params if p.requires_grad], "lr": lr, "base_lr": lr}
              for params, lr in groups]
    return torch.optim.Adam([g for g in groups if g["params"]])


def schedule_learning_rates(optimizer: torch.optim.Optimizer, cfg: Config, step: int) -> None:
    """Set every group's rate for the run's ``step``-th step (0-based): ``lr_schedule`` 'constant' leaves the
    rates alone; 'cosine' gives base_lr * (1 + cos(pi * step / total_steps)) / 2, every group alike."""
    if cfg.train.lr_schedule == "constant":
        return
    factor = 0.5 * (1.0 + math.cos(math.pi * step / cfg.total_steps))
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor


def _epoch_order(fit: _Fit, epoch: int) -> torch.Tensor:
    """The order in which epoch ``epoch`` draws the training images (seeded by the run's seed and the
    epoch)."""
    generator = seeded_generator(fit.cfg.train.seed, "shuffle", epoch)
    return torch.randperm(len(fit.images), generator=generator).to(fit.device)


def _train_epoch(fit: _Fit, at: Position, interrupt: _InterruptFlag, progress: bool) -> float:
    """Steps ``at.step`` .. the end of epoch ``at.epoch``; returns when it started (``perf_counter``). On an
    interrupt it stops after the current step with ``at.interrupted`` set (the caller saves a checkpoint)."""
    t = fit.cfg.train
    started = time.perf_counter()
    perm = _epoch_order(fit, at.epoch)
    bar = tqdm(range(at.step, fit.steps), desc=f"epoch {at.epoch + 1}", unit="step", leave=False,
               disable=not progress)
    log_steps = StepLog(at.sums, every=1 if fit.device.type == "cpu" else SYNC_EVERY)
    for step in bar:
        index = perm[step * fit.batch:(step + 1) * fit.batch]
        schedule_learning_rates(fit.optimizer, fit.cfg, at.epoch * fit.steps + step)
        terms = train_step(fit.system, fit.optimizer, fit.images, index, targets=fit.targets,
                           key=StepKey(t.seed, at.epoch, step))
        if log_steps.add(at.epoch, step, terms):
            bar.set_postfix(loss=f"{log_steps.last['loss']:.4g}")
        if interrupt.raised:
            log_steps.flush()
            at.step, at.elapsed, at.interrupted = step + 1, at.elapsed + time.perf_counter() - started, True
            break
    log_steps.flush()
    bar.close()
    return started


def new_fit(cfg: Config, teacher: PRSystem | None, *, device: torch.device, data: Splits) -> _Fit:
    """A fresh system of ``cfg`` on ``device`` with its optimiser, training images and (for a student) the
    teacher's targets; full batches only, so batch-norm never sees a batch of one."""
    t = cfg.train
    system = PRSystem(cfg, trainable_optics=t.mode != "random").to(device)
    images = to_device(data.train, device)
    targets = TeacherTargets(teacher, images, device=device) if teacher is not None else None
    return _Fit(cfg, system, build_optimizer(system, t), images, targets, min(t.batch_size, len(images)),
                cfg.epoch_steps, device)


def checkpoint(fit: _Fit, at: Position) -> dict:
    """What a checkpoint at ``at`` holds: the weights, the optimiser and the position."""
    return {"model": fit.system.state_dict(), "optimizer": fit.optimizer.state_dict(), "epoch": at.epoch,
            "step": at.step, "history": at.history, "sums": at.sums, "elapsed": at.elapsed}


def resume(fit: _Fit, state: dict) -> Position:
    """Load a checkpoint's weights and optimiser into ``fit``; return its position."""
    fit.system.load_state_dict(state["model"])
    fit.optimizer.load_state_dict(state["optimizer"])
    return Position(state["epoch"], state["step"], state["history"], state["sums"], state["elapsed"])


def epochs(fit: _Fit, at: Position, *, data: Splits, probe: OpticsProbe, progress: bool,
           desc: str) -> Iterator[Position]:
    """Train from ``at`` to the last epoch, yielding the position after each epoch (validation and the optics
    diagnostics appended to its history) and, when Ctrl-C stops it mid-epoch, once more with ``interrupted``
    set, after which it ends. Writes nothing."""
    t = fit.cfg.train
    epochs_bar = tqdm(range(t.epochs), initial=at.epoch, desc=desc, unit="epoch", disable=not progress)
    if at.history:
        epochs_bar.set_postfix(loss=at.history[-1]["loss"], val_psnr=at.history[-1]["val_psnr"])
    with _InterruptFlag() as interrupt:
        try:
            while at.epoch < t.epochs:
                fit.system.train()
                started = _train_epoch(fit, at, interrupt, progress)
                if at.interrupted:
                    yield at
                    return
                val = evaluate(fit.system, data.val, batch_size=max(fit.batch, 256), seed=t.seed,
                               device=fit.device)
                at.elapsed += time.perf_counter() - started
                at.history.append({"epoch": at.epoch + 1, **{k: v / fit.steps for k, v in at.sums.items()},
                                   "val_psnr": val["psnr"], "val_ssim": val["ssim"],
                                   **probe(fit.system, seed=t.seed), "seconds": at.elapsed})
                at.epoch, at.step, at.sums = at.epoch + 1, 0, {}
                yield at
                epochs_bar.update(1)
                epochs_bar.set_postfix(loss=f"{at.history[-1]['loss']:.4g}", val_psnr=f"{val['psnr']:.2f}")
        finally:
            epochs_bar.close()


def kd_terms_at_start(fit: _Fit) -> dict[str, float]:
    """L_task and L_cdp (paper form) of the untrained student on its first training batch, exactly as step 0
    sees them (a copy of the fresh system in train mode, step 0's noise); sets the ``"normalized"`` L_cdp's
    scale on
    ``fit.targets``. Returns ``task_start``, ``cdp_paper_start`` and ``kd_ratio_start``: beta L_cdp / (alpha
    L_task) at step 0 in the run's own form of L_cdp."""
    t = fit.cfg.train
    index = _epoch_order(fit, 0)[:fit.batch]
    img = to_images(fit.images[index], fit.cfg.data.image_size)
    key = StepKey(t.seed, 0, 0)
    with torch.no_grad():
        noise = seeded_generator(*key, "noise", device=img.device)
        out = copy.deepcopy(fit.system).train()(img, generator=noise)
        teacher_noise = seeded_generator(*key, "teacher-noise", device=img.device)
        mean_cdp, _ = fit.targets(index, img, generator=teacher_noise)
        task, cdp = task_loss(out.x_hat, img).item(), cdp_loss(mean_cdp, out.y, "paper").item()
    if t.cdp_loss == "normalized":
        fit.targets.cdp_scale = normalized_cdp_scale(task, cdp)
    own = cdp * fit.targets.cdp_scale if t.cdp_loss != "standardized" else None
    ratio = t.beta * own / (t.alpha * task) if own is not None and t.alpha > 0 else None
    return {"task_start": task, "cdp_paper_start": cdp, "kd_ratio_start": ratio,
            "cdp_scale": fit.targets.cdp_scale}


def _kd_ratio_end(cfg: Config, last: dict) -> float | None:
    """beta L_cdp / (alpha L_task) over the last epoch's steps (the run's own form of L_cdp), or None."""
    t = cfg.train
    if t.mode != "student" or t.alpha == 0 or last.get("cdp") is None or not last.get("task"):
        return None
    return t.beta * last["cdp"] / (t.alpha * last["task"])


def final_metrics(fit: _Fit, at: Position, start: dict, kd_start: dict, *, data: Splits,
                  memory: PeakMemory) -> dict:
    """The test of the trained system and everything ``metrics.json`` records of the run (without its id)."""
    cfg, system, device = fit.cfg, fit.system, fit.device
    t = cfg.train
    test = final_test(system, data.test, device=device)
    peak = memory.mb()
    inference = inference_ms(system, data.test, fit.batch, device)
    last = at.history[-1]
    kd = {**kd_start, "kd_ratio_end": _kd_ratio_end(cfg, last)} if kd_start else {}
    optics = {**kd, **{f"{k}_start": v for k, v in start.items() if k != "mask_drift"},
              **{f"{k}_end": v for k, v in last.items() if k in DIAGNOSTICS and k != "mask_drift"},
              "mask_drift_rad": last["mask_drift"]}
    return {
        **optics, "test_psnr": test["psnr"], "test_ssim": test["ssim"], "n_test": len(data.test),
        "test_psnr_per_image": [round(v, 4) for v in test["psnr_per_image"]],
        "test_ssim_per_image": [round(v, 5) for v in test["ssim_per_image"]],
        "val_psnr": last["val_psnr"], "val_ssim": last["val_ssim"], "train_seconds": at.elapsed,
        "epochs": t.epochs, "steps": cfg.total_steps,
        "images_per_second": t.epochs * fit.steps * fit.batch / max(at.elapsed, 1e-9), "peak_memory_mb": peak,
        "peak_memory_kind": memory.kind, "inference_ms_per_batch": inference, "inference_batch": fit.batch,
        "device": device_name(device), "torch": torch.__version__}
