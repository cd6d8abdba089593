"""Whether the optics learned: the per-epoch diagnostics of a run, on a fixed set of validation images.

An optics comparison is only evidence when the masks actually trained, so every run records, per epoch
(``history.csv``) and at its start and end (``metrics.json``):

* ``mask_drift``       -- mean wrapped |phi - phi0| over masks and pixels, radians (0 for the random
                       baseline);
* ``speckle_contrast`` -- std / mean of the noise-free CDPs, averaged over images and masks (1 for fully
  developed speckle);
* ``init_corr``        -- |<z, x>| / (||z|| ||x||) of the spectral initialization against the true scene;
* ``val_cdp``, ``val_cdp_std`` -- L_cdp (Eq. 5) in its two forms (``prkd.learning.objectives.cdp_loss``:
  paper and standardized) between this system's mean CDP and a teacher's. For a student this is its own
  teacher; for the E2E and random baselines it is the teacher its student would have (``teacher_masks``,
  ``teacher_seed``), if that run is complete when training starts (blank otherwise), so L_cdp can be
  read for systems that never optimised it.
"""

from __future__ import annotations

import torch

from prkd.data import to_images
from prkd.learning.objectives import cdp_loss
from prkd.metrics import correlation
from prkd.physics.optics import speckle_contrast
from prkd.physics.system import PRSystem

__all__ = ["DIAGNOSTICS", "OpticsProbe", "LOW_DRIFT_RAD", "cdp_target_report"]

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
        """The diagnostics of ``system`` now (noise, if configured, seeded by ``seed`` for the
        initialization)."""
        was_training = system.training
        system.eval()
        x = system.scene(self.img)
        y_clean = system.sensing(x)
        y = system.measure(self.img, generator=torch.Generator(device=self.img.device).manual_seed(seed))
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


@torch.no_grad()
def cdp_target_report(teacher: PRSystem, student: PRSystem, images: torch.Tensor) -> dict[str, float]:
    """What the teacher's mean CDP asks of a student: the measurements behind the choice of ``cdp_loss``.

    Args:
        teacher, student: systems of the same image size (e.g. a trained teacher and a freshly built student).
        images: uint8 images (n, 28, 28) on the systems' device.
    Returns:
        ``teacher_contrast`` / ``student_contrast``: speckle contrast of the teacher's mean CDP / the
        student's CDP;
        ``r_teacher_far_field``: per-image Pearson r between the teacher's mean CDP and the scene's own far
        field
        |F x|^2 (no mask) -- how much of the scene it carries; ``cdp_student`` / ``cdp_flat``: the paper's
        L_cdp of the student's CDP and of a flat pattern of the same mean (if flat scores lower, the paper's
        form rewards a flatter pattern more than the scene); ``cdp_std_student`` / ``cdp_std_far_field``: the
        standardized L_cdp of the student's CDP and of |F x|^2 itself.
    """
    img = to_images(images, teacher.cfg.data.image_size)
    x = teacher.scene(img)
    y_t = teacher.sensing(x).mean(dim=1, keepdim=True)
    y_s = student.sensing(student.scene(img))[:, :1]
    far = torch.fft.fft2(x, norm="ortho").abs().square().unsqueeze(1)
    flat = torch.ones_like(y_s) * y_s.mean(dim=(2, 3), keepdim=True)
    r = 1 - cdp_loss(y_t, far, "standardized") / 2  # standardized MSE = 2 (1 - r)
    return {"teacher_contrast": speckle_contrast(y_t).mean().item(),
            "student_contrast": speckle_contrast(y_s).mean().item(),
            "r_teacher_far_field": r.item(),
            "cdp_student": cdp_loss(y_t, y_s, "paper").item(),
            "cdp_flat": cdp_loss(y_t, flat, "paper").item(),
            "cdp_std_student": cdp_loss(y_t, y_s, "standardized").item(),
            "cdp_std_far_field": cdp_loss(y_t, far, "standardized").item()}
