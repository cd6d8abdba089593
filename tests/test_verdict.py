"""The study's verdict (prkd.experiments.study_claims) on a synthetic registry: every run of the
smoke study written by hand (config.json, empty model.pt, history.csv, metrics.json) with chosen test PSNRs,
so each claim's verdict and number is known in advance. Nothing trains and no model is loaded."""

import dataclasses
import json
import math
import re
import shutil
import statistics

import matplotlib
import numpy as np
import pytest
from scipy import stats as sps

from prkd.views import experiment_report

from prkd.experiments import engine, study, study_claims as verdict
from prkd.registry import Run, RunNotFoundError
from prkd.experiments import run_of
from prkd.experiments.stats import EQUIVALENCE_MARGIN_DB
from prkd.experiments.study import STUDY_PLANS, study_configs
from prkd.learning import teacher_config
from prkd.learning.loop import HISTORY_COLUMNS as TRAINING_HISTORY_COLUMNS

matplotlib.use("Agg")

N_IMAGES = 64
HISTORY_COLUMNS = ["epoch", "loss", "task", "penalty", "cdp", "feat", "val_psnr", "val_ssim", "mask_drift",
                   "speckle_contrast", "init_corr", "val_cdp", "val_cdp_std", "seconds"]

#: Test PSNR of seed s of each group = E2E's (20 + 0.4 s) + this offset; teachers have fixed values.
OFFSET = {
    "e2e": lambda s: 0.0,
    "random": lambda s: -1.0 - 0.05 * s,
    "KD": lambda s: 1.0 + 0.05 * s,                    # KD > E2E holds
    "L_cdp only": lambda s: -0.5 - 0.02 * s,           # L_cdp only > E2E refuted
    "L_feat only": lambda s: 0.3 if s == 0 else -0.3,  # the sign flips between seeds: not resolved
    "sigma=0 beta=0.01": lambda s: 0.2 + 0.01 * s,
    "sigma=0 beta=0.3": lambda s: -0.4 + 0.01 * s,
    "alpha=0.5 beta=0.01": lambda s: 0.5 + 0.02 * s,
    "alpha=0.5 beta=0.3": lambda s: 0.8 + 0.02 * s,
    "e2e normal": lambda s: 0.6 + 0.03 * s,
    "KD normal": lambda s: 1.5 + 0.05 * s,
    "KD standardized": lambda s: 0.7 + 0.04 * s,
    "KD normal standardized": lambda s: 1.2,
    "KD L_t=3": lambda s: 0.4 + 0.01 * s,
}
TEACHER_PSNR = {"teacher L_t=9": 25.0, "teacher L_t=3": 23.0, "teacher L_t=9 normal": 24.5}
#: Mask drift of seed s = this + 0.5 s (random: 0).
DRIFT = {"e2e": 0.1, "KD": 0.3, "L_cdp only": 0.2, "L_feat only": 0.05, "e2e normal": 0.15, "KD normal": 0.35}

EXPECTED_VERDICTS = {
    ("KD", "e2e"): "holds at this scale",
    ("KD", "random"): "holds at this scale",
    ("e2e", "random"): "holds at this scale",
    ("L_cdp only", "e2e"): "not reproduced at this scale (opposite sign)",
    ("L_feat only", "e2e"): "not resolved at this precision",
    ("KD", "L_cdp only"): "holds at this scale",
    ("KD", "L_feat only"): "not resolved at this precision",  # differences 0.7 and 1.35: too few seeds
    ("L_cdp only", "L_feat only"): "not resolved at this precision",
    ("L_cdp only", "KD"): "not reproduced at this scale (opposite sign)",  # in SSIM
    # single runs, with the spread of the two E2E seeds (t = 12.7 for one degree of freedom): too wide
    ("teacher L_t=3", "e2e"): "not resolved at this precision",
    ("teacher L_t=9", "teacher L_t=3"): "not resolved at this precision",
    ("KD L_t=3", "e2e"): "holds at this scale",
    ("KD normal", "e2e normal"): "holds at this scale",
    ("KD standardized", "e2e"): "holds at this scale",
    ("KD normal standardized", "e2e normal"): "holds at this scale",
    ("e2e normal", "e2e"): "holds at this scale",
}


def _split(name: str) -> tuple[str, int]:
    if name.startswith("teacher "):
        return name, 0
    group, seed = name.rsplit(" s", 1)
    return group, int(seed)


def _psnr(group: str, seed: int) -> float:
    return TEACHER_PSNR[group] if group in TEACHER_PSNR else 20.0 + 0.4 * seed + OFFSET[group](seed)


def _write_metrics(run: Run, psnr: float, drift: float, index: int) -> None:
    noise = np.random.default_rng(index).normal(0.0, 0.3, N_IMAGES)
    per_image = (psnr + noise - noise.mean()).tolist()
    run.path.mkdir(parents=True, exist_ok=True)
    run.metrics_file.write_text(json.dumps({
        "test_psnr": psnr, "test_ssim": 0.5 + psnr / 100, "test_psnr_per_image": per_image,
        "test_ssim_per_image": [0.5 + v / 100 for v in per_image],
        "mask_drift_rad": drift, "speckle_contrast_start": 1.0, "speckle_contrast_end": 1.0 - drift / 10,
        "init_corr_start": 0.4, "init_corr_end": 0.4 + drift / 10, "val_cdp_start": 0.02,
        "val_cdp_end": 0.02 - drift / 100,
        "val_cdp_std_start": 0.5, "val_cdp_std_end": 0.5 - drift / 10, "train_seconds": 10.0 + index}))


def _write_run(name: str, cfg, index: int, registry) -> tuple[Run, float]:
    run = run_of(cfg, registry)
    group, seed = _split(name)
    psnr = _psnr(group, seed)
    drift = 0.0 if cfg.train.mode == "random" else DRIFT.get(group, 0.25) + 0.5 * seed
    teacher = registry.run_for(teacher_config(cfg)).id if cfg.train.mode == "student" else None
    run.path.mkdir(parents=True)
    run.config_file.write_text(json.dumps({"config": cfg.to_dict(), "teacher_run": teacher,
                                           "run_id": run.id}))
    run.model_file.write_bytes(b"")
    student = cfg.train.mode == "student"
    lines = [",".join(HISTORY_COLUMNS)]
    for epoch in (1, 2):
        row = {"epoch": epoch, "loss": 0.1 / epoch, "task": 0.1 / epoch, "penalty": 0.0,
               "cdp": 0.01 / epoch if student else "", "feat": 0.2 / epoch if student else "",
               "val_psnr": psnr - 1.0 / epoch, "val_ssim": 0.5, "mask_drift": drift * epoch / 2,
               "speckle_contrast": 1.0 - 0.01 * epoch, "init_corr": 0.4 + 0.01 * epoch,
               "val_cdp": 0.02 / epoch,
               "val_cdp_std": 0.5 / epoch, "seconds": 5.0}
        lines.append(",".join(str(row[c]) for c in HISTORY_COLUMNS))
    run.history_file.write_text("\n".join(lines) + "\n")
    _write_metrics(run, psnr, drift, index)
    return run, psnr


@pytest.fixture
def study_runs(monkeypatch, registry) -> dict[str, Run]:
    """Every distinct run of the smoke study, complete, in the isolated PRKD_OUTPUT_DIR; name -> Run.

    The synthetic model.pt files are empty, so the offset-free drift and the refined scores of ``runs.csv``
    (which load each model) read stand-in values."""
    monkeypatch.setattr(study, "drift_without_offset", lambda run: 0.123)
    monkeypatch.setattr(experiment_report, "refined_columns",
                        lambda run: {"refined_psnr": 30.0, "refined_ssim": 0.9})
    runs, seen = {}, {}
    for index, (name, cfg) in enumerate(study_configs("smoke").items()):
        run = run_of(cfg, registry)
        if run.id in seen:  # the same run under a second name: its numbers are those of the first name
            runs[name] = run
            continue
        seen[run.id] = name
        runs[name] = _write_run(name, cfg, index, registry)[0]
    return runs


def test_history_columns_match_the_training_loop():
    assert HISTORY_COLUMNS == list(TRAINING_HISTORY_COLUMNS)


def by_name(results) -> dict:
    """The collected runs by the study's names (``"KD s1"``; a teacher by its group)."""
    return {g if g.startswith("teacher") else f"{g} s{s}": run for (_, g, s), run in results.runs.items()}


def test_collect_finds_every_run_and_groups_them_by_seed(study_runs, registry):
    results = study.collect_study("smoke", registry=registry)
    assert results.plan == STUDY_PLANS["smoke"] and by_name(results) == study_runs
    assert len({r.id for r in results.runs.values()}) == 31
    assert set(results.group("KD")) == {0, 1}  # not "KD standardized s0" nor "KD normal s0"
    assert results.group("KD")[1] == study_runs["KD s1"]
    assert results.group("teacher L_t=9") == {0: study_runs["teacher L_t=9"]}
    assert results.group("teacher L_t=9 normal") == {0: study_runs["teacher L_t=9 normal"]}
    assert results.group("alpha=0.5 beta=0")[1].id == study_runs["L_feat only s1"].id
    assert results.group("no such group") == {}
    assert study.teacher_group(1) == "e2e" and study.teacher_group(3) == "teacher L_t=3"
    assert by_name(results)["KD s0"].history()[1]["val_psnr"] == pytest.approx(_psnr("KD", 0) - 0.5)


@pytest.mark.parametrize("damage", ["delete folder", "no model", "failed"])
def test_collect_names_a_missing_run(study_runs, damage, registry):
    run = study_runs["KD s1"]
    if damage == "delete folder":
        shutil.rmtree(run.path)
    elif damage == "no model":
        run.model_file.unlink()
    else:
        run.failure_file.write_text(json.dumps({"step": 3, "term": "task"}))
    with pytest.raises(RunNotFoundError, match=r"1 run\(s\) of the 'smoke' study are not in the registry "
                                               r"yet: KD s1\. Train them with: python -m prkd study --preset "
                                               r"smoke"):
        study.collect_study("smoke", registry=registry)


def test_collect_counts_a_missing_shared_run_once(study_runs, registry):
    shutil.rmtree(study_runs["e2e s0"].path)  # also the run of "sigma=0 beta=0 s0" (the same config)
    with pytest.raises(RunNotFoundError) as err:
        study.collect_study("smoke", registry=registry)
    assert str(err.value).startswith("1 run(s) of the 'smoke' study") and "e2e s0" in str(err.value)
    assert "e2e s1" not in str(err.value)


def _hand_t(a: list[float], b: list[float], confidence: float = 0.95) -> tuple[float, float, float]:
    d = [x - y for x, y in zip(a, b)]
    mean = statistics.fmean(d)
    half = sps.t.ppf(0.5 + confidence / 2, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
    return mean, mean - half, mean + half


def _numbers(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r"[+−-]?\d+\.\d+", cell.replace("−", "-"))]


def test_compare_is_the_mean_paired_difference_over_shared_seeds(study_runs, registry):
    results = study.collect_study("smoke", registry=registry)
    c = verdict.compare(results, "KD", "e2e")
    assert c.seeds == (0, 1)
    a = [_psnr("KD", s) for s in (0, 1)]
    b = [_psnr("e2e", s) for s in (0, 1)]
    mean, low, high = _hand_t(a, b)
    assert (c.psnr.mean, c.psnr.low, c.psnr.high) == pytest.approx((mean, low, high), rel=1e-9)
    assert c.psnr.mean == pytest.approx(1.025) and c.psnr.n == 2
    assert c.ssim.mean == pytest.approx(mean / 100)
    per_a = [v for s in (0, 1) for v in study_runs[f"KD s{s}"].metrics()["test_psnr_per_image"]]
    per_b = [v for s in (0, 1) for v in study_runs[f"e2e s{s}"].metrics()["test_psnr_per_image"]]
    assert c.images.n == N_IMAGES  # each image's difference averaged over the seeds, then bootstrapped
    assert c.images.mean == pytest.approx(statistics.fmean(x - y for x, y in zip(per_a, per_b)))
    assert c.primary() is c.psnr
    assert c.optics["mask_drift_rad_a"] == statistics.median([0.3, 0.8])
    assert c.optics["mask_drift_rad_b"] == statistics.median([0.1, 0.6])
    # a teacher is one seed-0 run: against the mean of the E2E seeds, with their spread (1 + 1/n)
    t = verdict.compare_teachers(results, "teacher L_t=3", "e2e")
    e2e = [_psnr("e2e", s) for s in (0, 1)]
    half = sps.t.ppf(0.975, 1) * statistics.stdev(e2e) * math.sqrt(1 + 1 / 2)
    assert t.primary() is t.psnr and "E2E spread" in t.psnr.method
    assert (t.psnr.mean, t.psnr.low, t.psnr.high) == pytest.approx(
        (23.0 - statistics.fmean(e2e), 23.0 - statistics.fmean(e2e) - half, 23.0
         - statistics.fmean(e2e) + half))
    tt = verdict.compare_teachers(results, "teacher L_t=9", "teacher L_t=3")  # two single runs: s sqrt(2)
    expected = sps.t.ppf(0.975, 1) * statistics.stdev(e2e) * math.sqrt(2)
    assert tt.psnr.high - tt.psnr.mean == pytest.approx(expected)
    assert verdict.compare(results, "KD", "e2e", seeds=(1,)).psnr.mean == pytest.approx(1.05)
    with pytest.raises(ValueError, match="share no seed"):
        verdict.compare(results, "KD", "no such group")


def test_verdict_rows_give_the_designed_verdicts_and_the_hand_computed_numbers(study_runs, registry):
    results = study.collect_study("smoke", registry=registry)
    rows = verdict.verdict_rows(results)
    assert [(r["A"], r["B"]) for r in rows] == [(a, b) for _, a, b, _ in verdict.claims(results.plan)]
    assert {(r["A"], r["B"]): r["verdict"] for r in rows} == EXPECTED_VERDICTS
    # smoke: student_masks = (3,)
    assert not any(kind == "plateau" for *_, kind in verdict.claims(results.plan))
    for row in rows:
        a, b = row["A"], row["B"]
        ga, gb = results.group(a), results.group(b)
        shared = sorted(set(ga) & set(gb))
        assert row["seeds"] == len(shared)
        pa = [_psnr(a, s) for s in shared]
        pb = [_psnr(b, s) for s in shared]
        if a.startswith("teacher"):  # single runs: against every seed of b (the E2E mean for L_t = 1)
            pb = [_psnr(b, s) for s in sorted(gb)]
            assert "E2E spread" in row["interval"]
            expected = pa[0] - statistics.fmean(pb)
            assert _numbers(row["ΔPSNR (dB, CI)"])[0] == pytest.approx(expected, abs=0.0051)
        elif row["claim"].startswith("Table 1 (SSIM)"):
            expected = (statistics.fmean(pa) - statistics.fmean(pb)) / 100
            assert _numbers(row["ΔSSIM (CI)"])[0] == pytest.approx(expected, abs=0.0006)
        else:
            expected = _hand_t(pa, pb)
            assert _numbers(row["ΔPSNR (dB, CI)"]) == pytest.approx(expected, abs=0.0051), row["claim"]
        img_mean = _numbers(row["ΔPSNR over images (dB, 95% CI)"])[0]
        assert img_mean == pytest.approx(statistics.fmean(pa) - statistics.fmean(pb),
                                         abs=0.0051), row["claim"]
        # a single teacher is read against all of b
        seeds_b = sorted(gb) if a.startswith("teacher") else shared
        drift = [statistics.median([ga[s].metrics()["mask_drift_rad"] for s in shared]),
                 statistics.median([gb[s].metrics()["mask_drift_rad"] for s in seeds_b])]
        assert row["mask drift A / B (rad)"] == f"{drift[0]:.2f} / {drift[1]:.2f}"
    kd = next(r for r in rows if (r["A"], r["B"]) == ("KD", "e2e"))
    assert kd["ΔPSNR (dB, CI)"].startswith("+1.0") and kd["mask drift A / B (rad)"] == "0.55 / 0.35"
    refuted = next(r for r in rows if r["verdict"].startswith("not reproduced"))
    assert refuted["ΔPSNR (dB, CI)"].startswith("−0.51 [−0.6")


@pytest.mark.parametrize("extra, expected", [(0.02, "holds at this scale"),
                                             (1.0, "not reproduced at this scale (opposite sign)"),
                                             (None, "not resolved at this precision")])
def test_the_plateau_claim_is_an_equivalence_test(study_runs, tmp_path, extra, expected, registry):
    """Smoke has no plateau row; a plan with a 15-snapshot student adds one, its runs written beside the
    registry."""
    results = study.collect_study("smoke", registry=registry)
    plan = dataclasses.replace(results.plan, student_masks=(3, 15))
    runs, steps = dict(results.runs), results.rungs[-1]
    for s in (0, 1):
        run = Run(tmp_path / f"kd15-s{s}")
        delta = (0.3 if s == 0 else -0.3) if extra is None else extra + 0.01 * s
        _write_metrics(run, _psnr("KD", s) + delta, 0.4, 100 + s)
        runs[(steps, "KD L_t=15", s)] = run
    spec = dataclasses.replace(study.STUDY, plans={"smoke": plan})
    rows = verdict.verdict_rows(engine.Results(spec, "smoke", results.items, runs, registry))
    plateau = [r for r in rows if (r["A"], r["B"]) == ("KD L_t=15", "KD")]
    assert len(plateau) == 1 and f"±{EQUIVALENCE_MARGIN_DB} dB" in plateau[0]["claim"]
    assert plateau[0]["verdict"].startswith(expected + " (90 % CI within ±")
    if extra is not None:  # two one-sided tests: the 90 % interval
        mean, low, high = _hand_t([_psnr("KD", s) + extra + 0.01 * s for s in (0, 1)],
                                  [_psnr("KD", s) for s in (0, 1)],
                                  confidence=0.90)
        assert _numbers(plateau[0]["ΔPSNR (dB, CI)"]) == pytest.approx([mean, low, high], abs=0.0051)
