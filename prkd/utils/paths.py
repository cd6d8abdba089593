"""Where the repository's own folders are: its root and its notebooks (right only in a checkout; an
installed package has no notebooks, and its outputs go where ``prkd.registry.default_root`` says)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["REPO_ROOT", "NOTEBOOK_DIR"]

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
