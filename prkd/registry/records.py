"""A finished run's record: what its reports need -- config, metrics, history, refined and fair-comparison
scores -- without its weights.

An experiment longer than one sitting (the budget ladder: about 6 h on a 2-core CPU) cannot keep its registry
between sittings when each sitting starts from a fresh clone. So each finished part's runs are kept as records
beside the committed results (``write_record``: one small JSON per run, the per-image lists left out but for
the fair comparison's), and the reports read a run from the registry when it is there and from its record
otherwise (``RunRecord``). A record cannot be trained from, resumed or loaded as a system: it only answers
what a report asks of a complete run.
"""

from __future__ import annotations

import json
from pathlib import Path

from prkd.config import Config, from_dict
from prkd.registry.run import Run, run_id
from prkd.utils import atomic

__all__ = ["RunRecord", "keep_records", "write_record", "read_records"]

_PER_IMAGE = "_per_image"


def _without_per_image(d: dict) -> dict:
    return {k: v for k, v in d.items() if not k.endswith(_PER_IMAGE)}


def write_record(run: Run, folder: Path, *, per_image: bool = False, extra: dict | None = None) -> Path:
    """Write ``<folder>/<run id>.json`` for a complete ``run`` (its refined scores too, if it has any); with
    ``per_image`` its per-image test scores stay in the metrics (the study's intervals over images need them),
    and ``extra`` keeps what a report would otherwise compute from the weights (``RunRecord.extra``)."""
    refined_file = run.path / "refined.json"
    refined = json.loads(refined_file.read_text()) if refined_file.is_file() else {}
    # the fair comparison's per-image scores (prkd.experiments.fair_comparison)
    fair_file = run.path / "fair.json"
    fair = json.loads(fair_file.read_text()) if fair_file.is_file() else {}
    record = {"run_id": run.id, "config": run.config().to_dict(), "teacher_run": run.teacher_id(),
              "metrics": run.metrics() if per_image else _without_per_image(run.metrics()),
              "history": run.history(),
              "refined": {key: _without_per_image(scores) for key, scores in refined.items()},
              "fair": fair, **({"extra": extra} if extra else {})}
    return atomic.write_json(Path(folder) / f"{run.id}.json", record)


class RunRecord:
    """A complete run read from its record (``write_record``); answers ``id``, ``config()``, ``metrics()``,
    ``history()``, ``teacher_id()`` and ``refined`` like the run did."""

    is_complete = True

    def __init__(self, path: Path):
        self.path = Path(path)
        self._record = json.loads(self.path.read_text())
        self.id = self._record["run_id"]
        cfg = self.config()
        if run_id(cfg, self._record["teacher_run"]) != self.id:
            raise ValueError(f"record {self.path} does not hash to its run id {self.id}")

    def config(self) -> Config:
        return from_dict(self._record["config"])

    def metrics(self) -> dict:
        return dict(self._record["metrics"])

    def history(self) -> list[dict]:
        return [dict(row) for row in self._record["history"]]

    def teacher_id(self) -> str | None:
        return self._record["teacher_run"]

    @property
    def refined(self) -> dict:
        return self._record["refined"]

    @property
    def fair(self) -> dict:
        """The fair comparison's per-image scores by image count and seed (empty in older records)."""
        return self._record.get("fair", {})

    @property
    def extra(self) -> dict:
        """What the writer kept that a report would otherwise compute from the weights (empty if nothing)."""
        return self._record.get("extra", {})

    def load_system(self, *args, **kwargs):
        raise RuntimeError(f"run {self.id} is a record without weights ({self.path}); train it again to load "
                           "it")


def read_records(folder: Path | None) -> dict[str, RunRecord]:
    """Every record in ``folder`` by run id (none when the folder is None or missing); a file whose name
    starts with ``_`` is not a record (e.g. the study's ``_launches.json``)."""
    if folder is None or not Path(folder).is_dir():
        return {}
    records = [RunRecord(p) for p in sorted(Path(folder).glob("*.json")) if not p.name.startswith("_")]
    return {r.id: r for r in records}


def keep_records(runs, folder: Path) -> None:
    """Write a record of every complete run of ``runs`` to ``folder`` (a record read from elsewhere is copied
    as it is), so that a later sitting reports them again without retraining them."""
    for run in runs:
        if isinstance(run, RunRecord):
            atomic.write_text(Path(folder) / run.path.name, run.path.read_text())
        else:
            write_record(run, folder)
