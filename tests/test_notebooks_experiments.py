"""The experiments' notebooks (07 the study, 09 the budget ladder, 10 the unrolled reconstructor) run
headlessly with papermill at the smoke preset, write their verdicts, and nbval re-runs them and compares the
marked cells.
Apart from the reproduction's notebooks (``test_notebooks.py``), so that two test workers run both at once:
neither half reads the other's runs."""

import pytest

import prkd
from prkd import reproduce
from prkd.views.experiment_report import COMMON_TABLES

from conftest import assert_ran_at_smoke, nbval_result

#: The notebooks of this file; ``test_notebooks.py`` runs the others.
EXPERIMENTS = ["07", "09", "10"]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run the experiments' notebooks once at the smoke preset (outputs in a temporary folder)."""
    out_root = tmp_path_factory.mktemp("experiments")
    return reproduce.run_notebooks("smoke", registry=prkd.open_registry(out_root), only=EXPERIMENTS)


def test_every_notebook_ran_and_was_written(executed):
    assert_ran_at_smoke(executed, EXPERIMENTS)


def test_the_study_notebook_writes_its_verdict_and_runs_table(executed):
    # notebook 07, apart from the smoke reproduction
    folder = executed.parent.parent / "figures" / "study-smoke"
    names = {p.name for p in folder.iterdir()}
    assert {f"{n}.csv" for n in COMMON_TABLES + ("beta_sweep",)} | {"verdict.md", "wall_time.json"} <= names
    assert {f"study_{n}.png" for n in ("curves", "mechanism", "beta_sweep", "teachers", "masks")} <= names
    verdict = (folder / "verdict.csv").read_text()
    assert verdict.startswith("claim,A,B,seeds,") and "student (KD, L_t = 9) > E2E" in verdict
    runs = (folder / "runs.csv").read_text().splitlines()
    assert runs[0].startswith("steps,n_train,group,seed,run_id") and "mask_drift_no_offset_rad" in runs[0]
    assert len(runs) > 20 and (folder / "records" / "_launches.json").is_file()


def test_the_ladder_notebook_writes_its_verdict_trend_and_runs(executed):
    folder = executed.parent.parent / "figures" / "ladder-smoke"  # notebook 09
    names = {p.name for p in folder.iterdir()}
    assert {f"{n}.csv" for n in COMMON_TABLES + ("trend", "beta_sweep", "noise_level")} | {
        "verdict.md", "wall_time.json", "ladder_trend.png", "ladder_within_runs.png"} <= names
    verdict = (folder / "verdict.csv").read_text().splitlines()
    assert verdict[0].startswith("steps,comparison,scoring,teachers,seeds,mean A (dB),mean B (dB),ΔPSNR (dB),"
                                 "low,high,p,")
    assert "p (Holm)" in verdict[0] and any(",KD − E2E,refined," in row for row in verdict)
    runs = (folder / "runs.csv").read_text().splitlines()
    assert runs[0].startswith("steps,n_train,group,seed,run_id") and "refined_psnr" in runs[0]
    assert len(runs) == 29


def test_the_unrolled_notebook_writes_its_verdict_teachers_classical_and_costs(executed):
    folder = executed.parent.parent / "figures" / "unrolled-smoke"  # notebook 10
    assert {f"{n}.csv" for n in COMMON_TABLES + ("teachers", "classical", "costs")} <= {
        p.name for p in folder.iterdir()}
    verdict = (folder / "verdict.csv").read_text()
    assert "unrolled E2E − U-Net E2E refined (the bar)" in verdict and "p (Holm)" in verdict.splitlines()[0]
    classical = (folder / "classical.csv").read_text()
    assert ",raw," in classical and ",oracle," in classical


def test_nbval_reproduces_the_checked_cells(executed):
    result = nbval_result(executed)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
