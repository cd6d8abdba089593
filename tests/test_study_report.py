"""The study's beta sweep and report (prkd.views.study_report) on the synthetic registry of
tests/test_verdict.py: the sweep's rows, the runs table and every file ``write_study`` writes. Nothing trains
and no model is loaded."""

import csv
import json
import math

import matplotlib
import pytest
import torch

import test_verdict
from prkd.experiments import study, study_claims as verdict, study_sweep
from prkd.experiments.stats import holm
from prkd.views import experiment_report, study_records, study_report
from test_verdict import _hand_t, _psnr

study_runs = test_verdict.study_runs  # the synthetic registry's fixture, shared

matplotlib.use("Agg")


def test_beta_sweep_rows_compare_each_student_with_e2e(study_runs, registry):
    results = study.collect_study("smoke", registry=registry)
    rows = study_sweep.beta_sweep_rows(results)
    assert [(r["alpha"], r["beta"], r["sigma"]) for r in rows] == [
        (1.0, 0.0, 0.0), (0.99, 0.01, 0.0), (0.7, 0.3, 0.0), (0.5, 0.0, 0.5), (0.5, 0.01, 0.49),
        (0.5, 0.3, 0.2)]
    e2e_itself = rows[0]  # beta = 0, sigma = 0 is E2E itself
    assert e2e_itself["ΔPSNR vs E2E (dB)"] == 0.0 and math.isnan(e2e_itself["low"])
    assert math.isnan(e2e_itself["high"])
    assert e2e_itself["verdict (> E2E)"] == "= E2E" and e2e_itself["p"] == e2e_itself["q (BH)"] == ""
    tested = [r for r in rows if r["p"] != ""]
    assert tested and all(r["q (BH)"] >= r["p"] for r in tested)  # Benjamini-Hochberg never lowers a p-value
    # Holm over the sweep's tests, by hand: the i-th smallest p times (m - i), running maximum, capped at 1
    ordered = sorted(range(len(tested)), key=lambda i: tested[i]["p"])
    running = 0.0
    for rank, i in enumerate(ordered):
        running = max(running, min(1.0, (len(tested) - rank) * tested[i]["p"]))
        assert tested[i]["p (Holm)"] == pytest.approx(running, abs=5e-4)
    assert e2e_itself["p (Holm)"] == "" and e2e_itself["reading"] == "E2E itself"
    # alpha 0.5, beta 0 is L_feat only: +-0.3
    assert rows[3]["ΔPSNR vs E2E (dB)"] == pytest.approx(0.0, abs=1e-9)
    assert rows[3]["verdict (> E2E)"] == "not resolved at this precision"
    for row, group in zip(rows[1:], ["sigma=0 beta=0.01", "sigma=0 beta=0.3", None, "alpha=0.5 beta=0.01",
                                     "alpha=0.5 beta=0.3"]):
        if group is None:
            continue
        mean, low, high = _hand_t([_psnr(group, s) for s in (0, 1)], [_psnr("e2e", s) for s in (0, 1)])
        assert (row["ΔPSNR vs E2E (dB)"], row["low"],
                row["high"]) == pytest.approx((mean, low, high), abs=0.0006)
        assert row["seeds"] == 2 and row["mask drift (rad)"] == pytest.approx(0.5)  # median of 0.25 and 0.75
    assert [r["verdict (> E2E)"] for r in rows[1:3]] == ["holds at this scale",
                                                         "not reproduced at this scale (opposite sign)"]
    assert [r["verdict (> E2E)"] for r in rows[4:]] == ["holds at this scale", "holds at this scale"]
    assert all(r["reading"].startswith(("A > B", "A < B", "not resolved", "equivalent")) for r in tested)


RUNS_COLUMNS = ["mode", "seed", "L_t", "alpha", "beta", "sigma", "mask_init", "cdp_loss",
                "epochs", "test_psnr", "test_ssim", "mask_drift_rad", "mask_drift_no_offset_rad",
                "train_seconds"]


def test_runs_rows_have_one_row_per_distinct_run(study_runs, registry):
    results = study.collect_study("smoke", registry=registry)
    rows = experiment_report.runs_rows(results)
    assert len(rows) == len({r.id for r in study_runs.values()}) == 31
    assert len({r["run_id"] for r in rows}) == len(rows)
    assert all(set(RUNS_COLUMNS) <= set(r) for r in rows)
    by_name = {r["group"] if r["mode"] == "teacher" else f"{r['group']} s{r['seed']}": r for r in rows}
    # a run two groups share is listed under the first group in order (e2e, L_feat only)
    assert "sigma=0 beta=0 s0" not in by_name and "alpha=0.5 beta=0 s1" not in by_name
    assert by_name["e2e s0"]["run_id"] == study_runs["sigma=0 beta=0 s0"].id
    kd = by_name["KD s1"]
    assert {k: kd[k] for k in RUNS_COLUMNS} == {
        "mode": "student", "seed": 1, "L_t": 9, "alpha": 0.5, "beta": 0.25, "sigma": 0.25,
        "mask_init": "uniform",
        "cdp_loss": "paper", "epochs": 1, "test_psnr": round(_psnr("KD", 1), 4),
        "test_ssim": round(0.5 + _psnr("KD", 1) / 100, 4), "mask_drift_rad": 0.8,
        "mask_drift_no_offset_rad": 0.123, "train_seconds": study_runs["KD s1"].metrics()["train_seconds"]}
    teacher = by_name["teacher L_t=9 normal"]
    assert (teacher["mode"], teacher["L_t"], teacher["cdp_loss"],
            teacher["mask_init"]) == ("teacher", 9, "", "normal")
    assert (by_name["random s0"]["L_t"], by_name["random s0"]["mask_drift_rad"]) == ("", 0.0)
    assert by_name["KD normal standardized s0"]["cdp_loss"] == "standardized"
    assert by_name["KD L_t=3 s0"]["L_t"] == 3
    # the group check-results takes each single run's tolerance from (its seeds' spread)
    assert [by_name[n]["group"] for n in ("KD s1", "teacher L_t=9 normal", "KD normal standardized s0")] == [
        "KD", "teacher L_t=9 normal", "KD normal standardized"]


def test_write_study_writes_the_tables_and_figures(study_runs, tmp_path, monkeypatch, registry):
    import matplotlib.pyplot as plt

    def stub_masks(results, *args, **kwargs):
        # fig_masks loads the trained models (Run.load_system); the synthetic runs' model.pt files are empty,
        # so this one figure is replaced by a stub. The other figures are drawn from the synthetic registry.
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        return fig

    monkeypatch.setattr(study_report, "fig_masks", stub_masks)
    # the records' extras read the weights too (first masks, the CDP probe): stubbed likewise
    monkeypatch.setattr(study_records, "first_mask", lambda run: (torch.zeros(2, 2), torch.ones(2, 2)))
    monkeypatch.setattr(study_records, "drift_without_offset", lambda run: 0.123)
    monkeypatch.setattr(study_records, "cdp_probe", lambda results, init: {"teacher_contrast": 0.5})
    results = study.collect_study("smoke", registry=registry)
    out = tmp_path / "study"
    tables = study_report.write_study(results, out)
    names = {p.name for p in out.iterdir()}
    for stem in ("runs", "verdict", "beta_sweep"):
        assert {f"{stem}.csv", f"{stem}.md"} <= names
    for fig in ("study_curves", "study_mechanism", "study_beta_sweep", "study_teachers", "study_masks"):
        assert {f"{fig}.png", f"{fig}.pdf"} <= names
        assert (out / f"{fig}.png").read_bytes()[:4] == b"\x89PNG"
    assert "wall_time.json" in names and not any(n.endswith(".tmp") for n in names)
    with open(out / "runs.csv", newline="") as fh:
        runs = list(csv.DictReader(fh))
    assert len(runs) == 31 and set(RUNS_COLUMNS) <= set(runs[0])
    with open(out / "verdict.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["verdict"] for r in rows] == [r["verdict"] for r in tables["verdict"]]
    assert len(rows) == len(verdict.claims(results.plan))
    md = (out / "verdict.md").read_text()
    assert "| claim |" in md and "Study `smoke`: 31 runs" in md
    assert "0.0 min of wall time in 0 launch(es)" in md
    wall = json.loads((out / "wall_time.json").read_text())
    assert (wall["sessions"], wall["total_seconds"], wall["runs"]) == ([], 0, 31)
    assert len(list((out / "records").glob("*-*.json"))) == 31
    assert (out / "records" / "_launches.json").is_file()
    assert len(tables["beta_sweep"]) == 6
    plt.close("all")


def test_the_study_verdict_adjusts_every_seed_level_test_by_holm_and_words_its_scope(study_runs, registry):
    results = study.collect_study("smoke", registry=registry)
    rows = verdict.verdict_rows(results)
    tested = [r for r in rows if r["p"] != ""]
    kinds = {claim: kind for claim, _, _, kind in verdict.claims(results.plan)}
    assert {r["claim"] for r in tested} == {c for c, k in kinds.items() if k in ("greater", "greater ssim")}
    assert [r["p (Holm)"] for r in tested] == pytest.approx(
        holm([r["p"] for r in tested]), abs=2e-3)  # from p-values rounded to 4 digits
    for row in rows:
        assert "refuted" not in row["verdict"]  # scoped: "not reproduced at this scale", never bare
        if row["p"] == "":
            assert row["reading"].endswith(": see verdict") and row["p (Holm)"] == ""
        elif row["p (Holm)"] < 0.05:
            assert row["reading"].endswith("(Holm p < 0.05)")
        else:
            assert "Holm p < 0.05" not in row["reading"]
    cfg = next(iter(results.runs.values())).config()
    assert verdict.scope(results).startswith(f"{cfg.total_steps} steps, {cfg.data.image_size}×")
