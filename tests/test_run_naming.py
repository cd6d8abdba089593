"""One place names a run: ``registry.run_id_for`` (behind ``Registry.run_for``) works out a student's implied
teacher; plans, the graph, the training entry and the notebooks all reach it, and nothing else computes
one."""

import re
from pathlib import Path

import prkd
from prkd.execution.graph import PlanGraph
from prkd.experiments.plans import plan_run_id
from prkd.registry import Registry, run_id, teacher_config

REPO = Path(__file__).resolve().parents[1]


def _student(teacher_seed=1):
    return prkd.make("smoke", mode="student", teacher_masks=3, teacher_seed=teacher_seed, seed=2)


def test_a_students_run_names_its_implied_teacher_and_an_override_changes_it(tmp_path):
    registry = Registry.open(tmp_path)
    cfg = _student()
    implied = run_id(teacher_config(cfg))
    assert registry.run_for(cfg).id == run_id(cfg, implied) == plan_run_id(cfg)
    assert registry.run_for(cfg, "teacher-L3-smoke-s9-0123456789").id != registry.run_for(cfg).id
    # the teacher is in the name
    assert registry.run_for(_student(teacher_seed=0)).id != registry.run_for(cfg).id
    graph = PlanGraph.from_configs({"student": cfg})
    assert set(graph.tasks) == {implied, registry.run_for(cfg).id}
    e2e = prkd.make("smoke", mode="e2e")
    assert registry.run_for(e2e).id == run_id(e2e) == plan_run_id(e2e)


def test_no_second_computation_of_a_students_run_id():
    pattern = re.compile(r"run_id\(\s*teacher_config\(|run_for\(\s*teacher_config\([^)]*\)\)\.id if")
    offenders = []
    for path in [*REPO.glob("prkd/**/*.py"), *REPO.glob("notebooks/*.ipynb")]:
        if path.name != "run.py" and pattern.search(path.read_text()):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_every_committed_record_still_loads_under_its_run_id():
    """Fields added since (precision 'bfloat16', backward 'truncated' with backward_iterations,
    teacher_backward) rename no run: each record under docs/results/ hashes to the id it was committed under
    (``RunRecord`` checks it) and rebuilds a valid config."""
    from conftest import REPO
    from prkd.registry.records import read_records

    folders = sorted((REPO / "docs" / "results").glob("*/records"))
    assert len(folders) >= 3
    for folder in folders:
        records = read_records(folder)
        assert records, folder
        for record in records.values():
            assert record.config().train.mode in ("teacher", "e2e", "random", "student")
