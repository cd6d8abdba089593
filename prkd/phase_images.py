"""A complex estimate as a phase image comparable with the truth: the global phase that no CDP can see is
removed first, with the truth as reference (the oracle, the usual error metric of phase retrieval) or without
it (a rule that needs only the estimate). Every solver's and every learned system's score goes through here
(``prkd.classical``, ``prkd.learning.refine``, the experiments)."""

from __future__ import annotations

import math

import torch

__all__ = ["phase_image"]


def phase_image(z: torch.Tensor, phase_range: float, *,
                reference: torch.Tensor | None = None) -> torch.Tensor:
    """An estimate z (B, N, N) complex as a phase image (B, 1, N, N) in [0, 1], comparable with the truth img.

    The global phase c is removed first, then img_hat = clamp(angle(e^{jc} z) / phase_range, 0, 1):

    * with ``reference`` (the true images, (B, [1,] N, N) in [0, 1]): c = angle(<z, exp(j phase_range ref)>),
      the c minimising ||exp(j phase_range ref) - e^{jc} z|| (the usual error metric of phase retrieval); the
      angle is taken in (phase_range/2 - pi, phase_range/2 + pi], so small errors at 0 or 1 do not wrap;
    * without: the phases are rotated so that the arc they occupy starts at 0 (its largest empty circular gap
      ends at 0): exact when the image reaches 0 somewhere and phase_range < 2 pi (Fashion-MNIST backgrounds).
    """
    if isinstance(phase_range, bool) or not isinstance(phase_range, (int, float)) or not (
            0 < phase_range <= 2 * math.pi):
        raise ValueError(f"phase_range must be a number in (0, 2 pi]; got {phase_range!r}")
    if z.dim() != 3 or not z.is_complex():
        raise ValueError(f"z must be a complex tensor of shape (B, N, N); got {z.dtype} {tuple(z.shape)}")
    if reference is not None:
        if reference.numel() != z.numel():
            raise ValueError(f"reference must hold (B, [1,] N, N) = {tuple(z.shape)} images; "
                             f"got {tuple(reference.shape)}")
        ref = torch.polar(torch.ones_like(z.real), phase_range * reference.reshape(z.shape).to(z.real))
        c = (z.conj() * ref).sum(dim=(1, 2)).angle()
        rotated = z * torch.polar(torch.ones_like(c), c - phase_range / 2)[:, None, None]
        phase = rotated.angle() + phase_range / 2
    else:
        theta = z.angle().flatten(1)
        s = theta.sort(dim=1).values
        gaps = torch.cat([s.diff(dim=1), (s[:, :1] + 2 * math.pi - s[:, -1:])], dim=1)
        start = s.gather(1, (gaps.argmax(dim=1, keepdim=True) + 1) % s.shape[1])
        phase = (theta - start).remainder(2 * math.pi).reshape(z.shape)
    return (phase / phase_range).clamp(0.0, 1.0).unsqueeze(1)
