"""The benchmark's shapes per preset, the configs of its variants, and what one group of figures runs at."""

from __future__ import annotations

from dataclasses import dataclass

import prkd

#: preset -> (overrides giving the benchmark's shapes, the teacher mask counts L_t measured)
SHAPES = {
    "smoke": (dict(), (3,)),
    "quick": (dict(batch_size=64), (9,)),
    "paper": (dict(batch_size=64), (9, 15)),
}


def masks_measured(preset: str) -> tuple[int, ...]:
    """The teacher mask counts L_t measured at ``preset``."""
    return SHAPES[preset][1]


def batch_size(preset: str) -> int:
    """Images per training step (and per inference batch) at ``preset``'s benchmark shapes."""
    return SHAPES[preset][0].get("batch_size") or prkd.make(preset).train.batch_size


def variant_config(preset: str, mode: str, L: int, **extra) -> prkd.Config:
    """The config of one variant: a teacher with ``L`` masks, a single-mask ``e2e`` / ``random`` model, or a
    student distilled from an ``L``-mask teacher."""
    overrides, _ = SHAPES[preset]
    student = dict(alpha=0.5, beta=0.25, teacher_masks=L) if mode == "student" else {}
    return prkd.make(preset, mode=mode, n_masks=L if mode == "teacher" else 1, **overrides,
                     **student, **extra)


@dataclass(frozen=True)
class GroupSettings:
    """What one group of figures is measured at: the preset's shapes with ``L`` teacher masks, ``steps`` timed
    calls per measurement and ``repeats`` fresh processes (alternations of the compared variants)."""

    preset: str
    L: int
    steps: int
    repeats: int

    @property
    def suffix(self) -> str:
        """Appended to every figure's name when the preset measures more than one L_t (``_L9``, ``_L15``)."""
        return "" if len(masks_measured(self.preset)) == 1 else f"_L{self.L}"

    def variant(self, kind: str, **fields) -> dict:
        """The JSON spec of one variant (see ``variants.build``)."""
        return {"kind": kind, "preset": self.preset, "L": self.L, "steps": self.steps, **fields}
