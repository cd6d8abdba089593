"""benchmarks/reproduce_wall.py runs a checkout's reproduction in a child that imports that checkout's prkd,
and refuses a folder whose child would import another prkd. No timing is asserted (docs/performance.md)."""

import importlib.util
import json

import pytest

from conftest import REPO


def _load(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # as when run as a script: its folder first
    path = REPO / "benchmarks" / "reproduce_wall.py"
    spec = importlib.util.spec_from_file_location("benchmark_reproduce_wall", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reproduce_wall_times_both_checkouts_and_writes_the_ratio(tmp_path, capsys, monkeypatch):
    out = tmp_path / "wall.json"
    kept = tmp_path / "kept"
    arguments = ["--old", str(REPO), "--preset", "smoke", "--only", "01", "--out", str(out),
                 "--keep", str(kept)]
    assert _load(monkeypatch).main(arguments) == 0
    record = json.loads(out.read_text())
    assert record["only"] == ["01"] and record["preset"] == "smoke"
    for which in ("old", "new"):
        [result] = record[which]
        assert result["prkd"].startswith(str(REPO)) and result["seconds"] > 0
        assert list(result["notebooks"]) == ["01_sensing_model"]
        assert 0 < result["notebooks"]["01_sensing_model"] < result["seconds"]
        executed = kept / result["output_dir"] / "notebooks" / "smoke" / "01_sensing_model.ipynb"
        assert executed.is_file()  # kept, e.g. for check-results
    assert record["new"][0]["output_dir"] != record["old"][0]["output_dir"]
    assert "cores, gemm_gflops_1thread" in record["machine"]  # the machine, to scale the seconds by
    ratio = record["new"][0]["seconds"] / record["old"][0]["seconds"]
    assert record["reproduce_new_over_old"] == pytest.approx(ratio, rel=1e-3)
    assert "reproduce_new_over_old:" in capsys.readouterr().out


def test_reproduce_wall_refuses_a_folder_without_its_own_prkd(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="not that checkout's prkd"):
        _load(monkeypatch).main(["--old", str(tmp_path), "--preset", "smoke", "--only", "01"])
