"""Where prkd writes: ``outputs/`` at the repository root, or ``PRKD_OUTPUT_DIR`` when set."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["REPO_ROOT", "NOTEBOOK_DIR", "OutputNotWritableError", "output_dir"]

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO_ROOT / "notebooks"


class OutputNotWritableError(OSError):
    """The output folder cannot be created or written."""


def output_dir() -> Path:
    """The output root, created if missing and checked to be writable.

    Raises:
        OutputNotWritableError: naming the folder and how to choose another.
    """
    root = Path(os.environ.get("PRKD_OUTPUT_DIR", REPO_ROOT / "outputs"))
    try:
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=root):
            pass
    except OSError as err:
        raise OutputNotWritableError(f"output folder {root} cannot be written ({type(err).__name__}: {err}); "
                                     f"set PRKD_OUTPUT_DIR to a writable folder") from None
    return root
