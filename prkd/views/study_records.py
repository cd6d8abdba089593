"""The study's runs kept as records, so that the study can span sittings (``prkd.registry.records``).

The study takes longer than a sitting on a 2-core CPU, and a sitting's registry (every weight) does not
outlive it. ``keep_study_records`` writes one record per complete run of the registry: config, metrics with
the per-image test scores (the verdict's intervals over images), history, the refined scores (computed now if
they were not yet), and what the study's report would otherwise read from the weights (``RunRecord.extra``):

* ``mask_drift_no_offset_rad`` (``study_report.drift_without_offset``, a column of ``runs.csv``);
* for single-snapshot runs of seed 0, ``first_mask_phi0`` / ``first_mask_phi``, the first mask before and
  after training (``study_report.fig_masks``);
* for the table teachers, ``cdp_probe``: what their mean CDP asks of a fresh student
  (``study_checks.cdp_probe``).

The launches' wall times go beside the records (``prkd.experiments.study.keep_wall_time``). A run that is
already a record is copied as it is.
"""

from __future__ import annotations

from pathlib import Path

from prkd.experiments.study import keep_wall_time
from prkd.experiments.verdict import StudyResults
from prkd.learning.rescoring import refined_columns
from prkd.registry import Registry
from prkd.registry.records import RunRecord, keep_records, write_record
from prkd.views.study_checks import cdp_probe, probe_teachers
from prkd.views.study_report import drift_without_offset, first_mask

__all__ = ["keep_study_records"]


def _extra(results: StudyResults, run, probes: dict[str, str]) -> dict:
    """What the report reads from ``run``'s weights, computed now."""
    extra = {"mask_drift_no_offset_rad": drift_without_offset(run)}
    cfg = run.config()
    if cfg.train.seed == 0 and cfg.train.mode != "teacher":
        before, after = first_mask(run)
        extra["first_mask_phi0"] = [[round(float(v), 6) for v in row] for row in before.tolist()]
        extra["first_mask_phi"] = [[round(float(v), 6) for v in row] for row in after.tolist()]
    for init, name in probes.items():
        if name in results.runs and results.runs[name].id == run.id:
            extra["cdp_probe"] = cdp_probe(results, init)
    return extra


def keep_study_records(results: StudyResults, folder: Path, registry: Registry | None = None) -> int:
    """Write a record of every run of ``results`` (complete or partial: ``verdict.collect_study``) to
    ``folder`` (see the module docstring) and the launches' wall times beside them; return how many runs were
    written from the registry (not copied records)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probes = probe_teachers(results)
    written = 0
    for run in {r.id: r for r in results.runs.values()}.values():
        if isinstance(run, RunRecord):
            keep_records([run], folder)
            continue
        refined_columns(run)  # computed once, kept in the run's refined.json, then in its record
        write_record(run, folder, per_image=True, extra=_extra(results, run, probes))
        written += 1
    keep_wall_time(results.plan.preset, registry or results.registry, folder)
    return written
