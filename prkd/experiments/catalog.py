"""The one place every experiment looks up its plan by preset and names its folder under ``docs/results/``.

* ``plan_of``: a preset's plan among an experiment's plans, or a ``ConfigError`` naming the field and the
  presets allowed;
* ``results_folder``: ``docs/results/<experiment>``, the committed results of an experiment;
* ``committed_records``: its ``records`` folder where a preset is the one its committed runs were trained at.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, TypeVar

from prkd.config import ConfigError
from prkd.utils.paths import RESULTS_DIR

__all__ = ["NEW_TEACHER_FIELDS", "NEW_STUDENT_FIELDS", "committed_records", "plan_of", "results_folder"]

#: How new experiments train their multi-snapshot teachers: the gradient through the last 5 of the T power
#: iterations (``backward = "truncated"``). Adopted after its measured cosine with the exact gradient (>= 0.99
#: for L_t = 9 at 32 x 32 and 96 x 96) and a paired training check (the ladder's 512-step comparison: KD
#: -0.02 [-0.07, +0.04] dB, docs/performance.md). The committed experiments keep "plain" (their run ids).
NEW_TEACHER_FIELDS = {"backward": "truncated", "backward_iterations": 5}
#: A new experiment's students: the exact gradient for themselves, distilling a teacher of
#: ``NEW_TEACHER_FIELDS`` (at L = 1 the truncated gradient's cosine with the exact one is far below 0.99).
NEW_STUDENT_FIELDS = {"teacher_backward": "truncated", "backward_iterations": 5}

P = TypeVar("P")


def plan_of(plans: Mapping[str, P], preset: str, experiment: str = "") -> P:
    """``plans[preset]``; otherwise a ``ConfigError`` naming the field, the experiment and its presets."""
    if preset not in plans:
        of = f" of {experiment}" if experiment else ""
        raise ConfigError(f"config field 'preset'{of} must be one of {', '.join(map(repr, plans))}; "
                          f"got {preset!r}")
    return plans[preset]


def results_folder(experiment: str) -> Path:
    """``docs/results/<experiment>``: where the experiment's committed tables, figures and records live."""
    return RESULTS_DIR / experiment


def committed_records(experiment: str, preset: str, committed_preset: str) -> Path | None:
    """The experiment's committed records folder if ``preset`` is ``committed_preset`` (the preset its
    committed runs were trained at), else None."""
    return results_folder(experiment) / "records" if preset == committed_preset else None
