"""What the frozen teacher contributes to the KD objective: its mean CDPs (Eq. 5) and bottleneck features
(Eq. 6).

The teacher never changes during distillation and the training images are fixed, so without sensor noise
its targets for an image are the same at every epoch. ``TeacherTargets`` therefore computes them once, without
gradients, the first time a step asks for an image, and keeps them on the training device -- at most one
teacher forward pass per image for the whole run instead of one per image per epoch, and none for images a
short run never draws -- whenever they fit in the memory budget. Otherwise (or with noise, see below) it
runs the teacher in inference mode at every step. The teacher is in eval mode (batch norm from its running
statistics), so an image's targets do not depend on the batch they are computed in.

Trade-off with noise: a noisy teacher sees a new noise draw at every step, which a cache would freeze to
a single draw per image. Caching is therefore off by default when ``noise != "none"`` (``cache=True``
forces it: the teacher's CDPs then carry one fixed noise realisation per image).

Memory: the cache holds n_train x (M x M + C x h x w) float32 values: at the ``paper`` preset
(30k images, 96 x 96 CDPs, a 1024 x 6 x 6 bottleneck) about 5.5 GB, which fits the default budget on a
large GPU but not on a laptop, where the teacher then runs per step.
"""

from __future__ import annotations

import math

import torch

from prkd.data import to_images
from prkd.physics.system import PRSystem

__all__ = ["TeacherTargets"]


def _default_budget(device: torch.device) -> int:
    """Bytes the cache may use: a quarter of the free GPU memory, or 2 GiB of host memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 4
    return 2 * 2**30


class TeacherTargets:
    """Mean CDP and bottleneck features of a frozen teacher for training images, cached or computed per step.

    Args:
        teacher: the frozen teacher system (put in eval mode, gradients off).
        images: uint8 training images (n, 28, 28) on ``device``, indexed by the same indices as in training.
        device: where the cache lives.
        cache: True / False to force; None (default) caches when there is no noise and the cache fits.
        budget_bytes: memory the cache may use (default: see ``_default_budget``).
        batch_size: images per teacher pass when filling the cache.

    ``cdp_scale`` is the constant of the ``"normalized"`` L_cdp (set by the training loop; 1 otherwise).
    """

    def __init__(self, teacher: PRSystem, images: torch.Tensor, *, device: torch.device,
                 cache: bool | None = None,
                 budget_bytes: int | None = None, batch_size: int = 256):
        self.teacher = teacher.eval().requires_grad_(False)
        self.image_size = teacher.cfg.data.image_size
        # sizes from the config, not from a probe pass: a CPU convolution on a batch of one image keeps ~17 MB
        # of workspace for the rest of the process (measured), which would count against distillation
        m = self.image_size * teacher.cfg.data.pad_factor
        per_image = (m * m + math.prod(teacher.unet.feature_shape(self.image_size))) * 4
        self.cache_bytes = per_image * len(images)
        if cache is None:
            budget = _default_budget(device) if budget_bytes is None else budget_bytes
            cache = teacher.cfg.optics.noise == "none" and self.cache_bytes <= budget
        self.cached = cache
        self.images, self.batch_size, self.cdp_scale = images, batch_size, 1.0
        if cache:
            cdp_shape, feature_shape = (1, m, m), teacher.unet.feature_shape(self.image_size)
            self.mean_cdp = torch.zeros((len(images), *cdp_shape), device=device)
            self.features = torch.zeros((len(images), *feature_shape), device=device)
            self.filled = torch.zeros(len(images), dtype=torch.bool, device=device)

    def _fill(self, index: torch.Tensor) -> None:
        """Compute and keep the targets of the images of ``index`` that the cache lacks."""
        missing = torch.unique(index[~self.filled[index]])
        if missing.numel() == 0:
            return
        with torch.no_grad():  # not inference mode: the results are written into the cache's normal tensors
            for start in range(0, len(missing), self.batch_size):
                part = missing[start:start + self.batch_size]
                out = self.teacher(to_images(self.images[part], self.image_size))
                self.mean_cdp[part] = out.y.mean(dim=1, keepdim=True)
                self.features[part] = out.features
        self.filled[missing] = True

    def __call__(self, index: torch.Tensor, img: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets for the training images ``index`` (whose images, resized, are ``img``).

        Returns:
            mean CDP (Q, 1, M, M) -- the teacher's CDPs averaged over its L_t snapshots -- and bottleneck
            features (Q, C, h, w). ``generator`` seeds the teacher's noise when it runs per step.
        """
        if self.cached:
            self._fill(index)
            return self.mean_cdp[index], self.features[index]
        with torch.inference_mode():
            out = self.teacher(img, generator=generator)
        return out.y.mean(dim=1, keepdim=True).clone(), out.features.clone()
