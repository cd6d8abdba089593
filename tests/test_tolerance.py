"""check-results (prkd.checks.tolerance, prkd.views.paper_comparison.compare_results): committed and
fresh result tables agree within tolerances taken from the seeds' spread, not digit for digit
(docs/check-results.md)."""

import csv
import shutil
from pathlib import Path

import pytest

from prkd.views import paper_comparison, report

from prkd.checks import tolerance
from prkd.__main__ import main
from prkd.checks.tolerance import Measurement, compare_cells, compare_tables, parse_cell

COMMITTED_QUICK = Path(__file__).resolve().parent.parent / "docs" / "results" / "quick"


def _write_result_tables(folder, *, psnr="19.32 ± 0.72", feat_only="18.58 ± 0.75", ssim="0.563 ± 0.068",
                         alpha="0.5", best="L_cdp only", holds="no",
                         ranking="random 18.71 ± 0.67 < student 18.87 ± 0.54",
                         teachers="L_t=1: 19.56, L_t=3: 21.23", train_seconds="98.0",
                         device_here="cpu (x86_64, 2 threads)"):
    """A small copy of notebook 06's three tables, with the cells the tests change as arguments."""
    report.write_table([{"KD terms": "L_cdp only", "alpha": alpha, "PSNR (dB)": psnr,
                         "SSIM": ssim, "seeds": 3},
                        {"KD terms": "L_feat only", "alpha": "0.5", "PSNR (dB)": feat_only,
                         "SSIM": "0.535 ± 0.089", "seeds": 3}], folder, "table1_ablation")
    report.write_table([{"model": "teacher (L_t = 9)", "training time (s)": train_seconds}],
                       folder, "table2_cost")
    report.write_table([{"quantity": "Table 1, L_cdp only: PSNR (dB) / SSIM", "paper": "26.94 / 0.923",
                         "this run": f"{psnr} / {ssim}", "claim holds here": ""},
                        {"quantity": "Table 1: best PSNR", "paper": "L_cdp + L_feat", "this run": best,
                         "claim holds here": holds},
                        {"quantity": "random < student (L_t = 9), test PSNR", "paper": "yes",
                         "this run": ranking,
                         "claim holds here": "yes"},
                        {"quantity": "Fig. 2: teacher PSNR rises with L_t", "paper": "yes",
                         "this run": teachers,
                         "claim holds here": "yes"},
                        {"quantity": "Table 2: student / teacher training time", "paper": "1.12",
                         "this run": train_seconds, "claim holds here": ""},
                        {"quantity": "device", "paper": "NVIDIA GeForce RTX 4090", "this run": device_here,
                         "claim holds here": ""}],
                       folder, "comparison_with_paper")


def _read(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def folders(tmp_path):
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    committed.mkdir(), fresh.mkdir()
    _write_result_tables(committed)
    return committed, fresh


def test_cells_are_parsed_into_text_and_numbers():
    assert parse_cell("19.32 ± 0.72 / 0.563 ± 0.068") == (
        "# ± # / # ± #", [Measurement(19.32, 0.72, 2), Measurement(0.563, 0.068, 3)])
    assert parse_cell("L_cdp only +0.07 dB, L_cdp + L_feat -0.38 dB") == (
        "L_cdp only # dB, L_cdp + L_feat # dB", [Measurement(0.07, None, 2), Measurement(-0.38, None, 2)])
    # integers are counts and labels: they stay in the text, as do numbers glued to a word
    assert parse_cell("L_t=9: 21.60, 95 % CIs, cpu (x86_64, 2 threads)") == (
        "L_t=9: #, 95 % CIs, cpu (x86_64, 2 threads)", [Measurement(21.6, None, 2)])


def test_the_measured_cross_machine_spread_is_within_tolerance(folders):
    committed, fresh = folders
    # another CPU (AMD EPYC): L_feat only 18.58 -> 18.72, the student's CI 0.54 -> 0.80
    _write_result_tables(fresh, feat_only="18.72 ± 0.80",
                         ranking="random 18.64 ± 0.70 < student 18.95 ± 0.80",
                         psnr="19.30 ± 0.69", ssim="0.559 ± 0.071", teachers="L_t=1: 19.71, L_t=3: 21.02",
                         # times and device: not compared
                         train_seconds="123.4", device_here="cuda (NVIDIA H100)")
    assert paper_comparison.compare_results(committed, fresh) == []
    assert tolerance.compare_folders(committed, fresh, paper_comparison.MEASURED_ON_THE_MACHINE).notes == []


def test_a_run_with_several_rows_is_keyed_by_run_id_and_its_leading_columns():
    header = ["run", "levels", "PSNR (dB)", "SSIM", "run_id"]
    old = [dict(zip(header, r)) for r in (["E2E", "unquantised", "21.60", "0.610", "e2e-L1-quick-s0-aa"],
                                          ["E2E", "4", "20.10", "0.580", "e2e-L1-quick-s0-aa"],
                                          ["student", "4", "20.90", "0.600", "student-L1-quick-s0-bb"])]
    new = [dict(r) for r in reversed(old)]
    assert compare_tables("quantisation", old, new).failures == []
    new[1].update({"PSNR (dB)": "21.00"})  # E2E at 4 levels moved by 0.9 dB
    assert compare_tables("quantisation", old, new).failures == [
        "quantisation: e2e-L1-quick-s0-aa / E2E / 4 / PSNR (dB): committed '20.10', fresh '21.00': 20.10 -> "
        "21.00: moved 0.90, tolerance 0.5 (single run)"]


def test_the_committed_classical_results_agree_with_themselves(tmp_path):
    committed = COMMITTED_QUICK.parent / "classical"
    shutil.copytree(committed, tmp_path / "fresh")
    assert paper_comparison.compare_results(committed, tmp_path / "fresh") == []


def test_the_committed_quick_results_agree_with_themselves(tmp_path):
    shutil.copytree(COMMITTED_QUICK, tmp_path / "fresh")
    assert paper_comparison.compare_results(COMMITTED_QUICK, tmp_path / "fresh") == []


def test_a_mean_outside_the_committed_ci_fails_naming_the_cell(folders):
    committed, fresh = folders
    _write_result_tables(fresh, feat_only="19.40 ± 0.75")
    assert paper_comparison.compare_results(committed, fresh) == [
        "table1_ablation: L_feat only / PSNR (dB): committed '18.58 ± 0.75', fresh '19.40 ± 0.75': "
        "18.58 -> 19.40: mean moved 0.82, tolerance 0.75 (1 x the committed half-width)"]


def test_a_half_width_may_change_threefold_but_not_more(folders):
    committed, fresh = folders
    _write_result_tables(fresh, feat_only="18.58 ± 2.20")
    assert paper_comparison.compare_results(committed, fresh) == []
    _write_result_tables(fresh, feat_only="18.58 ± 2.30")
    [failure] = paper_comparison.compare_results(committed, fresh)
    assert failure.startswith("table1_ablation: L_feat only / PSNR (dB)")
    assert "half-width 0.75 -> 2.30" in failure
    # every seed gave the same number: seeds not applied?
    _write_result_tables(fresh, feat_only="18.58 ± 0.00")
    assert "half-width 0.75 -> 0.00" in paper_comparison.compare_results(committed, fresh)[0]


def test_a_psnr_slash_ssim_cell_gives_each_part_its_metric(folders):
    committed, fresh = folders
    _write_result_tables(fresh, ssim="0.600 ± 0.068")  # +0.037 SSIM: inside the SSIM CI (0.068)
    assert paper_comparison.compare_results(committed, fresh) == []
    _write_result_tables(fresh, ssim="0.640 ± 0.068")
    failures = paper_comparison.compare_results(committed, fresh)
    assert [f.split(": committed")[0] for f in failures] == [
        "comparison_with_paper: Table 1, L_cdp only: PSNR (dB) / SSIM / this run",
        "table1_ablation: L_cdp only / SSIM"]
    assert all("0.563 -> 0.640: mean moved 0.077, tolerance 0.068" in f for f in failures)


def test_single_seed_numbers_in_text_have_the_absolute_tolerance(folders):
    committed, fresh = folders
    _write_result_tables(fresh, teachers="L_t=1: 20.05, L_t=3: 20.74")  # +-0.49 dB
    assert paper_comparison.compare_results(committed, fresh) == []
    _write_result_tables(fresh, teachers="L_t=1: 19.56, L_t=3: 21.80")
    assert paper_comparison.compare_results(committed, fresh) == [
        "comparison_with_paper: Fig. 2: teacher PSNR rises with L_t / this run: committed 'L_t=1: 19.56, "
        "L_t=3: 21.23', fresh 'L_t=1: 19.56, L_t=3: 21.80': 21.23 -> 21.80: moved 0.57, tolerance 0.5 "
        "(single run)"]
    _write_result_tables(fresh, teachers="L_t=1: 19.56, L_t=4: 21.23")  # a label is text: it must match
    assert paper_comparison.compare_results(committed, fresh)[0].endswith("the text differs (beyond its "
                                                                          "numbers)")


def test_numbers_of_no_known_metric_must_be_equal(folders):
    committed, fresh = folders
    _write_result_tables(fresh, alpha="0.45")
    assert paper_comparison.compare_results(committed, fresh) == [
        "table1_ablation: L_cdp only / alpha: committed '0.5', fresh '0.45': 0.5 -> 0.45: not a PSNR or "
        "SSIM, so it must be equal"]


def test_a_flipped_conclusion_is_a_note_when_its_numbers_are_within_tolerance(folders, capsys):
    committed, fresh = folders
    _write_result_tables(fresh, best="neither", holds="yes",
                         ranking="student 18.66 ± 0.54 < random 18.71 ± 0.67")
    result = tolerance.compare_folders(committed, fresh, paper_comparison.MEASURED_ON_THE_MACHINE)
    assert result.failures == []
    assert [n.split(": committed")[0] for n in result.notes] == [
        "note: comparison_with_paper: random < student (L_t = 9), test PSNR / this run",
        "note: comparison_with_paper: Table 1: best PSNR / this run",
        "note: comparison_with_paper: Table 1: best PSNR / claim holds here"]
    assert main(["check-results", "--committed", str(committed), "--fresh", str(fresh)]) == 0
    out = capsys.readouterr().out
    note = "comparison_with_paper: Table 1: best PSNR / claim holds here: committed 'no', fresh 'yes'"
    assert f"note: {note}" in out
    assert "agree within tolerance (0 cells outside tolerance, 3 notes" in out


def test_a_flipped_conclusion_fails_when_its_numbers_are_outside_tolerance(folders):
    committed, fresh = folders
    _write_result_tables(fresh, teachers="L_t=1: 19.56, L_t=3: 18.90")
    rows = _read(fresh / "comparison_with_paper.csv")
    rows[3]["claim holds here"] = "no"  # Fig. 2: the teachers' PSNR no longer rises
    result = compare_tables("comparison_with_paper", _read(committed / "comparison_with_paper.csv"), rows)
    assert result.notes == [] and len(result.failures) == 2
    assert result.failures[1].endswith("'yes', fresh 'no': a conclusion from numbers outside tolerance (this "
                                       "row's)")


def test_rows_are_keyed_by_run_id_and_times_and_drift_are_left_out():
    header = ["mode", "seed", "run_id", "test_psnr", "test_ssim", "mask_drift_rad", "wall_seconds"]
    old = [dict(zip(header, r)) for r in (["e2e", "0", "e2e-L1-study-s0-aa", "21.60", "0.610",
                                           "0.031", "98.2"],
                                          ["e2e", "1", "e2e-L1-study-s1-bb", "21.10", "0.600",
                                           "0.029", "97.0"])]
    new = [dict(r) for r in reversed(old)]  # another order
    new[1].update(test_psnr="22.05", test_ssim="0.655", mask_drift_rad="0.090", wall_seconds="140.0")
    assert compare_tables("runs", old, new).failures == []
    new[0].update(test_psnr="21.50", test_ssim="0.700")
    assert compare_tables("runs", old, new).failures == [
        "runs: e2e-L1-study-s1-bb / test_ssim: committed '0.600', fresh '0.700': 0.600 -> 0.700: moved "
        "0.100, tolerance 0.05 (single run)"]
    assert compare_tables("runs", old, [new[1]]).failures == [
        "runs: row 'e2e-L1-study-s1-bb' is missing from the fresh run"]


def test_a_reordered_list_of_other_items_is_a_text_difference():
    reasons, reordered = compare_cells("random 18.71 < E2E 19.25", "E2E 19.25 < student 18.71", "test PSNR")
    assert reasons == ["the text differs (beyond its numbers)"] and not reordered


def test_missing_tables_and_rows_are_reported(folders):
    committed, fresh = folders
    _write_result_tables(fresh)
    (fresh / "comparison_with_paper.csv").write_text("quantity,paper,this run,claim holds here\n")
    (fresh / "comparison_with_paper.json").unlink()  # a table without its numbers is read as printed
    assert "comparison_with_paper: row 'Table 1: best PSNR' is missing from the fresh run" in (
        paper_comparison.compare_results(committed, fresh))
    (fresh / "comparison_with_paper.csv").unlink()
    with pytest.raises(FileNotFoundError, match="comparison_with_paper.csv"):
        paper_comparison.compare_results(committed, fresh)


def test_check_results_command_exits_0_1_2(folders, capsys):
    committed, fresh = folders
    _write_result_tables(fresh, feat_only="18.72 ± 0.80", train_seconds="123.4")
    assert main(["check-results", "--committed", str(committed), "--fresh", str(fresh)]) == 0
    assert "agree within tolerance" in capsys.readouterr().out
    _write_result_tables(fresh, psnr="18.00 ± 0.72")
    assert main(["check-results", "--committed", str(committed), "--fresh", str(fresh)]) == 1
    out = capsys.readouterr().out
    assert "table1_ablation: L_cdp only / PSNR (dB): committed '19.32 ± 0.72', fresh '18.00 ± 0.72'" in out
    assert "differ (2 cells outside tolerance" in out
    assert main(["check-results", "--committed", str(committed.parent / "nowhere"), "--fresh",
                 str(fresh)]) == 2
    assert "no tables" in capsys.readouterr().err


def test_a_sweep_table_is_keyed_by_its_leading_columns_and_its_statistics_are_not_compared(tmp_path):
    """The study's beta_sweep repeats its first column (the series); rows are told apart by series, alpha and
    beta."""
    from prkd.checks.tolerance import compare_tables
    header = ["series", "alpha", "beta", "ΔPSNR vs E2E (dB)", "low", "high", "p", "speckle contrast end"]
    old = [dict(zip(header, row)) for row in (["σ = 0", "0.99", "0.01", "-0.36", "-0.48", "-0.24",
                                               "0.0059", "0.82"],
                                              ["σ = 0", "0.97", "0.03", "-0.80", "-1.30", "-0.30",
                                               "0.0205", "0.82"])]
    moved = [dict(r, **{"low": "-0.70", "p": "0.03", "speckle contrast end": "0.79"}) for r in old]
    assert compare_tables("beta_sweep", old, moved).failures == []
    far = [dict(old[0]), dict(old[1], **{"ΔPSNR vs E2E (dB)": "-1.40"})]
    failures = compare_tables("beta_sweep", old, far).failures
    assert len(failures) == 1 and "σ = 0 / 0.97 /" in failures[0] and "ΔPSNR vs E2E (dB)" in failures[0]


def _interval_table(folder, mean: float, half: float = 0.72, *, digits: int = 2, layout=str) -> None:
    """A Table 1 row whose PSNR is an Interval (its numbers in the JSON file), printed by ``layout``."""
    from prkd.views.tables import format_ci
    cell = format_ci(mean, half, digits)
    report.write_table([{"KD terms": "L_cdp only", "PSNR (dB)": cell, "seeds": 3}], folder, "table1_ablation")
    for ext in ("csv", "md"):  # reprint the cell as a later version of the view might
        path = folder / f"table1_ablation.{ext}"
        path.write_text(path.read_text().replace(str(cell), layout(cell)))


def test_a_formatting_change_cannot_fail_the_check_when_the_numbers_are_kept(tmp_path):
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    committed.mkdir(), fresh.mkdir()
    _interval_table(committed, 19.3212)
    _interval_table(fresh, 19.3212, digits=4, layout=lambda c: f"{c.mean:.3f} (95 % CI ± {c.half:.3f})")
    assert tolerance.compare_folders(committed, fresh).failures == []
    (fresh / "table1_ablation.json").unlink()  # without the numbers, the printed text is compared
    assert tolerance.compare_folders(committed, fresh).failures


@pytest.mark.parametrize("moved, passes", [(0.5, True), (-0.7, True), (1.0, False)])
def test_a_cell_within_its_seed_spread_passes_and_beyond_fails_naming_it(tmp_path, moved, passes):
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    committed.mkdir(), fresh.mkdir()
    _interval_table(committed, 19.3212, 0.72)
    _interval_table(fresh, 19.3212 + moved, 0.70)
    failures = tolerance.compare_folders(committed, fresh).failures
    assert (failures == []) == passes
    if not passes:
        assert failures[0].startswith("table1_ablation: L_cdp only / PSNR (dB)")
        assert "mean moved" in failures[0]
