"""The reproduction's plan (prkd.experiments) and its reports (prkd.views.report): names, weights,
statistics, the registry-only collection, and the atomic, repeatable figure and table files."""

import json
import math

import matplotlib
import pytest

import prkd
from prkd import experiments
from prkd.views import report
from prkd.registry import RunNotFoundError

matplotlib.use("Agg")


def test_quick_plan_covers_every_experiment_once():
    configs = experiments.experiment_configs("quick")
    plan = experiments.PLANS["quick"]
    assert plan.teacher_masks == (1, 3, 5, 9, 15) and plan.seeds == (0, 1, 2) and plan.table_teacher == 9
    # teachers, baselines, students
    assert len(configs) == len(set(configs.values())) == 5 + 6 + 5 + 2 * 3 + 2
    assert all(cfg.preset == "quick" for cfg in configs.values())
    for L in plan.teacher_masks:
        t = configs[f"teacher L_t={L}"]
        assert (t.train.mode, t.optics.n_masks, t.train.seed) == ("teacher", L, 0)
        s = configs[f"student L_t={L} s0"]
        assert (s.train.mode, s.optics.n_masks, s.train.teacher_masks,
                s.train.teacher_seed) == ("student", 1, L, 0)
    for seed in plan.seeds:
        assert configs[f"e2e s{seed}"].train.mode == "e2e"
        assert configs[f"random s{seed}"].train.mode == "random"
        for name, (alpha, beta) in experiments.ABLATIONS.items():
            cfg = configs[f"{experiments.ablation_prefix(plan, name)} s{seed}"]
            assert (cfg.train.alpha, cfg.train.beta, cfg.train.seed) == (alpha, beta, seed)


def test_ablation_columns_keep_the_task_weight_and_sum_to_one():
    cols = experiments.ABLATIONS
    assert list(cols) == ["L_cdp only", "L_cdp + L_feat", "L_feat only", "neither"]  # the paper's order
    for name, (alpha, beta) in cols.items():
        sigma = 1 - alpha - beta
        assert sigma >= 0
        assert (beta > 0) == ("L_cdp" in name) and (sigma > 1e-12) == ("L_feat" in name)
    assert cols["neither"] == (1.0, 0.0) and {a for a, _ in list(cols.values())[:3]} == {0.5}


def test_paper_plan_sweeps_every_teacher_from_1_to_15():
    assert experiments.PLANS["paper"].teacher_masks == tuple(range(1, 16))
    assert len(experiments.experiment_configs("paper")) == 15 + 6 + 15 + 2 * 3 + 2


def test_mean_and_95_percent_confidence_interval():
    mean, half = experiments.mean_ci95([1.0, 2.0, 3.0])
    # t(0.975, 2) * sd / sqrt(n)
    assert mean == 2.0 and half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert experiments.mean_ci95([5.0, 5.0]) == (5.0, 0.0)
    mean, half = experiments.mean_ci95([7.0])
    assert mean == 7.0 and math.isnan(half)
    assert report.format_ci(2.0, half, 2) == "2.00" and report.format_ci(2.0, 0.123, 2) == "2.00 ± 0.12"


def test_collect_names_the_missing_runs_and_trains_nothing(registry):
    with pytest.raises(RunNotFoundError, match=r"20 run\(s\) of the 'smoke' reproduction.*teacher L_t=1 "
                                               r"\(teacher-L1"):
        experiments.collect("smoke", registry=registry)
    assert registry.runs() == []


def test_unknown_preset_is_refused_with_the_allowed_values():
    with pytest.raises(prkd.ConfigError,
                       match="'preset' must be one of 'smoke', 'quick', 'paper'; got 'fast'"):
        experiments.experiment_configs("fast")


def test_tables_are_written_as_csv_markdown_and_their_numbers(tmp_path):
    from prkd.views.tables import format_ci
    rows = [{"model": "teacher", "PSNR (dB)": format_ci(23.1049, 0.2012, 2), "seeds": 5,
             "ratio": float("nan")},
            {"model": "student", "PSNR (dB)": "21.00", "seeds": 1, "ratio": 0.25}]
    *_, json_path = report.write_table(rows, tmp_path, "numbers")
    numbers = json.loads(json_path.read_text())  # unrounded: an interval's mean and half, NaN as null
    assert numbers["columns"] == ["model", "PSNR (dB)", "seeds", "ratio"]
    assert numbers["rows"] == [
        {"model": "teacher", "PSNR (dB)": {"mean": 23.1049, "half": 0.2012}, "seeds": 5, "ratio": None},
        {"model": "student", "PSNR (dB)": "21.00", "seeds": 1, "ratio": 0.25}]
    rows = [{"model": r["model"], "PSNR (dB)": r["PSNR (dB)"]} for r in rows]
    csv_path, md_path, _ = report.write_table(rows, tmp_path, "t", title="A table")
    assert csv_path.read_text() == "model,PSNR (dB)\nteacher,23.10 ± 0.20\nstudent,21.00\n"
    assert md_path.read_text().splitlines() == ["**A table**", "", "| model | PSNR (dB) |", "|---|---|",
                                                "| teacher | 23.10 ± 0.20 |", "| student | 21.00 |"]
    assert oct(csv_path.stat().st_mode & 0o777) != oct(0o600)  # an ordinary file, not mkstemp's private mode


def test_figures_are_written_as_png_and_pdf_with_the_same_bytes_every_time(tmp_path):
    import matplotlib.pyplot as plt

    def draw():
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([1, 2, 3], [1, 4, 9])
        return fig

    first = [p.read_bytes() for p in report.save_figure(draw(), tmp_path / "a", "fig")]
    second = [p.read_bytes() for p in report.save_figure(draw(), tmp_path / "b", "fig")]
    assert first == second and first[0][:4] == b"\x89PNG" and first[1][:4] == b"%PDF"
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["fig.pdf", "fig.png"]  # no temporary left
    plt.close("all")
