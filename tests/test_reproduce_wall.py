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


def test_a_reproduction_runs_in_a_child_of_that_checkout_and_keeps_its_folder(tmp_path, monkeypatch):
    kept = tmp_path / "kept"
    result = _load(monkeypatch).time_reproduction(REPO, "smoke", ["01"], kept)
    assert result["prkd"].startswith(str(REPO)) and result["seconds"] > 0
    assert list(result["notebooks"]) == ["01_sensing_model"]
    assert 0 < result["notebooks"]["01_sensing_model"] < result["seconds"]
    executed = kept / result["output_dir"] / "notebooks" / "smoke" / "01_sensing_model.ipynb"
    assert executed.is_file()  # kept, e.g. for check-results


def test_both_checkouts_are_timed_in_turn_and_the_ratio_written(tmp_path, capsys, monkeypatch):
    module = _load(monkeypatch)
    seconds = iter([100.0, 80.0])  # old, then new
    calls = []

    def fake(code, preset, only, keep):
        calls.append((code, preset, only, keep))
        return {"prkd": str(code / "prkd" / "__init__.py"), "seconds": next(seconds), "notebooks": {}}

    monkeypatch.setattr(module, "time_reproduction", fake)
    out, old = tmp_path / "wall.json", tmp_path / "old"
    assert module.main(["--old", str(old), "--preset", "smoke", "--only", "01", "--out", str(out)]) == 0
    assert [c[0] for c in calls] == [old.resolve(), REPO.resolve()]
    assert all(c[1:] == ("smoke", ["01"], None) for c in calls)
    record = json.loads(out.read_text())
    assert record["only"] == ["01"] and record["preset"] == "smoke"
    assert record["reproduce_new_over_old"] == pytest.approx(0.8)
    assert "cores, gemm_gflops_1thread" in record["machine"]  # the machine, to scale the seconds by
    assert "reproduce_new_over_old: 0.8" in capsys.readouterr().out


def test_reproduce_wall_refuses_a_folder_without_its_own_prkd(tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="not that checkout's prkd"):
        _load(monkeypatch).main(["--old", str(tmp_path), "--preset", "smoke", "--only", "01"])
