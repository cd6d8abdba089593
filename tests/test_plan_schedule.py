"""The order a plan's runs start in (prkd.execution.schedule): the cost model recovers known coefficients
and the measured ones; the longest teacher-and-students chain starts first and no student before its teacher;
Dask gets that order as priorities; benchmarks/plan_wall.py's busy and idle seconds per worker. Nothing here
trains."""

from __future__ import annotations

import csv
import importlib.util
import json
import types

import pytest

import prkd
from conftest import REPO
from prkd.execution import dask_runner, graph as graph_module
from prkd.execution.graph import PlanGraph, run_plan
from prkd.execution.schedule import (STUDY_FIT, RunCost, critical_path_order, default_cost_model,
                                       fit_cost_model,
                                       fit_from_registry, priorities)
from prkd.registry import Registry, run_id

KNOWN = RunCost(seconds_per_step=0.2, seconds_per_step_per_mask=0.05)


def _student(L_t: int, seed: int):
    return prkd.make("smoke", mode="student", teacher_masks=L_t, alpha=0.5, beta=0.25, seed=seed)


def _two_chains() -> PlanGraph:
    """Teacher L_t = 3 with one student (listed first), teacher L_t = 9 with three, and an E2E run."""
    configs = {"student L_t=3 s0": _student(3, 0)}
    configs.update({f"student L_t=9 s{s}": _student(9, s) for s in range(3)})
    configs["e2e s0"] = prkd.make("smoke", mode="e2e")
    return PlanGraph.from_configs(configs)


def _teacher_of(graph: PlanGraph, L: int) -> str:
    return next(r for r, t in graph.tasks.items() if t.cfg.train.mode == "teacher"
                and t.cfg.optics.n_masks == L)


def _assert_teachers_first(graph: PlanGraph, order: list[str]) -> None:
    position = {rid: i for i, rid in enumerate(order)}
    assert sorted(order) == sorted(graph.tasks)
    for rid, task in graph.tasks.items():
        if task.teacher:
            assert position[task.teacher] < position[rid], (task.teacher, rid)


def test_the_fit_recovers_known_coefficients():
    configs = [prkd.make("smoke", mode="teacher", n_masks=L, epochs=e, image_size=size)
               for L in (1, 3, 9) for e in (1, 4) for size in (16, 32)]
    fitted = fit_cost_model((cfg, KNOWN.seconds(cfg)) for cfg in configs)
    assert fitted.seconds_per_step == pytest.approx(0.2)
    assert fitted.seconds_per_step_per_mask == pytest.approx(0.05)


def test_the_cost_counts_steps_masks_and_pixels():
    cfg = prkd.make("study", mode="teacher", n_masks=9)  # 16 epochs x (2048 // 64) steps, 32 x 32
    assert KNOWN.seconds(cfg) == pytest.approx(16 * 32 * (0.2 + 0.05 * 9))
    bigger = prkd.make("study", mode="teacher", n_masks=9, image_size=64)
    assert KNOWN.seconds(bigger) == pytest.approx(4 * KNOWN.seconds(cfg))
    assert STUDY_FIT.seconds(cfg) > STUDY_FIT.seconds(prkd.make("study", mode="e2e"))


def test_a_fit_needs_two_numbers_of_masks():
    with pytest.raises(ValueError, match="two different numbers of masks"):
        fit_cost_model([(prkd.make("smoke", mode="e2e"), 3.0), (prkd.make("smoke", mode="random"), 2.0)])


def test_the_default_coefficients_are_the_fit_of_the_study_runs():
    rows = list(csv.DictReader((REPO / "docs" / "results" / "study" / "runs.csv").open()))
    samples = [(prkd.make("study", mode="teacher", n_masks=int(r["L_t"])) if r["mode"] == "teacher"
                else prkd.make("study", mode="e2e"), float(r["train_seconds"])) for r in rows]
    fitted = fit_cost_model(samples)
    assert len(rows) == 78
    assert fitted.seconds_per_step == pytest.approx(STUDY_FIT.seconds_per_step, abs=5e-5)
    assert fitted.seconds_per_step_per_mask == pytest.approx(STUDY_FIT.seconds_per_step_per_mask, abs=5e-5)


def _fake_complete_run(registry: Registry, cfg, seconds: float) -> None:
    folder = registry.runs_dir / run_id(cfg)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"config": cfg.to_dict(), "teacher_run": None}))
    (folder / "metrics.json").write_text(json.dumps({"test_psnr": 20.0, "test_ssim": 0.5,
                                                     "train_seconds": seconds}))
    (folder / "model.pt").write_bytes(b"")


def test_the_default_model_is_fitted_to_the_registry_when_it_can_be(tmp_path):
    registry = Registry.open(tmp_path)
    assert default_cost_model(registry) == STUDY_FIT and fit_from_registry(registry) is None
    e2e = prkd.make("smoke", mode="e2e")
    _fake_complete_run(registry, e2e, KNOWN.seconds(e2e))
    assert default_cost_model(registry) == STUDY_FIT  # one number of masks cannot fix the slope
    for L in (3, 9):
        cfg = prkd.make("smoke", mode="teacher", n_masks=L)
        _fake_complete_run(registry, cfg, KNOWN.seconds(cfg))
    fitted = default_cost_model(registry, preset="smoke")
    assert fitted.seconds_per_step == pytest.approx(0.2)
    assert fitted.seconds_per_step_per_mask == pytest.approx(0.05)
    assert default_cost_model(registry, preset="quick") == STUDY_FIT  # no quick runs there
    # L = 1 taking longer than L = 9: a negative slope, refused
    slower_e2e = prkd.make("smoke", mode="random")
    _fake_complete_run(registry, slower_e2e, 100
                       * KNOWN.seconds(prkd.make("smoke", mode="teacher", n_masks=9)))
    assert fit_from_registry(registry) is None and default_cost_model(registry) == STUDY_FIT


def test_the_longest_chain_goes_first_and_no_student_before_its_teacher():
    graph = _two_chains()
    t3, t9 = _teacher_of(graph, 3), _teacher_of(graph, 9)
    assert list(graph.tasks)[0] == t3  # the plan lists the L_t = 3 chain first
    prio = priorities(graph, STUDY_FIT)
    student_cost = STUDY_FIT.seconds(_student(9, 0))
    assert prio[t9] == pytest.approx(STUDY_FIT.seconds(graph.tasks[t9].cfg) + student_cost)
    order = critical_path_order(graph, STUDY_FIT)
    assert order[:2] == [t9, t3]
    _assert_teachers_first(graph, order)
    students_of_9 = [rid for rid in order if graph.tasks[rid].teacher == t9]
    # ties keep plan order
    assert students_of_9 == [rid for rid in graph.tasks if graph.tasks[rid].teacher == t9]


def test_a_student_never_precedes_its_teacher_even_when_costs_tie():
    plan = _two_chains()
    reversed_tasks = dict(reversed(list(plan.tasks.items())))  # students listed before their teachers
    graph = PlanGraph(reversed_tasks, plan.names)
    order = critical_path_order(graph, RunCost(0.0, 0.0))
    _assert_teachers_first(graph, order)


def test_the_in_process_executor_trains_in_critical_path_order(monkeypatch, tmp_path):
    graph = _two_chains()
    trained = []

    def fake_get_or_train(cfg, *, registry, teacher_run, **kwargs):
        trained.append(run_id(cfg, teacher_run))
        return types.SimpleNamespace(id=trained[-1])
    monkeypatch.setattr(graph_module, "get_or_train", fake_get_or_train)
    registry = Registry.open(tmp_path)
    monkeypatch.setattr(Registry, "find", lambda self, rid: types.SimpleNamespace(id=rid))
    outcome = run_plan(graph, registry, progress=False, log=lambda m: None, data=object(), cost=STUDY_FIT)
    assert outcome.ok and trained == critical_path_order(graph, STUDY_FIT)


class _FakeClient:
    """Records what the Dask executor submits; every future is finished and returns its run id."""

    def __init__(self):
        self.submitted: list[tuple[tuple, dict]] = []

    def scheduler_info(self):
        return {"workers": {}}

    def submit(self, fn, *args, **kwargs):
        self.submitted.append((args, kwargs))
        rid = kwargs["key"].removeprefix("prkd-")
        return types.SimpleNamespace(status="finished", result=lambda: rid, exception=lambda: None,
                                     key=kwargs["key"])


def test_dask_gets_the_critical_path_order_as_priorities(monkeypatch, tmp_path):
    graph = _two_chains()
    registry = Registry.open(tmp_path)
    for rid in graph.tasks:  # registry.find needs the folders
        (registry.runs_dir / rid).mkdir(parents=True)
        (registry.runs_dir / rid / "config.json").write_text("{}")
    monkeypatch.setattr(dask_runner, "require_distributed", lambda: types.SimpleNamespace(as_completed=iter))
    client = _FakeClient()
    with dask_runner.DaskExecutor(client=client) as executor:
        outcome = run_plan(graph, registry, executor=executor, progress=False, log=lambda m: None,
                           cost=STUDY_FIT)
    assert outcome.ok
    order = critical_path_order(graph, STUDY_FIT)
    assert [kw["key"] for _, kw in client.submitted] == [f"prkd-{rid}" for rid in order]
    prios = [kw["priority"] for _, kw in client.submitted]
    assert prios == sorted(prios, reverse=True) and len(set(prios)) == len(prios)
    assert order[0] == _teacher_of(graph, 9)
    for args, kw in client.submitted:  # a student's task gets its teacher's future
        teacher = graph.tasks[kw["key"].removeprefix("prkd-")].teacher
        assert (args[1].key if args[1] else None) == (f"prkd-{teacher}" if teacher else None)


def _load_plan_wall():
    spec = importlib.util.spec_from_file_location("benchmark_plan_wall", REPO / "benchmarks" / "plan_wall.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_events(runs_dir, rid: str, events: list[tuple[str, int, str]]) -> None:
    folder = runs_dir / rid
    folder.mkdir(parents=True)
    lines = [json.dumps({"event": kind, "host": "h", "pid": pid, "time": f"2026-12-01T10:{clock}+0000",
                         "run_id": rid}) for kind, pid, clock in events]
    (folder / "events.jsonl").write_text("\n".join(lines[:1] + ['{"event": "torn'] + lines[1:]) + "\n")


def test_plan_wall_counts_each_workers_busy_and_idle_seconds(tmp_path):
    plan_wall = _load_plan_wall()
    runs = tmp_path / "runs"
    _write_events(runs, "teacher-a", [("started", 1, "00:00"), ("completed", 1, "01:40")])  # 100 s on pid 1
    _write_events(runs, "student-b", [("started", 2, "00:05"), ("completed", 2, "00:35"),  # 30 s on pid 2
                                      ("waited", 1, "01:41")])
    _write_events(runs, "e2e-c", [("started", 2, "00:40"),  # pid 2 is killed: its open span is not counted
                                  ("recovered", 1, "01:45"), ("resumed", 1, "01:45"),
                                  ("completed", 1, "02:05")])
    busy = plan_wall.busy_seconds(runs)
    assert busy == {"h:1": pytest.approx(120.0), "h:2": pytest.approx(30.0)}
    assert plan_wall.idle_seconds(busy, 150.0) == {"h:1": 30.0, "h:2": 120.0}
    assert plan_wall.start_order(runs) == ["teacher-a", "student-b", "e2e-c"]
