"""One optimisation step of Eq. (4) or Eq. (7), and the reading of its loss terms in batches, which stops a
run at the first non-finite loss."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from prkd.data import to_images
from prkd.utils.seeding import seeded_generator
from prkd.learning.objectives import cdp_loss, feature_loss, objective, task_loss
from prkd.learning.teacher_targets import TeacherTargets
from prkd.physics.system import PRSystem

__all__ = ["StepKey", "FIRST_STEP", "SYNC_EVERY", "TrainingDiverged", "train_step", "StepLog"]

#: On a GPU, the loop reads the loss terms (one host synchronisation) once per this many steps.
SYNC_EVERY = 25


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
        cdp, feat = cdp_loss(mean_cdp, out.y, t.cdp_loss,
                             targets.cdp_scale), feature_loss(features, out.features)
    loss, terms = objective(task=task_loss(out.x_hat, img), penalty=system.mask_penalty(),
                            alpha=t.alpha, beta=t.beta, cdp=cdp, feat=feat)
    terms["loss"] = loss.detach()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return terms


class StepLog:
    """The steps' loss terms, read from the device in batches (one host synchronisation per ``every`` steps).

    ``flush`` stops training (``stop_if_not_finite``) at the first step whose loss is not finite, before any
    checkpoint can be written from the weights that step produced, and otherwise adds the steps to the
    epoch's sums. On a CPU ``every`` is 1: reading a value costs nothing there. It writes no files.
    """

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
            stop_if_not_finite(epoch, step, terms["loss"], terms)
            for k, v in terms.items():
                self.sums[k] = self.sums.get(k, 0.0) + v
            self.last = terms


def stop_if_not_finite(epoch: int, step: int, loss: float, terms: dict[str, float]) -> None:
    """Raise TrainingDiverged, naming the step and the non-finite terms, when ``loss`` is NaN or inf."""
    if math.isfinite(loss):
        return
    names = {"task": "L_task", "penalty": "rho R(phi)", "cdp": "L_cdp", "feat": "L_feat"}
    bad = [names[name] for name, value in terms.items() if name in names
           and not math.isfinite(value)] or ["the total"]
    message = (f"the loss became {loss} at epoch {epoch + 1}, step {step + 1} "
               f"(non-finite term: {', '.join(bad)}).")
    raise TrainingDiverged(message, epoch=epoch + 1, step=step + 1, terms=tuple(bad))
