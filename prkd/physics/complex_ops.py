"""Element-wise complex arithmetic that a CPU runs several times faster than torch's own, for the classical
solvers' inner loops (``prkd.classical``), which call it a few thousand times per image.

torch's ``abs`` of a complex tensor was the largest item in torch.profiler's table of a RAAR solve on a
2-core CPU; here moduli and per-item norms are formed from the real view, and a complex sum over a leading
dimension is summed as its real view (``sum_masks``). What it bought end to end: notebook 08's classical
sweep and notebook 06's refinement (``benchmarks/reproduce_wall.py``, docs/performance.md). The values agree
with torch's to float rounding (|t| as sqrt(re^2 + im^2) instead of a scaled hypot: no overflow at the
magnitudes of unit-modulus scenes and CDPs).
"""

from __future__ import annotations

import torch

__all__ = ["item_norms", "modulus", "squared_modulus", "sum_masks"]


def squared_modulus(t: torch.Tensor) -> torch.Tensor:
    """|t|^2 element-wise of a complex tensor, as a real tensor of the same shape."""
    squares = torch.view_as_real(t).square()
    return squares[..., 0] + squares[..., 1]


def modulus(t: torch.Tensor) -> torch.Tensor:
    """|t| element-wise of a complex tensor, as a real tensor of the same shape."""
    return squared_modulus(t).sqrt_()


def item_norms(t: torch.Tensor) -> torch.Tensor:
    """Euclidean norm of each item of a real or complex batch (B, ...) -> (B,)."""
    values = torch.view_as_real(t) if t.is_complex() else t
    return values.square().flatten(1).sum(dim=1).sqrt()


def sum_masks(t: torch.Tensor) -> torch.Tensor:
    """The sum over dimension 1 (the L masks) of a complex (B, L, ...) tensor -> (B, ...)."""
    if t.shape[1] == 1:
        return t[:, 0]
    return torch.view_as_complex(torch.view_as_real(t).sum(dim=1))
