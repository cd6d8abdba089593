"""A run folder: every trained model lives in ``<registry root>/runs/<run id>/`` and is reused, not retrained.

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
  which loss term. A failed run is never returned as complete; its last good checkpoint is kept;
* ``events.jsonl``   -- who trained it, when, and whether it was resumed (``prkd.registry.events``);
* ``train.lock``     -- present while a process trains it (``prkd.registry.locks``).

Every file is written atomically and loads with ``torch.load(..., weights_only=True)``. A folder whose
``config.json`` or ``metrics.json`` cannot be read, or whose stored config does not hash to its run id, is
*damaged*: :meth:`Run.problem` names the file, and reading it raises :class:`DamagedRunError`, which says to
delete the folder to train the run again. Nothing is deleted automatically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from prkd.config import Config, ConfigError, from_dict, make
from prkd.config_checks import UNROLL_FIELDS

__all__ = ["RunNotFoundError", "CorruptCheckpointError", "DamagedRunError", "load_checkpoint",
           "Run", "run_id",
           "run_id_for", "teacher_config"]

#: Bump when a change to the training code makes old runs incomparable; it is part of every run id.
REGISTRY_FORMAT = 1


class RunNotFoundError(LookupError):
    """No run with that id exists in the registry."""


class DamagedRunError(RuntimeError):
    """A run folder's ``config.json`` or ``metrics.json`` is unreadable or does not belong to its run id.

    ``detail`` names the file and what is wrong with it."""

    detail: str = ""


class CorruptCheckpointError(RuntimeError):
    """A checkpoint or model file is truncated, corrupt, or holds something other than tensors and plain
    data."""


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """``torch.load(path, weights_only=True)`` with a clear error instead of a pickle traceback.

    ``weights_only=True`` refuses anything but tensors and plain containers, so a crafted file cannot run
    code.
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


#: Fields added after runs were first registered, with the default that every earlier run had: a field at
#: this default is left out of the identity, so adding a field never renames the runs that exist.
ADDED_FIELDS: dict[tuple[str, str], object] = {("train", "steps_per_epoch"): 0,
                                               ("train", "lr_schedule"): "constant",
                                               ("net", "arch"): "unet",
                                               ("train", "teacher_backward"): "same"}


def _identity(cfg: Config, teacher_id: str | None) -> dict:
    d = cfg.to_dict()
    for (section, name), default in ADDED_FIELDS.items():
        if d[section][name] == default:
            del d[section][name]
    if cfg.init.backward != "truncated":  # K means nothing to an exact gradient
        del d["init"]["backward_iterations"]
    if cfg.net.arch != "unrolled":  # the unroll fields mean nothing to the U-Net
        for name in UNROLL_FIELDS:
            del d["net"][name]
    if cfg.train.mode != "student":  # the teacher fields mean nothing outside mode 'student'
        d["train"] = {k: v for k, v in d["train"].items()
                      if k not in ("teacher_masks", "teacher_seed", "teacher_backward")}
    return {"format": REGISTRY_FORMAT, "config": d, "teacher_run": teacher_id}


def run_id(cfg: Config, teacher_id: str | None = None) -> str:
    """Stable id of the run that ``cfg`` (and, for a student, its teacher's run) describes."""
    blob = json.dumps(_identity(cfg, teacher_id), sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(blob).hexdigest()[:10]
    return f"{cfg.train.mode}-L{cfg.optics.n_masks}-{cfg.preset}-s{cfg.train.seed}-{digest}"


def teacher_config(cfg: Config) -> Config:
    """The config of a student's teacher: same data, optics noise, initialization, U-Net and optimisation,
    with ``teacher_masks`` snapshots, seed ``teacher_seed``, mode ``teacher``, the E2E objective and, unless
    ``teacher_backward`` is "same", that backward through its initialization."""
    d = cfg.to_dict()
    d["optics"]["n_masks"] = cfg.train.teacher_masks
    if cfg.train.teacher_backward != "same":
        d["init"]["backward"] = cfg.train.teacher_backward
    d["train"].update(mode="teacher", seed=cfg.train.teacher_seed, alpha=1.0, beta=0.0, cdp_loss="paper",
                      teacher_backward="same")
    flat = {k: v for section in ("data", "optics", "init", "net", "train") for k, v in d[section].items()}
    return make(cfg.preset, **flat)


def run_id_for(cfg: Config, teacher_id: str | None = None) -> str:
    """The id of the run of ``cfg``; a student's includes its teacher's run id, by default the one its config
    implies (``teacher_config``), ``teacher_id`` only to override it. The one place a run is named
    (``Registry.run_for`` calls it)."""
    if cfg.train.mode == "student" and teacher_id is None:
        teacher_id = run_id(teacher_config(cfg))
    return run_id(cfg, teacher_id)


@dataclass(frozen=True)
class Run:
    """A run folder (``Registry.run_for(cfg)`` names the folder of a config); nothing is written until
    training."""

    path: Path

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
    def exists(self) -> bool:
        return self.config_file.is_file()

    @property
    def is_failed(self) -> bool:
        return self.failure_file.is_file()

    @property
    def is_complete(self) -> bool:
        """``metrics.json`` and ``model.pt`` exist and the run did not fail (``problem()`` checks their
        content)."""
        return self.metrics_file.is_file() and self.model_file.is_file() and not self.is_failed

    def _json(self, path: Path, required: tuple[str, ...]) -> dict:
        try:
            data = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise self._damaged(path, f"cannot be read ({type(err).__name__}: {str(err)[:120]})") from None
        missing = [k for k in required if not isinstance(data, dict) or k not in data]
        if missing:
            raise self._damaged(path, f"lacks {', '.join(missing)}")
        return data

    def _damaged(self, path: Path, what: str) -> DamagedRunError:
        err = DamagedRunError(f"run {self.id} is damaged: {path.name} {what} ({path}). Nothing was loaded "
                              f"from it; delete the folder {self.path} to train that run again.")
        err.detail = f"{path.name} {what}"
        return err

    def _record(self) -> tuple[dict, Config]:
        """``config.json`` and its config, checked: readable, a valid config, and hashing to this folder's
        run id."""
        record = self._json(self.config_file, ("config",))
        try:
            cfg = from_dict(record["config"])
        except (ConfigError, TypeError, KeyError, AttributeError, ValueError) as err:
            raise self._damaged(self.config_file, f"does not hold a valid config ({err})") from None
        expected = run_id(cfg, record.get("teacher_run"))
        if expected != self.id:
            raise self._damaged(self.config_file, f"describes run {expected}, not {self.id} (edited or "
                                                  f"copied from another folder)")
        return record, cfg

    def verify(self) -> Config:
        """The run's config once every file it has is checked; DamagedRunError naming the file otherwise
        (a missing ``config.json`` included)."""
        if not self.exists:
            raise self._damaged(self.config_file, "is missing")
        _, cfg = self._record()
        if self.metrics_file.is_file():
            self.metrics()
        if self.is_failed:
            self._json(self.failure_file, ("message",))
        return cfg

    def problem(self) -> str | None:
        """What is wrong with the folder (naming the file), or None when it is sound. Never raises."""
        try:
            self.verify()
        except DamagedRunError as err:
            return err.detail
        return None

    def failure(self) -> dict | None:
        """What ``failed.json`` says (step, loss term, message), or None for a run that did not fail."""
        return self._json(self.failure_file, ("message",)) if self.is_failed else None

    def config(self) -> Config:
        return self._record()[1]

    def teacher_id(self) -> str | None:
        return self._record()[0].get("teacher_run")

    def metrics(self) -> dict:
        return self._json(self.metrics_file, ("test_psnr", "test_ssim"))

    def events(self) -> list[dict]:
        from .events import read
        return read(self.path)

    def history(self) -> list[dict]:
        """Per-epoch rows of ``history.csv`` with numbers as floats (epoch as int)."""
        if not self.history_file.is_file():
            return []
        rows = list(csv.DictReader(io.StringIO(self.history_file.read_text())))
        return [{k: (int(v) if k == "epoch" else float(v)) for k, v in row.items() if v != ""}
                for row in rows]

    def load_system(self, device: torch.device | str = "cpu"):
        """The trained PRSystem of a complete run, in eval mode on ``device``."""
        from prkd.physics.system import PRSystem
        if not self.is_complete:
            raise RunNotFoundError(f"run {self.id} is not complete (no {self.metrics_file.name}); train it "
                                   "first")
        self._record()
        saved = load_checkpoint(self.model_file, device)
        cfg = from_dict(saved["config"])
        system = PRSystem(cfg, trainable_optics=cfg.train.mode != "random")
        system.load_state_dict(saved["state_dict"])
        return system.to(device).eval()
