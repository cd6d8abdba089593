"""Which photon count the ladder's noisy rung uses, and why: what Poisson noise at each count does to the
CDPs and to the classical solvers at L = 1 and at the teacher's L_t, on random masks (nothing learned).

For each photon count: the CDPs' SNR (10 log10 of signal over noise energy), and RAAR (``ITERATIONS``
iterations from its own spectral start) scored both ways -- raw, with the reference-free global-phase rule
(``phase_image(reference=None)``), and with the oracle (aligned to the truth's global phase). A useful level
lowers the multi-snapshot solver's recovery from exact to something finite while leaving the single snapshot
a problem worth learning.
"""

from __future__ import annotations

import torch

from prkd.classical import phase_image, raar
from prkd.config import make
from prkd.data import Splits, to_images
from prkd.experiments.classical_sweep import PSNR_CAP_DB
from prkd.utils.seeding import seeded_generator
from prkd.metrics import psnr
from prkd.physics.optics import add_noise
from prkd.physics.system import PRSystem

__all__ = ["ITERATIONS", "noise_level_rows"]

ITERATIONS = 200


def _psnr(z: torch.Tensor, img: torch.Tensor, phase_range: float, oracle: bool) -> float:
    estimate = phase_image(z, phase_range, reference=img if oracle else None)
    return psnr(estimate, img).clamp(max=PSNR_CAP_DB).mean().item()


def noise_level_rows(preset: str, data: Splits, *, photons=(10.0, 100.0, 1000.0), Ls=(1, 9),
                     n_images: int = 64,
                     seed: int = 0) -> list[dict]:
    """One row per (L, photon count, plus noise-free): CDP SNR and RAAR's raw and oracle-aligned test PSNR."""
    cfg = make(preset)
    img = to_images(data.test[:n_images], cfg.data.image_size)
    rows = []
    for L in Ls:
        system = PRSystem(make(preset, n_masks=L, seed=seed)).eval()
        with torch.no_grad():
            clean = system.sensing(system.scene(img))
        for count in (None, *photons):
            generator = seeded_generator(seed, L, count, "noise-level")
            y = clean if count is None else add_noise(clean, kind="poisson", photons=count,
                                                      generator=generator)
            ratio = clean.square().sum() / (y - clean).square().sum()
            snr = (10 * torch.log10(ratio)).item() if count else None
            z = raar(y, system.sensing, size=img.shape[-1], iterations=ITERATIONS).z
            rows.append({"L": L, "photons": "none" if count is None else count,
                         "CDP SNR (dB)": "" if snr is None else round(snr, 2),
                         "RAAR raw PSNR (dB)": round(_psnr(z, img, cfg.data.phase_range, False), 2),
                         "RAAR oracle PSNR (dB)": round(_psnr(z, img, cfg.data.phase_range, True), 2),
                         "images": n_images})
    return rows
