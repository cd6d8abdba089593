"""Seeded generators: every random draw of training and testing (noise, shuffling) comes from a generator
seeded by the parts that name it, so a run resumed from its checkpoint draws what an uninterrupted one
would."""

from __future__ import annotations

import hashlib

import torch

__all__ = ["seeded_generator"]


def _seed(*parts: object) -> int:
    """A 63-bit seed derived from ``parts`` (stable across runs, platforms and Python's hash
    randomisation)."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:15], 16)


def seeded_generator(*parts: object, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded by ``parts``. The same parts give the same draws on a given device
    (the CPU's and CUDA's streams differ, so a GPU run is reproducible on a GPU, a CPU run on a CPU)."""
    return torch.Generator(device=device).manual_seed(_seed(*parts))
