"""The budget ladder's plan (rungs, seeds, pairing, order), the verdict's wording rules, the refined
rescoring and its command, and the fair comparison's two scorings. The trained smoke ladder itself runs in
notebook 09's test."""

import json
import math

import pytest

import prkd
from prkd.config import ConfigError
from prkd.data import load_splits
from prkd.experiments import engine, ladder
from prkd.experiments.fair_comparison import FAIR_FILE, fair_rows
from prkd.experiments.readings import reading as _reading
from prkd.experiments.stats import PairedResult
from prkd.learning import get_or_train
from prkd.learning.rescoring import REFINED_FILE, refined_test_scores


def test_the_ladder_spans_16x_in_steps_on_the_full_split_with_the_seeds_the_issue_asks():
    runs = ladder.ladder_runs("ladder")
    steps = sorted({r.steps for r in runs})
    assert steps == [128, 512, 2048] and steps[-1] / steps[0] >= 16
    assert {r.cfg.data.n_train for r in runs} == {30_000}
    assert {r.cfg.train.lr_schedule for r in runs} == {"cosine"}
    for s in steps:
        core = {g: {r.seed for r in runs if r.steps == s and r.group == g} for g in ("e2e", "random", "KD")}
        assert len({frozenset(v) for v in core.values()}) == 1  # paired: the same seeds in every group
        assert len(core["e2e"]) >= (3 if s == steps[-1] else 5)
    top = [r for r in runs if r.steps == steps[-1]]
    assert {r.seed for r in top if r.group == "teacher"} == {0, 1}
    assert {(r.seed, r.cfg.train.teacher_seed) for r in top if r.group == "KD"} == {(0, 0), (1, 1), (2, 0)}
    assert {r.cfg.train.epochs for r in top} == {32} and {r.cfg.epoch_steps for r in top} == {64}
    assert all(r.cfg.train.alpha == 0.5 and r.cfg.train.beta == 0.25 for r in runs if r.group == "KD")


def test_the_extras_sit_on_their_rungs_and_the_order_is_cheapest_first():
    runs = ladder.ladder_runs("ladder")
    sweep = [r for r in runs if r.group.startswith("KD normalized")]
    assert {r.steps for r in sweep} == {512} and {r.cfg.train.beta for r in sweep} == {0.003, 0.01, 0.03, 0.1}
    assert all(r.cfg.train.cdp_loss == "normalized" and r.cfg.sigma == pytest.approx(0) for r in sweep)
    noisy = [r for r in runs if r.group.endswith("noisy")]
    assert {r.steps for r in noisy} == {512}
    assert {(r.cfg.optics.noise, r.cfg.optics.photons) for r in noisy} == {("poisson", 100.0)}
    assert {r.steps for r in runs if r.group in ("L_cdp only", "L_feat only")} == {2048}
    assert [r.steps for r in runs] == sorted(r.steps for r in runs)
    for i, r in enumerate(runs):  # a student's teacher is listed before it
        if r.cfg.train.mode == "student":
            assert any(t.group.startswith("teacher") and t.seed == r.cfg.train.teacher_seed
                       and t.steps == r.steps
                       and t.cfg.optics.noise == r.cfg.optics.noise for t in runs[:i])
    assert len({r.name for r in runs}) == len(runs)


def test_the_fair_comparison_needs_the_top_trained_triples_of_one_seed_only():
    for preset in ("smoke", "ladder"):
        runs = ladder.fair_comparison_runs(preset, seed=1)
        tops = {noise: max(r.steps for r in ladder.ladder_runs(preset) if r.group == f"e2e{noise}")
                for noise in ("", " noisy")}
        assert sorted(r.group for r in runs) == sorted(["e2e", "KD", "random", "e2e noisy", "KD noisy",
                                                        "random noisy"])
        assert all(r.seed == 1 and r.steps == tops[" noisy" if "noisy" in r.group else ""] for r in runs)
    assert {r.steps for r in ladder.fair_comparison_runs("ladder")} == {512, 2048}  # noisy rung, top rung


def test_a_bad_ladder_preset_is_refused(registry):
    with pytest.raises(ConfigError, match="'preset' of the ladder must be one of 'ladder', 'smoke'"):
        engine.train(ladder.LADDER, "quick", registry=registry)


def test_committed_records_serve_only_the_preset_they_were_trained_at():
    from prkd.experiments.study import STUDY
    from prkd.experiments.unrolled import UNROLLED
    from prkd.utils.paths import RESULTS_DIR

    for spec, preset in ((ladder.LADDER, "ladder"), (UNROLLED, "ladder"), (STUDY, "study")):
        assert spec.committed_records(preset) == RESULTS_DIR / spec.name / "records"
        for other in {"smoke", "quick", "study", "ladder"} - {preset}:
            assert spec.committed_records(other) is None


def test_the_verdict_names_every_group_a_rung_has_not_completed():
    from prkd.experiments.spec import PlannedRun
    from prkd.views.experiment_report import missing_groups

    items = [PlannedRun(steps, group, seed, None) for steps in (128, 2048)
             for group in ("e2e", "L_cdp only", "L_feat only") for seed in (0, 1, 2)]
    done = {(i.steps, i.group, i.seed): None for i in items
            if i.steps == 128 or i.group == "e2e" or (i.group, i.seed) == ("L_cdp only", 0)}
    text = missing_groups(engine.Results(ladder.LADDER, "smoke", items, done))
    assert text == (" Not reported, runs missing: L_cdp only at 2048 steps (1 of 3 seeds); "
                    "L_feat only at 2048 steps (0 of 3 seeds).")
    everything = {(i.steps, i.group, i.seed): None for i in items}
    assert missing_groups(engine.Results(ladder.LADDER, "smoke", items, everything)) == ""


def test_the_reading_claims_no_more_than_holm_and_tost_allow():
    r = PairedResult(-0.8, -1.2, -0.4, 5, 0.004, "t over seeds")
    assert _reading(r, 0.02, "equivalence not shown") == "A < B (Holm p < 0.05)"
    assert _reading(r, 0.09, "equivalence not shown") == "A < B before correction only (Holm p = 0.09)"
    tie = PairedResult(0.02, -0.1, 0.14, 5, 0.7, "t over seeds")
    assert _reading(tie, 1.0, "equivalent within ±0.25") == "equivalent within ±0.25"
    assert _reading(tie, 1.0, "equivalence not shown") == "not resolved at this precision"
    assert _reading(PairedResult(0.1, math.nan, math.nan, 1, math.nan, "t"), math.nan,
                    "") == "not resolved (too few seeds)"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    registry = prkd.open_registry(tmp_path_factory.mktemp("rescoring"))
    cfg = prkd.make("smoke", mode="e2e", n_train=64, n_val=32, n_test=32, batch_size=16, epochs=1)
    data = load_splits(cfg.data, download=False)
    return registry, get_or_train(cfg, registry=registry, data=data, progress=False, log=lambda m: None), data


def test_rescoring_reproduces_the_final_test_and_is_kept_in_the_run(tiny_run):
    registry, run, data = tiny_run
    scores = refined_test_scores(run, refine="raar", iterations=20, data=data)
    assert scores["psnr"] == pytest.approx(run.metrics()["test_psnr"], abs=1e-3)
    assert scores["n_test"] == 32 and len(scores["refined_psnr_per_image"]) == 32
    assert (run.path / REFINED_FILE).is_file()
    assert refined_test_scores(run, refine="raar", iterations=20) == scores  # read back, not recomputed
    with pytest.raises(ConfigError, match=r"'iterations' \(of the refinement\) must be an integer in \[1, "
                                          r"100000\]"):
        refined_test_scores(run, refine="raar", iterations=0)


def test_the_evaluate_command_prints_both_scores_and_refuses_bad_input(tiny_run, prkd_cli):
    registry, run, _ = tiny_run
    result = prkd_cli("evaluate", run.id, "--refine", "er", "--iterations", "10", root=registry.root)
    assert result.returncode == 0 and "refined (er, 10 iterations, no oracle)" in result.stdout
    bad = prkd_cli("evaluate", run.id, "--refine", "gs", root=registry.root)
    assert bad.returncode == 2 and "'refine' must be one of 'none', 'er', 'raar'; got 'gs'" in bad.stderr


def test_the_fair_comparison_scores_every_method_both_ways_on_the_same_images(tiny_run):
    _, run, data = tiny_run
    rows = fair_rows({"e2e": run}, data.test, n_images=16, batch=8)
    again = fair_rows({"e2e": run}, data.test, n_images=16, batch=8)  # read back from the run's folder
    assert (run.path / FAIR_FILE).is_file() and json.dumps(again) == json.dumps(rows)  # (json: nan == nan)
    methods = {r["method"] for r in rows}
    assert {"learned (U-Net)", "RAAR 200", "ER 200", "zero phase"} <= methods
    assert len(rows) == 2 * len(methods)
    learned = {r["scoring"]: r for r in rows if r["method"] == "learned (U-Net)"}
    # the best offset can only help
    assert learned["oracle"]["PSNR (dB)"] >= learned["raw"]["PSNR (dB)"] - 0.01
    assert all(r["images"] == 16 for r in rows)
    raar = {r["scoring"]: r for r in rows if r["method"] == "RAAR 200"}
    assert raar["oracle"]["PSNR (dB)"] >= raar["raw"]["PSNR (dB)"] - 0.01 and raar["raw"]["low"] != ""


def test_a_record_reports_a_run_as_the_registry_did_and_stands_in_for_a_missing_one(tiny_run, tmp_path):
    from prkd.registry.records import RunRecord, read_records, write_record
    registry, run, data = tiny_run
    refined_test_scores(run, refine="raar", iterations=200, data=data)
    path = write_record(run, tmp_path / "records")
    record = RunRecord(path)
    assert record.id == run.id and record.config() == run.config() and record.history() == run.history()
    assert record.metrics()["test_psnr"] == run.metrics()["test_psnr"]
    assert "test_psnr_per_image" not in record.metrics()  # records stay small
    assert refined_test_scores(record, refine="raar", iterations=200)["refined_psnr"] == pytest.approx(
        refined_test_scores(run, refine="raar", iterations=200)["refined_psnr"])
    with pytest.raises(KeyError, match="has no er-7 scores"):
        refined_test_scores(record, refine="er", iterations=7)
    with pytest.raises(RuntimeError, match="a record without weights"):
        record.load_system()
    # the fair comparison's scores travel in the record
    fair_rows({"e2e": run}, data.test, n_images=8, batch=8)
    record = RunRecord(write_record(run, tmp_path / "records"))
    assert json.dumps(fair_rows({"e2e": record}, data.test, n_images=8, batch=8)) == json.dumps(
        fair_rows({"e2e": run}, data.test, n_images=8, batch=8))
    with pytest.raises(KeyError, match="no fair-comparison scores for 9-0"):
        fair_rows({"e2e": record}, data.test, n_images=9)
    assert list(read_records(tmp_path / "records")) == [run.id] and read_records(None) == {}
    text = path.read_text().replace(run.id, "e2e-L1-smoke-s0-0000000000")
    (tmp_path / "forged.json").write_text(text)
    with pytest.raises(ValueError, match="does not hash to its run id"):
        RunRecord(tmp_path / "forged.json")


def test_a_record_stays_the_result_when_its_run_is_trained_again(tmp_path):
    """A teacher retrained in a later sitting for its students does not rewrite the committed result."""
    from prkd.registry.records import write_record
    registry = prkd.open_registry(tmp_path / "outputs")
    item = next(i for i in ladder.ladder_runs("smoke") if i.group == "random")
    run = get_or_train(item.cfg, registry=registry, progress=False, log=lambda m: None)
    path = write_record(run, tmp_path / "records")
    record = json.loads(path.read_text())
    record["metrics"]["test_psnr"] = run.metrics()["test_psnr"] - 1.0  # as if trained on another machine
    path.write_text(json.dumps(record))
    key = (item.steps, "random", item.seed)
    kept = engine.collect(ladder.LADDER, "smoke", registry=registry, records=tmp_path / "records").runs[key]
    assert kept.metrics()["test_psnr"] == pytest.approx(run.metrics()["test_psnr"] - 1.0)
    alone = engine.collect(ladder.LADDER, "smoke", registry=registry).runs[key]
    assert alone.metrics()["test_psnr"] == run.metrics()["test_psnr"]  # without records: the registry's run


def test_the_ladder_trains_in_its_own_order_with_an_implied_teacher_first(monkeypatch, registry):
    """Through run_plan on any executor: the ladder's order, a teacher kept only as a record retrained just
    before its first student; in this process the runs start in exactly that order."""
    import types
    from prkd.execution import graph as graph_module
    from prkd.execution.executors import InProcess
    from prkd.learning import teacher_config
    from prkd.registry import Registry
    from prkd.experiments.plans import plan_run_id as plan_id
    monkeypatch.setattr(graph_module, "get_or_train",
                        lambda cfg, **kwargs: types.SimpleNamespace(id=plan_id(cfg)))
    monkeypatch.setattr(Registry, "find", lambda self, rid: types.SimpleNamespace(id=rid))
    first_rung = min(r.steps for r in ladder.ladder_runs("smoke"))
    runs = [r for r in ladder.ladder_runs("smoke")
            if r.steps == first_rung and not r.group.startswith("teacher")]
    executor, seen = InProcess(), []
    run_all = executor.as_completed  # the same executor, recording the order its tasks start in
    monkeypatch.setattr(executor, "as_completed",
                        lambda futures, started=None: run_all(futures, seen.append))
    done = engine.train_in_order(runs, registry=registry, executor=executor, data=object(), progress=False,
                                 log=lambda m: None).raise_if_failed("the ladder").runs_by_name()
    assert set(done) == {r.name for r in runs}
    expected = []
    for r in runs:  # every teacher is only implied here (as if kept as a record): it comes just before
        if r.cfg.train.mode == "student" and plan_id(teacher_config(r.cfg)) not in expected:
            expected.append(plan_id(teacher_config(r.cfg)))
        expected.append(plan_id(r.cfg))
    assert seen == expected and any(r.cfg.train.mode == "student" for r in runs)
    assert len(expected) > len(runs)  # a teacher was added
