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

__all__ = ["committed_records", "plan_of", "results_folder"]

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
