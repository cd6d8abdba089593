"""An unrolled, data-consistent reconstructor: K stages, each a relaxed amplitude projection on the system's
own CDPs followed by a small U-Net denoiser, started from the spectral initialization z.

The paper's D_theta sees only z; after Algorithm 1 the measurements y are never used again. Here every stage
uses them (``net.arch = "unrolled"``)::

    x_0   = z padded to the sensor's M x M, scaled so that ||B x_0||^2 = sum(y)      (energy of the
                                                                                     measurements)
    v     = B x_k                                                                   (sensing.A)
    x_dc  = B^H (sqrt(y) v / |v|) / L                                               (least squares: B^H B = L
                                                                                    I)
    x'    = x_k + lambda_k (x_dc - x_k),  lambda_k = 2 sigmoid(r_k) in (0, 2) learned, started at 1
    x_hat_k, f_k = U-Net_k(Re x', Im x' on the scene's N x N)                      (a phase image, like
                                                                                   D_theta's)
    x_{k+1} = exp(j phase_range x_hat_k) padded

The data-consistency step is error reduction's amplitude projection with a learned relaxation (under- or
over-relaxed, lambda in (0, 2)): it needs no step size to tune, and it is the step of the refinement that
lifts the paper's U-Net output by ~10 dB at evaluation (``prkd.learning.refine``). At its start (lambda = 1)
a stage whose denoiser returned the phase of its input would be exactly one iteration of
``prkd.classical.gerchberg_saxton`` (tested). Every stage calls the sensing operator, so gradients reach phi
through every stage as well as through Algorithm 1. Each stage has its own U-Net (the error left after each
projection differs from stage to stage); the output is the last stage's phase image, and L_feat uses the last
stage's bottleneck.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from prkd.nets.unet import UNet

__all__ = ["UnrolledReconstructor"]

_EPS = 1e-12


class UnrolledReconstructor(nn.Module):
    """K data-consistency + denoiser stages (module docstring). ``sensing`` needs ``A``, ``A_adjoint``,
    ``n_masks``."""

    def __init__(self, *, stages: int, depth: int, width: int, phase_range: float, relaxation: float = 1.0):
        super().__init__()
        if not (isinstance(stages, int) and stages >= 1):
            raise ValueError(f"unroll_stages must be an integer >= 1; got {stages!r}")
        if not 0 < relaxation < 2:
            raise ValueError(f"relaxation must lie in (0, 2); got {relaxation!r}")
        half = relaxation / 2
        self.relax_logit = nn.Parameter(torch.full((stages,), math.log(half / (1 - half))))
        self.denoisers = nn.ModuleList([UNet(depth=depth, width=width) for _ in range(stages)])
        self.phase_range = phase_range

    def feature_shape(self, n: int) -> tuple[int, int, int]:
        """Shape (C, h, w) of the last stage's bottleneck features for N x N scenes."""
        return self.denoisers[-1].feature_shape(n)

    def relaxations(self) -> torch.Tensor:
        """lambda_k of every stage, in (0, 2) (1: the plain amplitude projection of error reduction)."""
        return 2 * torch.sigmoid(self.relax_logit)

    def forward(self, z: torch.Tensor, y: torch.Tensor, sensing) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, N, N) complex, y (B, L, M, M) CDPs -> (x_hat (B, 1, N, N), the last stage's bottleneck
        features)."""
        n, m = z.shape[-1], y.shape[-1]
        amp = (y.clamp_min(0) + _EPS).sqrt()
        x = F.pad(z, (0, m - n, 0, m - n))
        energy = (x.abs().square().flatten(1).sum(1) * sensing.n_masks).clamp_min(_EPS)
        x = x * (y.flatten(1).sum(1).clamp_min(0) / energy).sqrt()[:, None, None]
        for lam, denoiser in zip(self.relaxations(), self.denoisers):
            v = sensing.A(x)
            fitted = v * (amp / v.abs().clamp_min(_EPS))
            x = x + lam * (sensing.A_adjoint(fitted) / sensing.n_masks - x)
            crop = x[:, :n, :n]
            x_hat, features = denoiser(torch.stack([crop.real, crop.imag], dim=1))
            x_hat = x_hat.float()  # a CUDA autocast runs the U-Net in bfloat16; the optics stay float32
            x = F.pad(torch.polar(torch.ones_like(x_hat[:, 0]), self.phase_range * x_hat[:, 0]),
                      (0, m - n, 0, m - n))
        return x_hat, features
