"""The training loop of one run, top to bottom, writing no files:

1. ``train_step`` -- one optimisation step of Eq. (4) (no teacher) or Eq. (7) (with the teacher's targets);
2. ``StepLog`` -- the steps' loss terms read from the device in batches; it stops the run at the first
   non-finite loss (``TrainingDiverged``) before a checkpoint can be written from that step's weights;
3. ``new_fit`` / ``resume`` / ``checkpoint`` -- what a run trains (``Fit``), put back at a checkpoint, and
   what a checkpoint holds;
4. ``fit`` -- the epochs: yields the run's ``Position`` after each epoch, its history row (losses,
   validation, optics diagnostics) appended, and once more when Ctrl-C stops it mid-epoch.

``prkd.learning.train.get_or_train`` drives ``fit`` and alone writes a run's files (checkpoints, history,
events, ``failed.json``, the model and ``metrics.json``, whose numbers ``prkd.learning.run_metrics`` gives).
Every random choice (shuffling, noise) is drawn from a generator seeded by (seed, epoch, step), so a run
resumed from its checkpoint ends with the same weights and metrics as an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Iterator, NamedTuple

import torch
from tqdm.auto import tqdm

from prkd.config import Config
from prkd.data import Splits, to_images
from prkd.learning.diagnostics import DIAGNOSTICS, OpticsProbe
from prkd.learning.evaluation import evaluate
from prkd.learning.objectives import cdp_loss, feature_loss, objective, task_loss
from prkd.learning.optimizer import build_optimizer, schedule_learning_rates
from prkd.learning.teacher_targets import TeacherTargets
from prkd.physics.system import PRSystem
from prkd.utils.arithmetic import ArithmeticMismatch
from prkd.utils.device import to_device
from prkd.utils.interrupts import InterruptFlag
from prkd.utils.seeding import seeded_generator

__all__ = ["FIRST_STEP", "HISTORY_COLUMNS", "SYNC_EVERY", "Fit", "Position", "StepKey", "StepLog",
           "TrainingDiverged", "TrainingInterrupted", "checkpoint", "epoch_order", "fit", "new_fit", "resume",
           "train_step"]

#: On a GPU, the loop reads the loss terms (one host synchronisation) once per this many steps.
SYNC_EVERY = 25
HISTORY_COLUMNS = ["epoch", "loss", "task", "penalty", "cdp", "feat", "val_psnr", "val_ssim",
                   *DIAGNOSTICS, "seconds"]


class StepKey(NamedTuple):
    """Which step this is: seeds the step's sensor noise (and the teacher's), so a resumed run draws the
    same."""

    seed: int
    epoch: int
    step: int


#: The key of a run's first step with seed 0 (what a single step outside a run, e.g. a benchmark, uses).
FIRST_STEP = StepKey(seed=0, epoch=0, step=0)


class TrainingDiverged(FloatingPointError):
    """A loss became NaN or infinite at ``epoch``, ``step`` (1-based) in ``terms``; ``get_or_train`` marks the
    run failed (``failed.json``) and keeps its last good checkpoint."""

    def __init__(self, message: str, *, epoch: int = 0, step: int = 0, terms: tuple[str, ...] = ()):
        super().__init__(message)
        self.epoch, self.step, self.terms = epoch, step, list(terms)


class TrainingInterrupted(KeyboardInterrupt):
    """Training was stopped by Ctrl-C / a kernel interrupt after saving a checkpoint; the message says how to
    resume."""


def train_step(system: PRSystem, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               index: torch.Tensor, *,
               targets: TeacherTargets | None = None, key: StepKey = FIRST_STEP) -> dict[str, torch.Tensor]:
    """One optimisation step of Eq. (4) (no teacher) or Eq. (7) (with the teacher's ``targets``).

    Args:
        system: the system being trained (its config gives alpha, beta and rho).
        images: uint8 training images (n, 28, 28) on the training device; ``index`` picks the batch.
        key: the step's (seed, epoch, step): seeds the sensor noise, drawn on the images' device.
    Returns:
        each unweighted term and the weighted total (key ``"loss"``) as detached 0-d tensors on the device:
        the step never waits for the device (the caller reads the values in batches, ``StepLog``).
    """
    t = system.cfg.train
    img = to_images(images[index], system.cfg.data.image_size)
    out = system(img, generator=seeded_generator(*key, "noise", device=img.device))
    cdp = feat = None
    if targets is not None:
        teacher_noise = seeded_generator(*key, "teacher-noise", device=img.device)
        mean_cdp, features = targets(index, img, generator=teacher_noise)
        cdp = cdp_loss(mean_cdp, out.y, t.cdp_loss, targets.cdp_scale)
        feat = feature_loss(features, out.features)
    loss, terms = objective(task=task_loss(out.x_hat, img), penalty=system.mask_penalty(),
                            alpha=t.alpha, beta=t.beta, cdp=cdp, feat=feat)
    terms["loss"] = loss.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return terms


class StepLog:
    """The steps' loss terms, read from the device in batches (one host synchronisation per ``every`` steps;
    on a CPU ``every`` is 1, since reading a value costs nothing there), added to the epoch's ``sums``.

    ``flush`` raises ``TrainingDiverged`` at the first step whose loss is not finite, naming the step and the
    non-finite terms."""

    NAMES = {"task": "L_task", "penalty": "rho R(phi)", "cdp": "L_cdp", "feat": "L_feat"}

    def __init__(self, sums: dict[str, float], every: int):
        self.sums, self.every = sums, every
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
            if not math.isfinite(terms["loss"]):
                bad = [self.NAMES[k] for k, v in terms.items() if k in self.NAMES and not math.isfinite(v)]
                bad = bad or ["the total"]
                raise TrainingDiverged(f"the loss became {terms['loss']} at epoch {epoch + 1}, step "
                                       f"{step + 1} (non-finite term: {', '.join(bad)}).",
                                       epoch=epoch + 1, step=step + 1, terms=tuple(bad))
            for k, v in terms.items():
                self.sums[k] = self.sums.get(k, 0.0) + v
            self.last = terms


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
class Fit:
    """What one run's loop works with: the system, its optimiser, the training images on the device, the
    teacher's targets (a student), the batch size and the steps per epoch."""

    cfg: Config
    system: PRSystem
    optimizer: torch.optim.Optimizer
    images: torch.Tensor
    targets: TeacherTargets | None
    batch: int
    steps: int
    device: torch.device


def new_fit(cfg: Config, teacher: PRSystem | None, *, device: torch.device, data: Splits) -> Fit:
    """A fresh system of ``cfg`` on ``device`` with its optimiser, training images and (for a student) the
    teacher's targets; full batches only, so batch-norm never sees a batch of one."""
    t = cfg.train
    system = PRSystem(cfg, trainable_optics=t.mode != "random").to(device)
    images = to_device(data.train, device)
    targets = TeacherTargets(teacher, images, device=device) if teacher is not None else None
    return Fit(cfg, system, build_optimizer(system, t), images, targets, min(t.batch_size, len(images)),
               cfg.epoch_steps, device)


def checkpoint(run: Fit, at: Position) -> dict:
    """What a checkpoint at ``at`` holds: the weights, the optimiser, the position and the arithmetic the
    recovery network trained in (``prkd.utils.arithmetic``)."""
    return {"model": run.system.state_dict(), "optimizer": run.optimizer.state_dict(), "epoch": at.epoch,
            "step": at.step, "history": at.history, "sums": at.sums, "elapsed": at.elapsed,
            "arithmetic": run.system.arithmetic(run.device)}


def resume(run: Fit, state: dict) -> Position:
    """Load a checkpoint's weights and optimiser into ``run``; return its position.

    Raises:
        ArithmeticMismatch: the checkpoint was trained in another arithmetic than ``run`` resolves to here
            (e.g. precision "auto" trained on CUDA in bfloat16, resumed on a CPU in float32). A checkpoint
            written before the arithmetic was recorded resolved "auto" and "float32" as today.
    """
    trained, here = state.get("arithmetic"), run.system.arithmetic(run.device)
    if trained is not None and trained != here:
        raise ArithmeticMismatch(
            f"the checkpoint was trained in {trained}, but precision {run.cfg.net.precision!r} resolves to "
            f"{here} on {run.device.type}: a run is never resumed in another arithmetic. Resume it where it "
            f"resolves to {trained}, or delete its checkpoint to train it again from the start.")
    run.system.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    return Position(state["epoch"], state["step"], state["history"], state["sums"], state["elapsed"])


def epoch_order(run: Fit, epoch: int) -> torch.Tensor:
    """The order in which epoch ``epoch`` draws the training images (seeded by the run's seed and the
    epoch)."""
    generator = seeded_generator(run.cfg.train.seed, "shuffle", epoch)
    return torch.randperm(len(run.images), generator=generator).to(run.device)


def _train_epoch(run: Fit, at: Position, interrupt: InterruptFlag, progress: bool) -> float:
    """Steps ``at.step`` .. the end of epoch ``at.epoch``; returns when it started (``perf_counter``). On an
    interrupt it stops after the current step with ``at.interrupted`` set (the caller saves a checkpoint)."""
    started = time.perf_counter()
    order = epoch_order(run, at.epoch)
    bar = tqdm(range(at.step, run.steps), desc=f"epoch {at.epoch + 1}", unit="step", leave=False,
               disable=not progress)
    log_steps = StepLog(at.sums, every=1 if run.device.type == "cpu" else SYNC_EVERY)
    for step in bar:
        index = order[step * run.batch:(step + 1) * run.batch]
        schedule_learning_rates(run.optimizer, run.cfg, at.epoch * run.steps + step)
        terms = train_step(run.system, run.optimizer, run.images, index, targets=run.targets,
                           key=StepKey(run.cfg.train.seed, at.epoch, step))
        if log_steps.add(at.epoch, step, terms):
            bar.set_postfix(loss=f"{log_steps.last['loss']:.4g}")
        if interrupt.raised:
            log_steps.flush()
            at.step, at.elapsed, at.interrupted = step + 1, at.elapsed + time.perf_counter() - started, True
            break
    log_steps.flush()
    bar.close()
    return started


def fit(run: Fit, at: Position, *, data: Splits, probe: OpticsProbe, progress: bool,
        desc: str) -> Iterator[Position]:
    """Train from ``at`` to the last epoch, yielding the position after each epoch (its history row --
    the epoch's mean loss terms, validation and the optics diagnostics -- appended) and, when Ctrl-C stops
    it mid-epoch, once more with ``interrupted`` set, after which it ends. Writes nothing."""
    t = run.cfg.train
    epochs_bar = tqdm(range(t.epochs), initial=at.epoch, desc=desc, unit="epoch", disable=not progress)
    if at.history:
        epochs_bar.set_postfix(loss=at.history[-1]["loss"], val_psnr=at.history[-1]["val_psnr"])
    with InterruptFlag() as interrupt:
        try:
            while at.epoch < t.epochs:
                run.system.train()
                started = _train_epoch(run, at, interrupt, progress)
                if at.interrupted:
                    yield at
                    return
                val = evaluate(run.system, data.val, batch_size=max(run.batch, 256), seed=t.seed,
                               device=run.device)
                at.elapsed += time.perf_counter() - started
                at.history.append({"epoch": at.epoch + 1, **{k: v / run.steps for k, v in at.sums.items()},
                                   "val_psnr": val["psnr"], "val_ssim": val["ssim"],
                                   **probe(run.system, seed=t.seed), "seconds": at.elapsed})
                at.epoch, at.step, at.sums = at.epoch + 1, 0, {}
                yield at
                epochs_bar.update(1)
                epochs_bar.set_postfix(loss=f"{at.history[-1]['loss']:.4g}", val_psnr=f"{val['psnr']:.2f}")
        finally:
            epochs_bar.close()
