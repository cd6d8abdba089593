"""The study's runs kept as records, so that the study can span sittings (``prkd.registry.records``).

The study takes longer than a sitting on a 2-core CPU, and a sitting's registry (every weight) does not
outlive it. ``keep_study_records`` writes one record per complete run of the registry: config, metrics with
the per-image test scores (the verdict's intervals over images), history, the refined scores (computed now if
they were not yet), and what the study's report would otherwise read from the weights (``RunRecord.extra``):

* ``mask_drift_no_offset_rad`` (``study.drift_without_offset``, a column of ``runs.csv``);
* for single-snapshot runs of seed 0, ``first_mask_phi0`` / ``first_mask_phi``, the first mask before and
  after training (``study_report.fig_masks``);
* for the table teachers, ``cdp_probe``: what their mean CDP asks of a fresh student
  (``study_checks.cdp_probe``).

The records are written by the one records step of every experiment
(``prkd.views.experiment_report.keep_experiment_records``, which puts the launches' wall times beside them);
a run that is already a record is copied as it is.
"""

from __future__ import annotations

from pathlib import Path

from prkd.experiments.engine import Results
from prkd.experiments.study import drift_without_offset, first_mask
from prkd.views.experiment_report import keep_experiment_records
from prkd.views.study_checks import cdp_probe, probe_teachers

__all__ = ["keep_study_records", "study_record_extra"]


def study_record_extra(results: Results, run) -> dict:
    """What the study's report reads from ``run``'s weights, computed now."""
    extra = {"mask_drift_no_offset_rad": drift_without_offset(run)}
    cfg = run.config()
    if cfg.train.seed == 0 and cfg.train.mode != "teacher":
        before, after = first_mask(run)
        extra["first_mask_phi0"] = [[round(float(v), 6) for v in row] for row in before.tolist()]
        extra["first_mask_phi"] = [[round(float(v), 6) for v in row] for row in after.tolist()]
    for init, group in probe_teachers(results).items():
        if 0 in results.group(group) and results.group(group)[0].id == run.id:
            extra["cdp_probe"] = cdp_probe(results, init)
    return extra


def keep_study_records(results: Results, folder: Path) -> int:
    """Write a record of every run of ``results`` (complete or partial: ``study.collect_study``) to ``folder``
    (see the module docstring) and the launches' wall times beside them; return how many runs were written
    from the registry (not copied records)."""
    return keep_experiment_records(results, folder, study_record_extra)
