"""Whether the optics learned: the per-epoch diagnostics of a run, on a fixed set of validation images.

An optics comparison is only evidence when the masks actually trained, so every run records, per epoch
(``history.csv``) and at its start and end (``metrics.json``):

* ``mask_drift``       -- mean wrapped |phi - phi0| over masks and pixels, radians (0 for the random baseline);
* ``speckle_contrast`` -- std / mean of the noise-free CDPs, averaged over images and masks (1 for fully
  developed speckle);
* ``init_corr``        -- |<z, x>| / (||z|| ||x||) of the spectral initialization against the true scene;
* ``val_cdp``, ``val_cdp_std`` -- L_cdp (Eq. 5) in its two forms (``prkd.losses.cdp_loss``: paper and
  standardized) between this system's mean CDP and a teacher's. For a student this is its own teacher; for
  the E2E and random baselines it is the teacher its student would have (``teacher_masks``,
  ``teacher_seed``), if that run is complete when training starts (blank otherwise), so L_cdp can be
  read for systems that never optimised it.
"""

from __future__ import annotations

import torch

from .data import to_images
from .losses import cdp_loss
from .metrics import correlation
from .optics import speckle_contrast
from .system import PRSystem

__all__ = ["DIAGNOSTICS", "OpticsProbe", "LOW_DRIFT_RAD"]

#: The per-epoch columns that ``OpticsProbe`` adds to a run's history.
DIAGNOSTICS = ("mask_drift", "speckle_contrast", "init_corr", "val_cdp", "val_cdp_std")

#: Below this mean drift (radians) a run's summary says that its masks barely moved from their initialisation.
LOW_DRIFT_RAD = 0.1


class OpticsProbe:
    """Measures the diagnostics of a system on the first ``n_images`` validation images.

    Args:
        images: uint8 validation images (n, 28, 28) on the system's device.
        image_size: side N the images are resized to (``cfg.data.image_size``).
        teacher: a frozen teacher whose mean CDP L_cdp is measured against, or None.
        n_images: how many images (the first ones, so every epoch and every run sees the same).
    """

    def __init__(self, images: torch.Tensor, *, image_size: int, teacher: PRSystem | None = None,
                 n_images: int = 256):
        self.img = to_images(images[:n_images], image_size)
        self.teacher_mean_cdp = None
        if teacher is not None:
            with torch.no_grad():
                y_t = teacher.sensing(teacher.scene(self.img))
            self.teacher_mean_cdp = y_t.mean(dim=1, keepdim=True)

    @torch.no_grad()
    def __call__(self, system: PRSystem, *, seed: int = 0) -> dict[str, float | None]:
        """The diagnostics of ``system`` now (noise, if configured, seeded by ``seed`` for the initialization)."""
        was_training = system.training
        system.eval()
        x = system.scene(self.img)
        y_clean = system.sensing(x)
        y = system.measure(self.img, generator=torch.Generator().manual_seed(seed))
        n = system.cfg.data.image_size
        z = system.initialize(y)
        out = {"mask_drift": system.sensing.drift_rad(),
               "speckle_contrast": speckle_contrast(y_clean).mean().item(),
               "init_corr": correlation(z, x[:, :n, :n]).mean().item(),
               "val_cdp": None, "val_cdp_std": None}
        if self.teacher_mean_cdp is not None:
            out["val_cdp"] = cdp_loss(self.teacher_mean_cdp, y_clean, "paper").item()
            out["val_cdp_std"] = cdp_loss(self.teacher_mean_cdp, y_clean, "standardized").item()
        system.train(was_training)
        return out
