"""The registry: one output root, opened once and passed to whatever trains, reads or writes results.

``Registry.open(root)`` creates the root (and checks it can be written) once; ``registry.run_for(cfg)`` names
a config's run folder under ``root/runs``, ``registry.find(run_id)`` and ``registry.runs()`` read what is
there, and ``registry.folder("figures", preset)`` gives the other output folders. ``registry.entries()``
lists every run folder with its state, a damaged one included (named, never fatal).

Where the root is by default -- ``PRKD_OUTPUT_DIR``, else ``outputs/`` of the repository checkout, else (an
installed package) a folder in the user's data directory -- is decided in one place, ``default_root``,
which only the outer edges call: the CLI, the notebooks' parameter cells (``open_registry(output_dir)``)
and the scripts.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from prkd.config import Config
from prkd.utils.paths import REPO_ROOT
from . import events
from .locks import RunLock
from .run import DamagedRunError, Run, RunNotFoundError, run_id_for

__all__ = ["OutputNotWritableError", "Registry", "RunEntry", "default_root", "open_registry"]


class OutputNotWritableError(OSError):
    """The output folder cannot be created or written."""


def _is_checkout(repo: Path) -> bool:
    return (repo / "pyproject.toml").is_file() and (repo / "notebooks").is_dir() and (repo / "prkd").is_dir()


def default_root(environ: dict | None = None) -> tuple[Path, str]:
    """The default output root and why it was chosen (a sentence for the user)."""
    environ = os.environ if environ is None else environ
    if environ.get("PRKD_OUTPUT_DIR"):
        return Path(environ["PRKD_OUTPUT_DIR"]), "PRKD_OUTPUT_DIR"
    if _is_checkout(REPO_ROOT):
        return REPO_ROOT / "outputs", "the repository checkout"
    data_home = Path(environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data_home / "prkd", ("no repository checkout (prkd is installed as a package), so the user's "
                                "data folder is used; set PRKD_OUTPUT_DIR (or pass --output-dir) to choose "
                                "another")


def open_registry(root: str | os.PathLike | None = None, *,
                  log: Callable[[str], None] | None = None) -> "Registry":
    """``Registry.open(root)``, or at the default root (``default_root``) when ``root`` is None or empty.

    ``log`` is told where an installed package writes (default: print), so the choice is never silent.
    """
    if root:
        return Registry.open(root)
    path, why = default_root()
    if why.startswith("no repository"):
        (log or print)(f"prkd: outputs go to {path}: {why}")
    return Registry.open(path)


@dataclass(frozen=True)
class RunEntry:
    """One folder under ``runs/``: its state (complete, incomplete, failed, training, damaged), the problem
    of a damaged one (naming the file), a one-line summary of its events, and its config (None when
    damaged)."""

    run: Run
    state: str
    problem: str | None
    history: str
    config: Config | None = None


@dataclass(frozen=True)
class Registry:
    """The output root and its run registry (``root/runs/<run id>/``). Build it with ``Registry.open``."""

    root: Path

    @classmethod
    def open(cls, root: str | os.PathLike) -> "Registry":
        """Create ``root`` if missing and check that it can be written.

        Raises:
            OutputNotWritableError: naming the folder and how to choose another.
        """
        root = Path(root).expanduser().resolve()
        try:
            (root / "runs").mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=root):
                pass
        except OSError as err:
            raise OutputNotWritableError(f"output folder {root} cannot be written ({type(err).__name__}: "
                                         f"{err}); pass another folder (--output-dir, output_dir=) or set "
                                         f"PRKD_OUTPUT_DIR") from None
        return cls(root)

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def folder(self, *parts: str) -> Path:
        """``root/<parts>``, created."""
        path = self.root.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run_for(self, cfg: Config, teacher_id: str | None = None) -> Run:
        """The folder of the run that ``cfg`` describes; a student's names the teacher its config implies
        (``teacher_id`` only to override it): ``run.run_id_for``."""
        return Run(self.runs_dir / run_id_for(cfg, teacher_id))

    def lock(self, run: Run) -> RunLock:
        return RunLock(run.path)

    def find(self, run_id_: str) -> Run:
        """The run with this id; RunNotFoundError (listing what exists) if there is none."""
        run = Run(self.runs_dir / run_id_)
        if not run.exists:
            known = ", ".join(r.id for r in self.runs()) or "none"
            raise RunNotFoundError(f"run '{run_id_}' does not exist in {self.runs_dir}; runs there: {known}")
        return run

    def _folders(self) -> list[Run]:
        root = self.runs_dir
        return [Run(p) for p in sorted(root.iterdir()) if p.is_dir()] if root.is_dir() else []

    def runs(self, *, mode: str | None = None, preset: str | None = None,
             complete: bool | None = None) -> list[Run]:
        """Sound runs, sorted by id, optionally filtered; damaged folders are left out (``entries`` names
        them)."""
        out = []
        for run in self._folders():
            try:
                cfg = run.verify()
            except DamagedRunError:
                continue
            if ((mode is None or cfg.train.mode == mode) and (preset is None or cfg.preset == preset)
                    and (complete is None or run.is_complete == complete)):
                out.append(run)
        return out

    def entries(self) -> list[RunEntry]:
        """Every run folder with its state and config; a damaged one is named, never fatal."""
        out = []
        for run in self._folders():
            cfg = problem = None
            try:
                cfg = run.verify()
            except DamagedRunError as err:
                problem = err.detail
            if problem is not None:
                state = "damaged"
            elif RunLock(run.path).current() is not None:
                state = "training"
            else:
                state = "failed" if run.is_failed else "complete" if run.is_complete else "incomplete"
            out.append(RunEntry(run, state, problem, events.summary(events.read(run.path)), cfg))
        return out

    def check(self, run: Run) -> Run:
        """``run`` if its folder is absent, or started but not yet written (no files of a run), or sound;
        DamagedRunError naming the file otherwise."""
        if run.path.is_dir() and (run.exists or run.metrics_file.is_file()):
            run.verify()
        return run
