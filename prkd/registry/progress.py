"""What the terminal that started a reproduction shows while the runs train elsewhere: in a notebook's kernel
under papermill, in worker processes or on Dask workers, whose own progress bars the terminal never sees.

``PlanProgress`` reads the registry's run folders every few seconds from a thread of the watching process
and keeps one bar up to date: the plan's runs complete out of its total, and the run training now with its
epoch (``history.csv`` holds a row per finished epoch). It reads files only; it never locks or writes.
"""

from __future__ import annotations

import threading
from pathlib import Path

from tqdm.auto import tqdm

from prkd.registry.run import Run
from prkd.registry.store import Registry

__all__ = ["PlanProgress"]


class PlanProgress:
    """A bar of ``run_ids``' training, read from ``registry`` every ``every`` seconds while in a ``with``."""

    def __init__(self, registry: Registry, run_ids: list[str], *, desc: str = "training", every: float = 2.0,
                 disable: bool = False):
        self.runs = [Run(Path(registry.runs_dir) / rid) for rid in run_ids]
        self.desc, self.every, self.disable = desc, every, disable
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bar = None

    def poll(self) -> tuple[int, str | None]:
        """Runs complete, and the run in training now as ``"<run id>, epoch e/E"`` (None if none is)."""
        complete = sum(run.is_complete for run in self.runs)
        started = [run for run in self.runs if not run.is_complete and (run.path / "events.jsonl").is_file()]
        if not started:
            return complete, None
        run = max(started, key=lambda r: (r.path / "events.jsonl").stat().st_mtime)
        try:
            epochs = run.config().train.epochs
            done = sum(1 for _ in open(run.history_file)) - 1 if run.history_file.is_file() else 0
        except Exception:  # a file being written at this moment, or damaged: the display never raises
            return complete, run.id
        return complete, f"{run.id}, epoch {min(done + 1, epochs)}/{epochs}"

    def refresh(self) -> None:
        complete, current = self.poll()
        self.bar.n = complete
        self.bar.set_postfix_str(current or "", refresh=False)
        self.bar.refresh()

    def _watch(self) -> None:
        while not self._stop.wait(self.every):
            self.refresh()

    def __enter__(self) -> "PlanProgress":
        self.bar = tqdm(total=len(self.runs), desc=self.desc, unit="run", disable=self.disable, position=2,
                        leave=False)
        self.refresh()
        self._thread = threading.Thread(target=self._watch, name="prkd-plan-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.refresh()
        self.bar.close()
