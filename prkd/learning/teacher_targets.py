"""What the frozen teacher contributes to the KD objective: its mean CDPs (Eq. 5) and bottleneck features (Eq. 6).

The teacher never changes during distillation and the training images are fixed, so without sensor noise
its targets for an image are the same at every epoch. ``TeacherTargets`` therefore computes them once, in
inference mode, and keeps them on the training device -- one teacher forward pass per image for the whole
run instead of one per image per epoch -- whenever they fit in the memory budget. Otherwise (or with
noise, see below) it runs the teacher in inference mode at every step.

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
    """

    def __init__(self, teacher: PRSystem, images: torch.Tensor, *, device: torch.device, cache: bool | None = None,
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
        if cache:
            means, features = [], []
            with torch.inference_mode():
                for start in range(0, len(images), batch_size):
                    out = self.teacher(to_images(images[start:start + batch_size], self.image_size))
                    means.append(out.y.mean(dim=1, keepdim=True))
                    features.append(out.features)
            self.mean_cdp, self.features = torch.cat(means).clone(), torch.cat(features).clone()

    def __call__(self, index: torch.Tensor, img: torch.Tensor, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets for the training images ``index`` (whose images, resized, are ``img``).

        Returns:
            mean CDP (Q, 1, M, M) -- the teacher's CDPs averaged over its L_t snapshots -- and bottleneck
            features (Q, C, h, w). ``generator`` seeds the teacher's noise when it runs per step.
        """
        if self.cached:
            return self.mean_cdp[index], self.features[index]
        with torch.inference_mode():
            out = self.teacher(img, generator=generator)
        return out.y.mean(dim=1, keepdim=True).clone(), out.features.clone()
