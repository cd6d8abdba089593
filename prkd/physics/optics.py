"""Coded diffraction patterns (CDPs): the sensing model of Eq. (1).

    y_l = |F diag(e^{j phi_l}) x|^2 + w_l,     l = 1..L

``F`` is the orthonormal 2-D DFT (``norm="ortho"``: unitary, so Parseval holds and ||B_l x|| = ||x||).
The paper writes the mask as ``diag(e^{j phi_l})^H``; that is the same family with phi -> -phi.

The masks are held as a real parameter phi in R^{L x N x N} and used as ``exp(1j * phi)``, so they
stay on the unit circle by construction, whatever the optimiser does to phi.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from prkd.physics.complex_ops import sum_masks

__all__ = ["CDPSensing", "add_noise", "mask_level_penalty", "speckle_contrast", "wrapped_phase_change"]


class CDPSensing(nn.Module):
    """L learnable coded phase masks followed by far-field (Fourier) propagation.

    Args:
        n_masks: number of snapshots L.
        size: side N of the (possibly padded) scene, pixels.
        trainable: whether phi receives gradients (False for the ``random`` baseline).
        generator: seeds the random initialisation of phi.
        init: ``"uniform"``: phi ~ U[0, 2 pi) (fully developed speckle); ``"normal"``: phi ~ N(0, init_std^2).
        init_std: standard deviation of the ``"normal"`` initialisation, radians.

    The initial phases are kept (``phi0``, not saved in the state dict: the seed redraws them) so that
    ``drift_rad`` can say how far training moved the masks.
    """

    def __init__(self, *, n_masks: int, size: int, trainable: bool = True,
                 generator: torch.Generator | None = None, init: str = "uniform", init_std: float = 1.0):
        super().__init__()
        if init == "uniform":
            phi = 2 * math.pi * torch.rand(n_masks, size, size, generator=generator)
        elif init == "normal":
            phi = init_std * torch.randn(n_masks, size, size, generator=generator)
        else:
            raise ValueError(f"mask init must be 'uniform' or 'normal'; got {init!r}")
        self.phi = nn.Parameter(phi, requires_grad=trainable)
        self.register_buffer("phi0", phi.detach().clone(), persistent=False)

    @property
    def n_masks(self) -> int:
        return self.phi.shape[0]

    def drift_rad(self, *, remove_offset: bool = False) -> float:
        """Mean over masks and pixels of the wrapped phase change |phi - phi0|, in [0, pi] radians.

        ``remove_offset``: first remove each mask's common phase offset (the angle of the mean of
        e^{j(phi - phi0)}), which changes neither the CDPs nor the initialization, so only a change the
        system can see is counted.
        """
        delta = self.phi.detach() - self.phi0
        if remove_offset:
            offset = torch.polar(torch.ones_like(delta), delta).mean(dim=(1, 2), keepdim=True).angle()
            delta = delta - offset
        return wrapped_phase_change(torch.zeros_like(delta), delta).mean().item()

    def masks(self) -> torch.Tensor:
        """The complex masks e^{j phi}, shape (L, N, N), unit modulus."""
        return torch.polar(torch.ones_like(self.phi), self.phi)

    def A(self, x: torch.Tensor) -> torch.Tensor:
        """Linear part B x = [F diag(e^{j phi_l}) x]_l.

        Args:
            x: (B, N, N) complex scene.
        Returns:
            (B, L, N, N) complex fields at the sensor.
        """
        return torch.fft.fft2(self.masks() * x.unsqueeze(1), norm="ortho")

    def A_adjoint(self, v: torch.Tensor) -> torch.Tensor:
        """Adjoint B^H v = sum_l diag(e^{-j phi_l}) F^H v_l.

        Args:
            v: (B, L, N, N) complex.
        Returns:
            (B, N, N) complex.
        """
        return (self.masks().conj() * torch.fft.ifft2(v, norm="ortho")).sum(dim=1)

    def frozen_operators(self):
        """(A, A_adjoint) with the masks evaluated once and detached, for solvers that call them many times
        without a gradient (``prkd.classical``); the same values as ``A`` and ``A_adjoint`` to float
        rounding."""
        masks = self.masks().detach()
        conj_masks = masks.conj().resolve_conj()

        def forward(x: torch.Tensor) -> torch.Tensor:
            return torch.fft.fft2(masks * x.unsqueeze(1), norm="ortho")

        def adjoint(v: torch.Tensor) -> torch.Tensor:
            return sum_masks(conj_masks * torch.fft.ifft2(v, norm="ortho"))

        return forward, adjoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Noise-free CDPs y = |B x|^2, shape (B, L, N, N), real, in units of |x|^2 per pixel."""
        return self.A(x).abs().square()


def _draw_device(y: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    """Where the noise is drawn: on the generator's device (a generator on the data's device draws there, with
    no copy and no host synchronisation); without a generator, on the data's device."""
    return generator.device if generator is not None else y.device


def add_noise(y: torch.Tensor, *, kind: str, snr_db: float = 30.0, photons: float = 1000.0,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Sensor noise w_l of Eq. (1), per image.

    * ``"none"``: y unchanged.
    * ``"gaussian"``: y + s * n, n ~ N(0, 1), with s chosen per image so that
      ``10 log10(mean(y^2) / s^2) = snr_db``.
    * ``"poisson"``: y is scaled so that the mean detector pixel of each image receives ``photons``
      photons, counted with Poisson statistics, and scaled back (same units as y).

    Gradients pass straight through the noise (the noise itself is treated as a constant), so the masks
    stay trainable under noise. Pass a seeded ``generator`` for reproducible noise.

    Args:
        y: (B, L, N, N) CDPs, non-negative.
    """
    if kind == "none":
        return y
    dims = tuple(range(1, y.dim()))
    if kind == "gaussian":
        power = y.detach().square().mean(dim=dims, keepdim=True)
        s = torch.sqrt(power / 10 ** (snr_db / 10))
        n = torch.randn(y.shape, generator=generator, device=_draw_device(y, generator)).to(y.device)
        return y + s * n
    if kind == "poisson":
        mean = y.detach().mean(dim=dims, keepdim=True)
        scale = photons / mean.clamp_min(1e-20)  # an all-dark image (mean 0) receives no photons, not NaN
        rate = (y.detach() * scale).clamp_min(0.0).to(_draw_device(y, generator))
        counts = torch.poisson(rate, generator=generator).to(y.device)
        return y + (counts / scale - y).detach()
    raise ValueError(f"noise kind must be one of 'none', 'gaussian', 'poisson'; got {kind!r}")


def mask_level_penalty(phi: torch.Tensor, levels: int) -> torch.Tensor:
    """Mask regularizer R(phi) of Eq. (4): distance of every phase to the nearest fabrication level.

    A coded phase mask made by multi-level lithography (or shown on a phase SLM with a small
    look-up table) can only take K phase values 2 pi k / K, k = 0..K-1. We use

        R(phi) = mean_{l,i} sin^2(K phi_{l,i} / 2),

    which is smooth, 2 pi-periodic, lies in [0, 1], and is zero exactly when every phase sits on one
    of the K levels. Multiply by the weight rho (``OpticsConfig.rho``); rho = 0 turns it off.

    Args:
        phi: (L, N, N) mask phases, radians.
        levels: number of fabrication levels K >= 2.
    """
    return torch.sin(levels * phi / 2).square().mean()


def speckle_contrast(y: torch.Tensor) -> torch.Tensor:
    """Speckle contrast std(y) / mean(y) of each CDP (B, L, M, M) -> (B, L).

    1 for fully developed speckle (uniform random phases), lower as the pattern flattens; the mean CDP of
    L independent speckle patterns has contrast about 1 / sqrt(L).
    """
    flat = y.flatten(2)
    return flat.std(dim=2) / flat.mean(dim=2).clamp_min(1e-30)


def wrapped_phase_change(phi0: torch.Tensor, phi: torch.Tensor) -> torch.Tensor:
    """|phi - phi0| wrapped to [0, pi] radians, elementwise: how far e^{j phi} moved from e^{j phi0}."""
    delta = (phi - phi0).remainder(2 * math.pi)
    return torch.minimum(delta, 2 * math.pi - delta)
