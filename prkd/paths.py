"""Where prkd writes: ``outputs/`` at the repository root, or ``PRKD_OUTPUT_DIR`` when set."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["REPO_ROOT", "NOTEBOOK_DIR", "output_dir"]

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def output_dir() -> Path:
    """The output root (created if missing)."""
    root = Path(os.environ.get("PRKD_OUTPUT_DIR", REPO_ROOT / "outputs"))
    root.mkdir(parents=True, exist_ok=True)
    return root
