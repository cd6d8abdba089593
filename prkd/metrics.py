"""Image-quality metrics, computed per image and then averaged (never on a batch as a whole).

All metrics compare phase images in [0, 1] (phase / phase_range) with data range 1; the estimate is
clamped to [0, 1] first. SSIM follows Wang et al. (2004) with an 11 x 11 Gaussian window (sigma 1.5),
K1 = 0.01, K2 = 0.03, population covariances, averaged over the pixels whose window lies inside the
image -- the same numbers as ``skimage.metrics.structural_similarity(a, b, data_range=1,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from prkd.utils.kernels import gaussian_kernel

__all__ = ["psnr", "ssim", "correlation"]

_WIN, _SIGMA, _K1, _K2 = 11, 1.5, 0.01, 0.03


def _prepare(x_hat: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x_hat.shape != x.shape:
        raise ValueError(f"shapes differ: estimate {tuple(x_hat.shape)} vs target {tuple(x.shape)}")
    return x_hat.clamp(0.0, 1.0).reshape(-1, 1, *x.shape[-2:]), x.reshape(-1, 1, *x.shape[-2:])


def psnr(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Peak SNR in dB per image, data range 1. (B, [1,] N, N) -> (B,). Identical images give +inf."""
    a, b = _prepare(x_hat, x)
    mse = (a - b).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse)


def ssim(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image, data range 1. (B, [1,] N, N) -> (B,). Needs N >= 11."""
    a, b = _prepare(x_hat, x)
    if min(a.shape[-2:]) < _WIN:
        raise ValueError(f"SSIM needs images of at least {_WIN}x{_WIN} pixels; got {tuple(a.shape[-2:])}")
    w = gaussian_kernel(_WIN, _SIGMA).to(a)[None, None]
    mu_a, mu_b = F.conv2d(a, w), F.conv2d(b, w)
    var_a = F.conv2d(a * a, w) - mu_a.square()
    var_b = F.conv2d(b * b, w) - mu_b.square()
    cov = F.conv2d(a * b, w) - mu_a * mu_b
    c1, c2 = _K1**2, _K2**2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.square() + mu_b.square() + c1)
                                                     * (var_a + var_b + c2))
    return s.flatten(1).mean(dim=1)


def correlation(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """|<z, x>| / (||z|| ||x||) per image for complex fields (B, N, N) -> (B,); 1 = equal up to a global
    phase."""
    z, x = z.flatten(1), x.flatten(1)
    inner = (z.conj() * x).sum(dim=1).abs()
    return inner / (z.norm(dim=1) * x.norm(dim=1)).clamp_min(1e-30)
