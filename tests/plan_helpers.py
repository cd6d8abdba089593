"""A small plan of runs and its failure-rule check, shared by the tests of every executor
(tests/test_executors.py, tests/test_dask.py)."""

from __future__ import annotations

import json

import torch

import prkd
from prkd.execution.graph import PlanGraph, PlanOutcome, run_plan
from prkd.registry import Registry

SMALL = dict(n_train=64, n_val=32, n_test=32, batch_size=16, epochs=2)


def two_teacher_plan(**overrides) -> PlanGraph:
    """Teachers with L_t = 1 and 3 and a student of each (the students only name their teachers)."""
    kw = {**SMALL, **overrides}
    configs = {f"student L_t={L}": prkd.make("smoke", mode="student", teacher_masks=L, alpha=0.5, beta=0.25,
                                             **kw) for L in (1, 3)}
    configs["teacher L_t=3"] = prkd.make("smoke", mode="teacher", n_masks=3, **kw)
    return PlanGraph.from_configs(configs)


def damage_a_teacher(graph: PlanGraph, registry) -> str:
    """Give the plan's first teacher a folder whose config.json describes another run (refused, not retried);
    return its run id."""
    teacher = next(t.run_id for t in graph.tasks.values() if t.cfg.train.mode == "teacher")
    damaged = registry.runs_dir / teacher
    damaged.mkdir(parents=True)
    other = prkd.make("smoke", mode="e2e", **SMALL)
    (damaged / "config.json").write_text(json.dumps({"config": other.to_dict()}))
    return teacher


def assert_only_its_dependents_skipped(outcome: PlanOutcome, graph: PlanGraph, teacher: str) -> None:
    """The failure rule: the damaged teacher failed, its student was skipped, everything else finished."""
    assert list(outcome.failed) == [teacher] and "DamagedRunError" in outcome.failed[teacher]
    student = next(t.run_id for t in graph.tasks.values() if t.teacher == teacher)
    assert list(outcome.skipped) == [student] and "its teacher" in outcome.skipped[student]
    assert set(outcome.complete) == set(graph.tasks) - {teacher, student}
    assert f"failed: {graph.label(teacher)}" in outcome.summary()


def assert_same_as_in_process(outcome: PlanOutcome, graph: PlanGraph, root) -> None:
    """Every run of ``outcome`` (trained in one-thread workers) scores, image by image, as the same plan
    trained in this process with one thread (the same float kernels) into the registry at ``root``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        here = run_plan(graph, Registry.open(root), progress=False, log=lambda m: None)
    finally:
        torch.set_num_threads(threads)
    for rid, run in here.complete.items():
        a, b = run.metrics(), outcome.complete[rid].metrics()
        assert a["test_psnr_per_image"] == b["test_psnr_per_image"], rid
