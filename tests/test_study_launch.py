"""The study's launch (prkd.experiments.study.train_study): the whole plan as one graph on an executor (two
one-thread worker processes by default), each launch's wall time recorded, bad input refused by the function
and the command line with nothing written. Nothing here trains: run_plan is replaced by a stub where a plan
would."""

import json
import math
import types

import pytest

from prkd.__main__ import main
from prkd.config import ConfigError
from prkd.experiments import engine, plan_run_id, study
from prkd.execution.graph import PlanOutcome
from prkd.execution.executors import InProcess, ProcessPool
from prkd.learning import RunFailedError


def _nothing_written(registry):
    return not any(registry.runs_dir.iterdir()) and not (registry.root / "study").exists()


@pytest.fixture
def fake_plan(monkeypatch):
    """run_plan replaced by a stub that records its graph and executor; ``failing`` runs are reported
    failed."""
    calls, failing = [], []

    def fake_run_plan(graph, registry, *, executor, **kwargs):
        calls.append((graph, executor))
        outcome = PlanOutcome(graph)
        for rid in graph.tasks:
            if rid in failing:
                outcome.failed[rid] = "TrainingDiverged: loss became nan"
            else:
                outcome.complete[rid] = types.SimpleNamespace(id=rid)
        return outcome
    monkeypatch.setattr(engine, "run_plan", fake_run_plan)
    return types.SimpleNamespace(calls=calls, failing=failing)


@pytest.mark.parametrize("preset", ["fast", "quick", "paper"])
def test_an_unknown_study_preset_is_refused_naming_the_field(preset, fake_plan, registry):
    for call in (lambda: study.study_configs(preset), lambda: study.train_study(preset, registry=registry)):
        with pytest.raises(ConfigError, match="'preset' of the study must be one of 'smoke', 'study'; got "
                                              f"'{preset}'"):
            call()
    assert fake_plan.calls == [] and _nothing_written(registry)


def test_the_study_is_one_graph_on_two_one_thread_processes_by_default(fake_plan, registry):
    study.train_study("smoke", registry=registry, log=lambda m: None)
    (graph, executor), = fake_plan.calls
    distinct = {plan_run_id(c) for c in study.study_configs("smoke").values()}
    assert set(graph.tasks) == distinct  # no shards, no barrier: every run in one graph
    assert isinstance(executor, ProcessPool) and (executor.processes, executor.torch_threads) == (2, 1)


def test_each_launch_is_recorded_and_wall_time_sums_them(fake_plan, registry):
    assert study.wall_time("smoke", registry) == {"sessions": [], "total_seconds": 0}
    first = study.train_study("smoke", registry=registry, executor=InProcess(), log=lambda m: None)
    (session,) = first["sessions"]
    assert session["executor"] == "InProcess" and session["failed"] == 0 and session["complete"] > 0
    graph = fake_plan.calls[0][0]
    fake_plan.failing.append(next(iter(graph.tasks)))
    with pytest.raises(RunFailedError, match="the 'smoke' study did not finish"):
        study.train_study("smoke", registry=registry, executor=InProcess(), log=lambda m: None)
    wall = study.wall_time("smoke", registry)
    assert [s["failed"] for s in wall["sessions"]] == [0, 1]  # a failed launch is recorded too
    assert wall["total_seconds"] == pytest.approx(sum(s["seconds"] for s in wall["sessions"]))
    assert study.wall_time("study", registry) == {"sessions": [], "total_seconds": 0}  # per preset


def test_wall_time_reads_the_sessions_file(registry):
    path = registry.root / "study" / "smoke" / "wall.json"
    path.parent.mkdir(parents=True)
    sessions = [{"started": "2024-01-01T00:00:00+0000", "seconds": 61.5, "workers": 2, "exit_codes": [0, 0]},
                {"started": "2024-01-02T00:00:00+0000", "seconds": 120.25,
                 "executor": "ProcessPool", "workers": 2}]
    path.write_text(json.dumps({"sessions": sessions}))
    wall = study.wall_time("smoke", registry)
    assert wall["sessions"] == sessions and math.isclose(wall["total_seconds"], 181.75)


@pytest.mark.parametrize("argv, message", [
    (["--preset", "fast"], "'preset' of the study"),
    (["--preset", "smoke", "--processes", "0"], "'processes' must be an integer in [1, 64]"),
    (["--preset", "smoke", "--workers", "0"], "'workers' must be an integer in [1, 256]"),
])
def test_cli_reports_a_bad_study_argument_and_writes_nothing(argv, message, capsys, fake_plan, registry):
    assert main(["study", *argv]) == 2
    assert message in capsys.readouterr().err
    assert fake_plan.calls == [] and _nothing_written(registry)


def test_cli_refuses_two_ways_to_run(capsys, fake_plan, registry):
    with pytest.raises(SystemExit) as exc:
        main(["study", "--preset", "smoke", "--processes", "2", "--workers", "2"])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
    assert fake_plan.calls == [] and _nothing_written(registry)


def test_cli_passes_the_processes_on(fake_plan, registry):
    assert main(["study", "--preset", "smoke", "--processes", "1"]) == 0
    assert main(["study", "--preset", "smoke"]) == 0
    assert [executor.processes for _, executor in fake_plan.calls] == [1, 2]
