"""The compute device, chosen once: CUDA when present, else the CPU. Never hard-code a device elsewhere."""

from __future__ import annotations

import os

import torch

__all__ = ["default_device", "to_device"]


def default_device() -> torch.device:
    """``PRKD_DEVICE`` if set (e.g. ``cpu`` to force the CPU on a GPU machine), else CUDA if available, else
    CPU."""
    name = os.environ.get("PRKD_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``; to a GPU through pinned host memory with a non-blocking copy."""
    if device.type == "cuda" and tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device)
