"""The scene of Eq. (1): how a Fashion-MNIST image becomes the complex field the masks see."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["phase_object"]


def phase_object(img: torch.Tensor, *, phase_range: float, pad_factor: int = 1) -> torch.Tensor:
    """The scene of Eq. (1): a pure phase object x = exp(j * phase_range * img).

    The paper does not state how an intensity image becomes a complex scene; we use a unit-amplitude
    phase object (the usual choice for phase imaging), with phase ``phase_range * img`` radians
    (default pi, so phases lie in [0, pi] and the map img -> phase is one-to-one). With
    ``pad_factor`` p > 1 the object sits in the top-left corner of a zero field p times larger
    (oversampling of the far-field pattern); p = 1 (default) means no padding.

    Args:
        img: (B, 1, N, N) or (B, N, N) real, in [0, 1].
    Returns:
        x: (B, pN, pN) complex64.
    """
    if img.dim() == 4:
        img = img[:, 0]
    x = torch.polar(torch.ones_like(img), phase_range * img)
    if pad_factor > 1:
        n = img.shape[-1]
        x = F.pad(x, (0, (pad_factor - 1) * n, 0, (pad_factor - 1) * n))
    return x
