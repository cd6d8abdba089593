"""check-results for single numbers: a run of a per-run table within its group's seed spread, and the
single-seed numbers of a text cell within the seed spread its view wrote with it (docs/check-results.md)."""

import pytest

from prkd.checks import tolerance
from prkd.views import report
from prkd.views.tables import SeedSpread


def _runs_table(folder, e2e_seed0: float, teacher: float = 25.0) -> None:
    rows = [{"group": "e2e", "seed": s, "run_id": f"e2e-s{s}", "test_psnr": v}
            for s, v in enumerate((e2e_seed0, 21.4, 20.6))]
    rows.append({"group": "teacher", "seed": 0, "run_id": "teacher-s0", "test_psnr": teacher})
    report.write_table(rows, folder, "runs")


@pytest.mark.parametrize("e2e_seed0, teacher, failing", [
    (21.7, 25.0, []),  # 0.7 dB: beyond the fixed 0.5 dB, within 2 sd of its group's seeds (0.4 dB)
    (21.9, 25.0, ["e2e-s0"]),  # 0.9 dB > 0.8 dB
    (21.0, 25.6, ["teacher-s0"]),  # a group of one run: the fixed single-run tolerance, 0.5 dB
])
def test_a_single_run_may_move_within_its_groups_seed_spread(tmp_path, e2e_seed0, teacher, failing):
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    committed.mkdir(), fresh.mkdir()
    _runs_table(committed, 21.0)
    _runs_table(fresh, e2e_seed0, teacher)
    failures = tolerance.compare_folders(committed, fresh).failures
    assert [f.split(" / ")[0].removeprefix("runs: ") for f in failures] == failing
    if failing == ["e2e-s0"]:
        assert "tolerance 0.8 (single run; its seed spread)" in failures[0]


def _fig3_table(folder, gap_seed0: float, seed_sd: float | None) -> None:
    text = f"L_t=1: {gap_seed0:+.2f} dB, L_t=9: -1.03 dB"
    cell = text if seed_sd is None else SeedSpread(text, seed_sd)
    report.write_table([{"quantity": "Fig. 3: students beat the E2E baseline for every L_t (PSNR, seed 0)",
                         "paper": "yes", "this run": cell, "claim holds here": "no"}],
                       folder, "comparison_with_paper")


@pytest.mark.parametrize("gap_seed0, seed_sd, failing", [
    (-0.45, 0.3, False),  # moved 0.52 dB: beyond the fixed 0.5 dB, within 2 x its seed sd (0.6 dB)
    (-0.60, 0.3, True),  # moved 0.67 dB > 0.6 dB
    (-0.45, None, True),  # no seed spread written with the cell: the fixed 0.5 dB
])
def test_single_seed_numbers_in_a_text_cell_move_within_the_seed_spread_written_with_it(
        tmp_path, gap_seed0, seed_sd, failing):
    committed, fresh = tmp_path / "committed", tmp_path / "fresh"
    committed.mkdir(), fresh.mkdir()
    _fig3_table(committed, 0.07, seed_sd)
    _fig3_table(fresh, gap_seed0, seed_sd)
    failures = tolerance.compare_folders(committed, fresh).failures
    assert bool(failures) == failing
    if failures:
        assert failures[0].startswith("comparison_with_paper: Fig. 3")
        assert ("its seed spread" in failures[0]) == (seed_sd is not None)
