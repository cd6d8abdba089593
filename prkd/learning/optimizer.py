"""The optimiser of a run: Adam with one learning rate per part of the system, and the schedule of those
rates over the run's steps."""

from __future__ import annotations

import math

import torch

from prkd.config import Config
from prkd.physics.system import PRSystem

__all__ = ["build_optimizer", "schedule_learning_rates"]


def build_optimizer(system: PRSystem, t) -> torch.optim.Adam:
    """Adam with the learning rates of the masks phi (mask_lr), the filter psi (filter_lr) and the U-Net
    (lr); frozen parameters (a random run's optics) are left out."""
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
