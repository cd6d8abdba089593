"""The resolution experiment's plan (prkd.experiments.resolution): 96×96 runs under the ladder's schedule with
the truncated teacher, every 32×32 student with its own teacher, the doubled budgets, the ladder's runs reused
by id, and the comparisons it pairs. Nothing trains: the runs are read from the ladder's committed records or
made up."""

import types

import pytest

from prkd.config import ConfigError
from prkd.experiments import engine
from prkd.experiments.engine import plan_run_id
from prkd.experiments.ladder import ladder_runs
from prkd.experiments.resolution import RESOLUTION, resolution_runs
from prkd.experiments.verdicts import paired_scores, verdict_rows
from prkd.registry import teacher_config


def test_the_plan_trains_the_papers_resolution_with_own_teachers_and_doubled_budgets():
    runs = resolution_runs("ladder")
    big = [r for r in runs if r.group.endswith(" 96")]
    assert {(r.cfg.data.image_size, r.cfg.net.unet_depth, r.cfg.net.unet_width) for r in big} == {(96, 4, 16)}
    assert {r.steps for r in big} == {1024, 2048} and {r.cfg.train.lr_schedule for r in runs} == {"cosine"}
    assert {r.seed for r in big if r.group == "KD 96" and r.steps == 1024} == {0, 1, 2}
    assert {(r.group, r.seed) for r in big if r.steps == 2048} == {("e2e 96", 0), ("teacher 96", 0),
                                                                    ("KD 96", 0)}
    planned = {plan_run_id(r.cfg) for r in runs}
    for r in runs:
        if r.cfg.train.mode == "student":
            teacher = teacher_config(r.cfg)
            assert plan_run_id(teacher) in planned  # every teacher is a run of the plan
            assert teacher.train.seed == (0 if r.group == "KD 96" else r.seed)
            assert teacher.init.backward == ("truncated" if r.group == "KD 96" else "plain")
    small = [r for r in runs if not r.group.endswith(" 96")]
    assert {r.steps for r in small} == {2048, 4096} and {r.cfg.data.image_size for r in small} == {32}
    assert {r.seed for r in small if r.group == "KD" and r.steps == 2048} == {0, 1, 2, 3, 4}
    assert {r.seed for r in small if r.steps == 4096 and r.group == "e2e"} == {0, 1, 2}


def test_the_ladders_runs_are_the_same_runs_and_are_read_from_its_records(registry):
    ladder = {plan_run_id(r.cfg) for r in ladder_runs("ladder")}
    shared = [r for r in resolution_runs("ladder") if plan_run_id(r.cfg) in ladder]
    assert sorted(r.name for r in shared) == sorted(
        [f"{g} s{s} @2048" for g in ("e2e", "random") for s in (0, 1, 2)]
        + [f"{g} s{s} @2048" for g in ("teacher", "KD") for s in (0, 1)])
    results = engine.collect(RESOLUTION, "ladder", registry=registry)  # an empty registry: the records answer
    assert {plan_run_id(r.cfg) for r in shared} <= {run.id for run in results.runs.values()}
    assert all(run.config().data.image_size == 32 for run in results.runs.values())


def test_a_bad_preset_is_refused():
    with pytest.raises(ConfigError, match="'preset' of the resolution experiment must be one of"):
        resolution_runs("quick")


def _made_up(items) -> dict:
    """A complete run per planned run: test PSNR 20 + 0.1 seed, + 1 for a doubled budget, + 2 for KD."""
    runs = {}
    for i in items:
        psnr = 20 + 0.1 * i.seed + (1.0 if i.steps == 8 else 0.0) + (2.0 if i.group.startswith("KD") else 0)
        psnr += 0.013 * i.seed ** 2  # some spread between seeds
        metrics = {"test_psnr": psnr, "refined_psnr": psnr}
        runs[(i.steps, i.group, i.seed)] = types.SimpleNamespace(
            id=f"{i.group}-{i.seed}-{i.steps}", metrics=lambda m=metrics: m, config=lambda c=i.cfg: c)
    return runs


def test_the_comparisons_pair_doublings_and_the_seed_0_teacher():
    items = resolution_runs("smoke")
    results = engine.Results(RESOLUTION, "smoke", items, _made_up(items))
    comparisons = {(c.label, c.keys[0][1], c.scoring_a): c for c in RESOLUTION.comparisons(results)}
    doubled = comparisons[("e2e: doubled − base budget", 16, "raw")]
    assert (doubled.a, doubled.b, doubled.steps, doubled.steps_b) == ("e2e", "e2e", 8, 4)
    assert paired_scores(results, doubled)[0] == [0, 1]
    teacher = comparisons[("teacher − E2E", 24, "raw")]
    assert teacher.a_seed(1) == 0 and paired_scores(results, teacher)[0] == [0, 1]
    rows = verdict_rows(results, [c for c in comparisons.values() if c.scoring_a == "raw"])
    by = {(r["size"], r["comparison"]): r for r in rows}
    assert by[(16, "e2e: doubled − base budget")]["ΔPSNR (dB)"] == pytest.approx(1.0)
    assert by[(16, "KD − E2E")]["ΔPSNR (dB)"] == pytest.approx(2.0)
    assert {r["reading"].split(" (")[0] for r in rows} <= {"A > B", "A < B", "not resolved at this precision",
                                                          "not resolved", "equivalent within ±0.25"}


def test_a_doubled_budget_that_moved_no_group_is_converged_and_one_that_did_is_only_flat():
    from prkd.experiments.spec import PlannedRun
    from prkd.experiments.verdicts import flatness_rows

    def run(psnr: float):
        return types.SimpleNamespace(id=str(psnr), metrics=lambda: {"test_psnr": psnr},
                                     history=lambda: [{"val_psnr": 20.0}] * 10)
    items = [PlannedRun(steps, group, seed, None) for steps in (4, 8) for group in ("e2e", "KD")
             for seed in (0, 1, 2)]
    moved = {"e2e": 0.0, "KD": 1.0}  # the doubled budget's change of the end, per group
    runs = {(i.steps, i.group, i.seed): run(20 + 0.3 * i.seed + 0.01 * i.seed ** 2 * (i.steps == 8)
                                            + (moved[i.group] if i.steps == 8 else 0.0)) for i in items}
    results = engine.Results(RESOLUTION, "smoke", items, runs)
    rows = {(r["steps"], r["group"]): r for r in flatness_rows(results)}
    assert rows[(4, "e2e")]["reading"].startswith("converged: a doubling of the budget moved its end within")
    assert rows[(4, "KD")]["reading"] == "flat under its schedule"  # moved by 1 dB: not converged
    assert rows[(4, "KD")]["end moved by a doubled budget (dB)"] == pytest.approx(1.0, abs=0.02)
    assert rows[(8, "e2e")]["reading"] == "flat under its schedule"  # no budget doubles it
