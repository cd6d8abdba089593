"""Small fixed kernels shared by the initialization's filter (``prkd.physics.spectral_init``) and SSIM
(``prkd.metrics``)."""

from __future__ import annotations

import torch

__all__ = ["gaussian_kernel"]


def gaussian_kernel(size: int, sigma: float) -> torch.Tensor:
    """Normalised (sum 1) 2-D Gaussian, shape (size, size); size odd, sigma in pixels."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(r**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).float()
