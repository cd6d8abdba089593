"""The run registry: every trained model lives in ``<output_dir>/runs/<run id>/`` and is reused, not retrained.

A run's id is ``<mode>-L<snapshots>-<preset>-s<seed>-<hash>``, where the hash covers the *whole* config
(and, for a student, its teacher's run id), so two configs share a folder only if they describe the same
training. A run folder holds:

* ``config.json``    -- the full config (and the teacher's run id for a student);
* ``checkpoint.pt``  -- rolling training state (model, optimiser, position, history), rewritten atomically
  every epoch and on interrupt; removed once the run is complete;
* ``history.csv``    -- one row per epoch: losses, validation PSNR/SSIM, seconds;
* ``model.pt``       -- the final model (``{"config": ..., "state_dict": ...}``);
* ``metrics.json``   -- final test metrics, training time, peak memory, device. Written last: a run is
  complete exactly when it exists (and no ``failed.json`` does);
* ``failed.json``    -- written instead when training diverged (a NaN or infinite loss): which step and
  which loss term. A failed run is never returned as complete; its last good checkpoint is kept.

Every file is written atomically and loads with ``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import Config, from_dict
from .paths import output_dir

__all__ = ["RunNotFoundError", "CorruptCheckpointError", "load_checkpoint", "Run", "run_id", "runs_root", "find_run", "list_runs"]

#: Bump when a change to the training code makes old runs incomparable; it is part of every run id.
REGISTRY_FORMAT = 1


class RunNotFoundError(LookupError):
    """No run with that id exists in the registry."""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint or model file is truncated, corrupt, or holds something other than tensors and plain data."""


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """``torch.load(path, weights_only=True)`` with a clear error instead of a pickle traceback.

    ``weights_only=True`` refuses anything but tensors and plain containers, so a crafted file cannot run code.
    """
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # truncated zip, unpickling refused, wrong format...
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CorruptCheckpointError(
            f"{path} is truncated, corrupt or not a prkd file ({type(err).__name__}: {first_line[:200]}); "
            f"nothing was loaded from it. Delete it to train that run again from its last good state "
            f"(or from scratch).") from None
    if not isinstance(state, dict):
        raise CorruptCheckpointError(f"{path} does not hold a prkd checkpoint (found {type(state).__name__})")
    return state


def runs_root() -> Path:
    return output_dir() / "runs"


def _identity(cfg: Config, teacher_id: str | None) -> dict:
    d = cfg.to_dict()
    if cfg.train.mode != "student":  # the teacher fields mean nothing outside mode 'student'
        d["train"] = {k: v for k, v in d["train"].items() if k not in ("teacher_masks", "teacher_seed")}
    return {"format": REGISTRY_FORMAT, "config": d, "teacher_run": teacher_id}


def run_id(cfg: Config, teacher_id: str | None = None) -> str:
    """Stable id of the run that ``cfg`` (and, for a student, its teacher's run) describes."""
    blob = json.dumps(_identity(cfg, teacher_id), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(blob).hexdigest()[:10]
    return f"{cfg.train.mode}-L{cfg.optics.n_masks}-{cfg.preset}-s{cfg.train.seed}-{digest}"


@dataclass(frozen=True)
class Run:
    """A run folder. ``Run.for_config(cfg)`` names the folder of a config; nothing is written until training."""

    path: Path

    @classmethod
    def for_config(cls, cfg: Config, teacher_id: str | None = None) -> "Run":
        return cls(runs_root() / run_id(cfg, teacher_id))

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def checkpoint_file(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def history_file(self) -> Path:
        return self.path / "history.csv"

    @property
    def model_file(self) -> Path:
        return self.path / "model.pt"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    @property
    def failure_file(self) -> Path:
        return self.path / "failed.json"

    @property
    def is_failed(self) -> bool:
        return self.failure_file.is_file()

    @property
    def is_complete(self) -> bool:
        return self.metrics_file.is_file() and self.model_file.is_file() and not self.is_failed

    def failure(self) -> dict | None:
        """What ``failed.json`` says (step, loss term, message), or None for a run that did not fail."""
        return json.loads(self.failure_file.read_text()) if self.is_failed else None

    def config(self) -> Config:
        return from_dict(json.loads(self.config_file.read_text())["config"])

    def teacher_id(self) -> str | None:
        return json.loads(self.config_file.read_text()).get("teacher_run")

    def metrics(self) -> dict:
        return json.loads(self.metrics_file.read_text())

    def history(self) -> list[dict]:
        """Per-epoch rows of ``history.csv`` with numbers as floats (epoch as int)."""
        if not self.history_file.is_file():
            return []
        rows = list(csv.DictReader(io.StringIO(self.history_file.read_text())))
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""} for row in rows]

    def load_system(self, device: torch.device | str = "cpu"):
        """The trained PRSystem of a complete run, in eval mode on ``device``."""
        from .system import PRSystem
        if not self.is_complete:
            raise RunNotFoundError(f"run {self.id} is not complete (no {self.metrics_file.name}); train it first")
        saved = load_checkpoint(self.model_file, device)
        cfg = from_dict(saved["config"])
        system = PRSystem(cfg, trainable_optics=cfg.train.mode != "random")
        system.load_state_dict(saved["state_dict"])
        return system.to(device).eval()


def find_run(run_id_: str) -> Run:
    """The run with this id; RunNotFoundError (listing what exists) if there is none."""
    run = Run(runs_root() / run_id_)
    if not run.config_file.is_file():
        known = ", ".join(r.id for r in list_runs()) or "none"
        raise RunNotFoundError(f"run '{run_id_}' does not exist in {runs_root()}; runs there: {known}")
    return run


def list_runs(*, mode: str | None = None, preset: str | None = None, complete: bool | None = None) -> list[Run]:
    """Runs in the registry, sorted by id, optionally filtered."""
    root = runs_root()
    runs = [Run(p) for p in sorted(root.iterdir())] if root.is_dir() else []
    runs = [r for r in runs if r.config_file.is_file()]
    if mode is not None:
        runs = [r for r in runs if r.config().train.mode == mode]
    if preset is not None:
        runs = [r for r in runs if r.config().preset == preset]
    if complete is not None:
        runs = [r for r in runs if r.is_complete == complete]
    return runs
