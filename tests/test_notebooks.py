"""The reproduction's notebooks (01-06, 08) run headlessly with papermill at the smoke preset, and nbval
re-runs them and compares the marked cells. Also: the reproduction runner resumes, and names a failing
notebook. The experiments' notebooks (07, 09, 10) are tested the same way in
``test_notebooks_experiments.py``: two files, so that two test workers run the two halves side by side."""

import json

import pytest

import prkd

from prkd import reproduce
from prkd.config import ConfigError

from conftest import REPO, assert_ran_at_smoke, nbval_result

#: The notebooks of this file; ``test_notebooks_experiments.py`` runs the others.
REPRODUCTION = ["01", "02", "03", "04", "05", "06", "08"]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Run the reproduction's notebooks once at the smoke preset (outputs in a temporary folder)."""
    out_root = tmp_path_factory.mktemp("reproduction")
    return reproduce.run_notebooks("smoke", registry=prkd.open_registry(out_root), only=REPRODUCTION)


def test_every_notebook_is_run_by_one_of_the_two_notebook_test_files():
    from test_notebooks_experiments import EXPERIMENTS
    names = [nb.name for nb in reproduce.notebooks()]
    assert names == ["01_sensing_model.ipynb", "02_initialization.ipynb", "03_e2e_teacher.ipynb",
                     "04_kd_student.ipynb", "05_ablations.ipynb", "06_figures.ipynb",
                     "07_does_distillation_help.ipynb", "08_classical_baselines.ipynb",
                     "09_budget_ladder.ipynb",
                     "10_unrolled.ipynb"]
    assert sorted(REPRODUCTION + EXPERIMENTS) == [name[:2] for name in names]


def test_every_notebook_ran_and_was_written(executed):
    assert_ran_at_smoke(executed, REPRODUCTION)


def test_figures_and_tables_of_the_smoke_reproduction_are_written(executed):
    folder = executed.parent.parent / "figures" / "smoke"  # notebook 06, from the runs of 03-05
    expected = {f"{name}.{ext}" for name in ("fig2_teachers", "fig3_students", "fig4_reconstructions")
                for ext in ("png", "pdf")}
    expected |= {f"{name}.{ext}" for name in ("table1_ablation", "table2_cost",
                                              "comparison_with_paper", "runs")
                 for ext in ("csv", "md", "json")}
    assert {p.name for p in folder.iterdir()} == expected
    assert all((folder / name).stat().st_size > 0 for name in expected)
    table1 = (folder / "table1_ablation.csv").read_text().splitlines()
    assert table1[0].startswith("KD terms,alpha,beta,sigma,PSNR (dB),SSIM") and len(table1) == 5


def test_each_preset_runs_its_notebooks():
    def stems(preset):
        return [nb.stem[:2] for nb in reproduce.notebooks(preset)]

    assert stems("smoke") == ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10"]
    assert stems("quick") == stems("paper") == ["01", "02", "03", "04", "05", "06", "08"]
    assert stems("study") == ["07"]
    assert stems("ladder") == ["09", "10"]


def test_nbval_reproduces_the_checked_cells(executed):
    result = nbval_result(executed)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_source_notebooks_are_committed_clean():
    for nb_path in reproduce.notebooks():
        nb = json.loads(nb_path.read_text())
        tagged = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{nb_path.name} needs exactly one cell tagged 'parameters'"
        assert "preset" in "".join(tagged[0]["source"])
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == []
                assert cell["execution_count"] is None, f"{nb_path.name} has outputs"
                src = "".join(cell["source"])
                assert "sys.path" not in src and "os.chdir" not in src and "cuda" not in src


def test_a_finished_notebook_is_not_run_again(executed, capsys):
    before = {p: p.stat().st_mtime_ns for p in executed.glob("*.ipynb")}
    reproduce.run_notebooks("smoke", registry=prkd.open_registry(executed.parent.parent), only=REPRODUCTION)
    assert {p: p.stat().st_mtime_ns for p in executed.glob("*.ipynb")} == before
    captured = capsys.readouterr()
    assert "01_sensing_model: already done, skipped" in captured.out + captured.err


def test_a_failing_notebook_stops_the_run_with_its_name(tmp_path, monkeypatch, registry):
    import nbformat
    nb_dir = tmp_path / "notebooks"
    nb_dir.mkdir()
    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("preset = 'quick'\nseed = 0",
                                                                      metadata={"tags": ["parameters"]})])
    bad = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('broken on purpose')")])
    for nb in (good, bad):
        nb.metadata.update(kernelspec={"name": "python3", "display_name": "Python 3", "language": "python"},
                           language_info={"name": "python"})
    nbformat.write(good, nb_dir / "01_good.ipynb")
    nbformat.write(bad, nb_dir / "02_bad.ipynb")
    nbformat.write(good, nb_dir / "03_never.ipynb")
    monkeypatch.setattr(reproduce, "NOTEBOOK_DIR", nb_dir)
    with pytest.raises(reproduce.NotebookFailed,
                       match="notebook 02_bad failed.*ValueError: broken on purpose"):
        reproduce.run_notebooks("smoke", registry=registry)
    written = {p.name for p in (registry.root / "notebooks" / "smoke").glob("*")}
    assert "02_bad.ipynb" in written and "03_never.ipynb" not in written  # the failing copy is kept


def test_unknown_preset_and_notebook_are_refused(registry):
    with pytest.raises(ConfigError, match="'preset' must be one of"):
        reproduce.run_notebooks("huge", registry=registry)
    with pytest.raises(ConfigError, match="no notebook matches"):
        reproduce.run_notebooks("smoke", registry=registry, only=["99"])


def test_command_line_reports_a_bad_preset_and_exits_non_zero(prkd_cli):
    result = prkd_cli("reproduce", "--preset", "huge")
    assert result.exited and result.returncode == 2 and "invalid choice: 'huge'" in result.stderr


def test_an_invalid_parameter_fails_with_the_config_error_and_the_executed_notebook_is_kept(tmp_path):
    import papermill as pm
    target = tmp_path / "01_bad_parameter.ipynb"
    with pytest.raises(pm.PapermillExecutionError, match="config field 'preset' must be one of"):
        pm.execute_notebook(str(reproduce.notebooks()[0]), str(target), parameters={"preset": "huge"},
                            kernel_name="python3", progress_bar=False, cwd=str(REPO / "notebooks"))
    nb = json.loads(target.read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "ConfigError"
    expected = "'preset' must be one of 'paper', 'quick', 'study', 'ladder', 'smoke'; got 'huge'"
    assert expected in errors[0]["evalue"]


def test_notebook_kernels_talk_over_ipc_on_posix():
    """The reproduction's kernels use Unix sockets, not TCP: no "running over TCP without encryption"
    warning reaches the terminal (measured by hand: papermill with this manager prints none)."""
    import os

    manager = reproduce._local_kernel_manager()
    first, second = manager(), manager()
    assert first.transport == ("ipc" if os.name == "posix" else "tcp")
    if os.name == "posix":  # two kernels started at once never share their sockets' paths
        assert first.ip != second.ip and len(first.ip) < 90  # a Unix socket's path is at most ~107 bytes
