"""Where the repository's own folders are: its root, its notebooks and its committed results (right only in a
checkout; an installed package has none of them, and its outputs go where ``prkd.registry.default_root``
says)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["REPO_ROOT", "NOTEBOOK_DIR", "RESULTS_DIR"]

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
#: The committed results, one folder per preset or experiment (docs/results.md).
RESULTS_DIR = REPO_ROOT / "docs" / "results"
