"""A system scored as it would be deployed: its output refined by a classical solver on its own measurements.

The learned systems see their CDPs y only through the spectral initialization; a classical solver started from
their output can use y again. ``refine_output`` runs error reduction or RAAR (``prkd.classical``) on the
system's own CDPs (noise included, as measured), started from its reconstruction x_hat turned back into a
phase object, exp(j phase_range x_hat), and turns the result into a phase image whose global phase -- which
the CDPs cannot fix -- is taken from that start: the output's own phase is the reference, never the truth (no
oracle). So a refined score is what a user of the system would get without knowing the scene.
"""

from __future__ import annotations

import torch

from prkd.classical import gerchberg_saxton, phase_image, raar
from prkd.config import ConfigError
from prkd.physics.optics import CDPSensing

__all__ = ["REFINERS", "MAX_ITERATIONS", "check_refine", "refine_output"]

#: the refinements: none (the system's output as it is), error reduction, RAAR (beta = 0.9)
REFINERS = ("none", "er", "raar")
MAX_ITERATIONS = 100_000


def check_refine(refine: str, iterations: int) -> None:
    """Raise ConfigError naming the field and its range unless ``refine`` and ``iterations`` are allowed."""
    if refine not in REFINERS:
        raise ConfigError(f"'refine' must be one of {', '.join(map(repr, REFINERS))}; got {refine!r}")
    is_int = isinstance(iterations, int) and not isinstance(iterations, bool)
    if not is_int or not 1 <= iterations <= MAX_ITERATIONS:
        raise ConfigError(f"'iterations' (of the refinement) must be an integer in [1, {MAX_ITERATIONS}]; "
                          f"got {iterations!r}")


@torch.no_grad()
def refine_output(x_hat: torch.Tensor, y: torch.Tensor, sensing: CDPSensing, *, phase_range: float,
                  refine: str = "raar", iterations: int = 200) -> torch.Tensor:
    """The reconstruction ``x_hat`` (B, 1, N, N) refined on its CDPs ``y`` (B, L, M, M) measured by
    ``sensing``.

    Returns a phase image (B, 1, N, N) in [0, 1] whose global phase follows the start's (module docstring);
    ``refine="none"`` returns x_hat unchanged. Each image is refined on its own (``prkd.classical``), so the
    result does not depend on the batch.
    """
    check_refine(refine, iterations)
    if refine == "none":
        return x_hat
    start_image = x_hat[:, 0].clamp(0.0, 1.0)
    start = torch.polar(torch.ones_like(start_image), phase_range * start_image)
    solver = gerchberg_saxton if refine == "er" else raar
    result = solver(y, sensing, size=x_hat.shape[-1], init=start, iterations=iterations, tol=0.0)
    return phase_image(result.z, phase_range, reference=start_image)
