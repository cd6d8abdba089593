"""The study across sittings (prkd.views.study_records, prkd.experiments.study): its runs kept as records
report as the registry did, a later launch trains only what the records lack (a teacher known only as a
record is trained again for a missing student), every launch's wall time is kept, interrupted ones too, and
the command line writes the records. Runs are the synthetic registry of tests/test_verdict.py; nothing
trains."""

import json

import matplotlib
import pytest
import torch

import prkd
import test_study_launch
import test_verdict
from prkd.__main__ import main
from prkd.experiments import engine, plan_run_id, study, study_claims as verdict
from prkd.execution.executors import InProcess
from prkd.learning.rescoring import refined_columns
from prkd.registry.records import RunRecord
from prkd.views import experiment_report, study_checks, study_records

study_runs = test_verdict.study_runs  # the synthetic registry's fixture, shared
fake_plan = test_study_launch.fake_plan
DRIFT, FIRST_MASK = study.drift_without_offset, study.first_mask

matplotlib.use("Agg")


@pytest.fixture
def weights_read(monkeypatch, study_runs):
    """What keep_study_records reads from the weights, which the synthetic runs lack, and the refined scores
    every run keeps (refined.json)."""
    monkeypatch.setattr(study_records, "drift_without_offset", lambda run: 0.123)
    monkeypatch.setattr(study_records, "first_mask", lambda run: (torch.zeros(2, 2), torch.ones(2, 2)))
    monkeypatch.setattr(study_records, "cdp_probe",
                        lambda results, init: {"teacher_contrast": 0.5 if init == "uniform" else 0.7})
    for run in {r.id: r for r in study_runs.values()}.values():
        (run.path / "refined.json").write_text(json.dumps({"raar-200": {"refined_psnr": 30.0,
                                                                       "refined_ssim": 0.9}}))


def test_a_study_kept_as_records_reports_as_its_registry_did(weights_read, registry, tmp_path, monkeypatch):
    (registry.root / "study" / "smoke").mkdir(parents=True)
    session = {"started": "2026-01-01T00:00:00+0000", "seconds": 60.0, "executor": "ProcessPool",
               "workers": 2}
    (registry.root / "study" / "smoke" / "wall.json").write_text(json.dumps({"sessions": [session]}))
    results = study.collect_study("smoke", registry=registry)
    folder = tmp_path / "records"
    assert study_records.keep_study_records(results, folder) == 31
    rows, claims = experiment_report.runs_rows(results), verdict.verdict_rows(results)

    later = prkd.open_registry(tmp_path / "a later sitting")  # its registry is empty
    kept = study.collect_study("smoke", registry=later, records=folder)
    assert set(kept.runs) == set(results.runs) and all(isinstance(r, RunRecord) for r in kept.runs.values())
    # from here on the records answer for themselves (study_runs had stubbed these two for the registry)
    monkeypatch.setattr(study, "drift_without_offset", DRIFT)
    monkeypatch.setattr(experiment_report, "refined_columns", refined_columns)
    assert experiment_report.runs_rows(kept) == rows  # drift and refined scores from the records
    assert verdict.verdict_rows(kept) == claims  # the intervals over images need the per-image scores
    assert study_checks.cdp_probe(kept, "normal") == {"teacher_contrast": 0.7}
    e2e = kept.group("e2e")[0]
    assert [t.tolist() for t in FIRST_MASK(e2e)] == [[[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]]]
    assert "first_mask_phi" not in kept.group("teacher L_t=9")[0].extra  # seed 0's single-snapshot runs only
    assert study.wall_time("smoke", later, folder)["sessions"] == [session]
    # a run trained again (a teacher for a student still to train) does not replace its earlier result
    again = study.collect_study("smoke", registry=registry, records=folder)
    assert all(isinstance(r, RunRecord) for r in again.runs.values())


def test_a_later_launch_trains_only_what_the_records_lack(weights_read, fake_plan, registry, tmp_path):
    results = study.collect_study("smoke", registry=registry)
    missing = results.group("KD")[1]
    results.runs = {key: run for key, run in results.runs.items() if run.id != missing.id}
    folder = tmp_path / "records"
    study_records.keep_study_records(results, folder)
    later = prkd.open_registry(tmp_path / "a later sitting")
    study.train_study("smoke", registry=later, executor=InProcess(), records=folder, log=lambda m: None)
    (graph, _), = fake_plan.calls
    assert set(graph.tasks) == {missing.id, missing.teacher_id()}  # its teacher, a record, is trained again
    assert plan_run_id(study.study_configs("smoke")["KD s1"]) == missing.id


def test_an_interrupted_launch_keeps_its_wall_time(registry, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(engine, "run_plan", interrupted)
    with pytest.raises(KeyboardInterrupt):
        study.train_study("smoke", registry=registry, executor=InProcess(), log=lambda m: None)
    (session,) = study.wall_time("smoke", registry)["sessions"]
    assert session["interrupted"] and session["executor"] == "InProcess" and session["seconds"] >= 0


def test_the_command_line_records_the_complete_runs(weights_read, fake_plan, registry, tmp_path, capsys,
                                                    monkeypatch):
    folder = tmp_path / "records"
    assert main(["study", "--preset", "smoke", "--records", str(folder), "--record-only"]) == 0
    assert fake_plan.calls == [] and len(list(folder.glob("*-*.json"))) == 31
    assert "31 runs complete, 31 records written" in capsys.readouterr().out

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(engine, "run_plan", interrupted)
    assert main(["study", "--preset", "smoke", "--records", str(tmp_path / "other")]) == 130
    assert "python -m prkd study --preset smoke --record-only" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
    assert main(["study", "--preset", "smoke", "--record-only"]) == 2  # smoke has no committed records
    assert "--record-only needs a records folder: give --records DIR" in capsys.readouterr().err


def test_a_preset_plan_leaves_out_the_committed_records(weights_read, registry, tmp_path, monkeypatch):
    from prkd import reproduce
    results = study.collect_study("smoke", registry=registry)
    folder = tmp_path / "records"
    study_records.keep_study_records(results, folder)
    before = set(reproduce.preset_plan("smoke").tasks)
    from prkd.experiments import spec
    monkeypatch.setattr(spec, "committed_records", lambda experiment, preset, committed:
                        folder if (experiment, preset) == ("study", "smoke") else None)
    graph = reproduce.preset_plan("smoke")
    recorded = {r.id for r in results.runs.values()}
    assert set(graph.tasks) - recorded == before - recorded and set(graph.tasks) < before
    # a recorded run stays only as the teacher of a student still to train (notebook 04's, here)
    teachers = {graph.tasks[rid].teacher for rid in graph.tasks if rid not in recorded}
    assert set(graph.tasks) & recorded <= teachers


def test_the_reproduction_times_the_study_launch_too(registry, monkeypatch):
    from prkd import reproduce
    from prkd.execution import graph as graph_module
    from prkd.execution.graph import PlanOutcome
    monkeypatch.setattr(graph_module, "run_plan", lambda graph, registry, **kwargs: PlanOutcome(graph))
    reproduce.train_preset_plan("smoke", registry=registry)  # smoke runs notebook 07 too
    (session,) = study.wall_time("smoke", registry)["sessions"]
    assert session["executor"] == "InProcess" and not session["interrupted"] and session["failed"] == 0
    reproduce.train_preset_plan("quick", registry=registry)  # no study at quick
    assert study.wall_time("quick", registry)["sessions"] == []
