"""PRSystem: the whole phase-retrieval pipeline of Fig. 1, sensing -> initialization -> U-Net.

    img --phase_object--> x --Eq.(1)--> y --Alg.1--> z --D_theta--> x_hat (and bottleneck features)

Seeds: one ``torch.Generator`` seeded with ``cfg.train.seed`` draws, in this order, the masks phi, the
power-iteration start z0 and the U-Net weights, so the same config gives the same system on any device.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from prkd.config import Config
from prkd.physics.scene import phase_object
from prkd.physics.optics import CDPSensing, add_noise, mask_level_penalty
from prkd.physics.spectral_init import SpectralInit
from prkd.nets.unet import UNet
from prkd.nets.unrolled import UnrolledReconstructor
from prkd.utils.arithmetic import resolve_arithmetic

__all__ = ["PRSystem", "PROutput"]


class PROutput(NamedTuple):
    """What one pass returns. B images of N x N pixels (padded size M = pad_factor * N), L snapshots."""

    y: torch.Tensor         # (B, L, M, M) CDPs, noise included
    z: torch.Tensor         # (B, N, N) complex initial estimate (cropped to the scene)
    x_hat: torch.Tensor     # (B, 1, N, N) reconstructed phase image
    features: torch.Tensor  # U-Net bottleneck features, for L_feat (Eq. 6)


class PRSystem(nn.Module):
    """Sensing (phi), filtered spectral initialization (psi) and recovery U-Net (theta) as one module.

    Args:
        cfg: the experiment; ``cfg.optics.n_masks`` sets L.
        trainable_optics: False freezes phi and psi (the ``random`` baseline of Section 4.1).
    """

    def __init__(self, cfg: Config, *, trainable_optics: bool = True):
        super().__init__()
        self.cfg = cfg
        gen = torch.Generator().manual_seed(cfg.train.seed)
        size = cfg.data.image_size * cfg.data.pad_factor
        self.sensing = CDPSensing(n_masks=cfg.optics.n_masks, size=size,
                                  trainable=trainable_optics, generator=gen,
                                  init=cfg.optics.mask_init, init_std=cfg.optics.mask_init_std)
        self.init = SpectralInit(size=size, T=cfg.init.T, filter_size=cfg.init.filter_size,
                                 filter_sigma=cfg.init.filter_sigma, weighting=cfg.init.weighting,
                                 truncation=cfg.init.truncation, trainable=trainable_optics,
                                 backward=cfg.init.backward,
                                 backward_iterations=cfg.init.backward_iterations, generator=gen)
        fork = torch.random.fork_rng(devices=[])
        with fork:
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=gen)))
            net = cfg.net
            self.unet = (UNet(depth=net.unet_depth, width=net.unet_width) if net.arch == "unet" else
                         UnrolledReconstructor(stages=net.unroll_stages, depth=net.unet_depth,
                                               width=net.unroll_width,
                                               phase_range=cfg.data.phase_range))

    def scene(self, img: torch.Tensor) -> torch.Tensor:
        """Phase object x for images img (B, 1, N, N) in [0, 1]; see ``prkd.physics.scene.phase_object``."""
        return phase_object(img, phase_range=self.cfg.data.phase_range, pad_factor=self.cfg.data.pad_factor)

    def measure(self, img: torch.Tensor, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """CDPs y (B, L, M, M) of images img (B, 1, N, N), with the configured noise."""
        o = self.cfg.optics
        return add_noise(self.sensing(self.scene(img)), kind=o.noise, snr_db=o.snr_db, photons=o.photons,
                         generator=generator)

    def initialize(self, y: torch.Tensor) -> torch.Tensor:
        """Initial estimate z (B, N, N) from CDPs, cropped to the scene's N x N pixels."""
        n = self.cfg.data.image_size
        return self.init(y, self.sensing)[:, :n, :n]

    def reconstruct(self, z: torch.Tensor,
                    y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """D_theta(z): (B, N, N) complex -> (x_hat (B, 1, N, N), bottleneck features), both float32. The
        unrolled reconstructor (``net.arch = "unrolled"``) also needs the CDPs ``y`` its stages stay
        consistent with.

        The network runs under bfloat16 autocast where ``cfg.net.precision`` resolves to bfloat16 on this
        device (``prkd.utils.arithmetic``); the optics and the initialization before it always run in
        float32 / complex64.
        """
        low = self.arithmetic(z.device) == "bfloat16"
        if self.cfg.net.arch == "unrolled" and y is None:
            raise ValueError("the unrolled reconstructor needs the CDPs y: call reconstruct(z, y)")
        with torch.autocast(device_type=z.device.type, dtype=torch.bfloat16, enabled=low):
            if self.cfg.net.arch == "unrolled":
                x_hat, features = self.unet(z, y, self.sensing)
            else:
                x_hat, features = self.unet(torch.stack([z.real, z.imag], dim=1))
        return x_hat.float(), features.float()

    def arithmetic(self, device: torch.device | str) -> str:
        """What the recovery network computes in on ``device``: ``"float32"`` or ``"bfloat16"``."""
        return resolve_arithmetic(self.cfg.net.precision, device)

    def forward(self, img: torch.Tensor, *, generator: torch.Generator | None = None) -> PROutput:
        y = self.measure(img, generator=generator)
        z = self.initialize(y)
        x_hat, features = self.reconstruct(z, y)
        return PROutput(y=y, z=z, x_hat=x_hat, features=features)

    def mask_penalty(self) -> torch.Tensor:
        """rho * R(phi) (Eq. 4); exactly zero when rho = 0."""
        o = self.cfg.optics
        if o.rho == 0:
            return self.sensing.phi.new_zeros(())
        return o.rho * mask_level_penalty(self.sensing.phi, o.mask_levels)
