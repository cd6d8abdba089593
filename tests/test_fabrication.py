"""Fabricating the learned masks (prkd.fabrication): K-level quantisation, the height map, the exported files,
``python -m prkd export-masks`` and its refusals (which write nothing), and the quantisation-aware
evaluation."""

import json
import math
import shutil

import numpy as np
import pytest
import torch

import prkd
from prkd.__main__ import main
from prkd.data import load_splits
from prkd.fabrication import (DEFAULT_INDEX, DEFAULT_WAVELENGTH_UM, FabricationError,
                              export_masks, height_map_um,
                              level_index, quantisation_table, quantize_phase)
from prkd.learning import get_or_train
from prkd.learning.evaluation import evaluate
from prkd.physics.optics import mask_level_penalty, wrapped_phase_change
from prkd.registry import Run, RunNotFoundError

TINY = dict(mode="teacher", n_masks=2, n_train=64, n_val=32, n_test=32, batch_size=16, epochs=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(registry, a complete tiny teacher run with two masks, its data)."""
    cfg = prkd.make("smoke", **TINY)
    data = load_splits(cfg.data, download=False)
    registry = prkd.open_registry(tmp_path_factory.mktemp("registry"))
    run = get_or_train(cfg, registry=registry, data=data, progress=False, log=lambda m: None)
    return registry, run, data


def _learned_phi(run) -> torch.Tensor:
    return run.load_system().sensing.phi.detach().double()


@pytest.mark.parametrize("levels", [2, 3, 4, 16])
def test_quantisation_puts_every_phase_on_the_nearest_of_k_levels(levels):
    generator = torch.Generator().manual_seed(1)
    phi = torch.cat([torch.empty(2000, dtype=torch.float64).uniform_(-20, 20, generator=generator),
                     torch.tensor([0.0, 2 * math.pi, -1e-9, 2 * math.pi - 1e-9, 4 * math.pi],
                                  dtype=torch.float64)])
    q = quantize_phase(phi, levels)
    k = q * levels / (2 * math.pi)
    assert q.shape == phi.shape and q.dtype == phi.dtype
    assert torch.allclose(k, k.round(), atol=1e-9) and k.min() >= 0 and k.round().max() <= levels - 1
    assert torch.equal(k.round().long(), level_index(phi, levels))
    error = wrapped_phase_change(phi, q)
    assert error.max() <= math.pi / levels + 1e-9
    # brute force: the nearest level
    grid = torch.arange(levels, dtype=torch.float64) * (2 * math.pi / levels)
    nearest = wrapped_phase_change(phi[:, None], grid[None, :]).min(dim=1).values
    assert torch.allclose(error, nearest, atol=1e-9)
    # 2 pi, just below 0 and just below 2 pi all wrap to level 0
    assert q[-5:].tolist() == [0.0, 0.0, 0.0, 0.0, 0.0]


def test_two_levels_are_zero_and_pi():
    phi = torch.tensor([0.0, 1.5, 1.6, math.pi, 4.8, 6.2, -0.1, -3.0, 7.0], dtype=torch.float64)
    expected = [0.0, 0.0, math.pi, math.pi, 0.0, 0.0, 0.0, math.pi, 0.0]
    assert quantize_phase(phi, 2).tolist() == pytest.approx(expected)


def test_sixteen_levels_on_the_learned_masks(trained):
    _, run, _ = trained
    phi = _learned_phi(run)
    q = quantize_phase(phi.float(), 16)
    assert q.dtype == torch.float32 and q.shape == phi.shape
    assert set(torch.unique(level_index(phi, 16)).tolist()) <= set(range(16))
    assert wrapped_phase_change(phi, q.double()).max() <= math.pi / 16 + 1e-6


@pytest.mark.parametrize("bad", [1, 0, -4, 2.5, True, "4", 70_000])
def test_bad_levels_are_refused_naming_the_field(bad):
    with pytest.raises(FabricationError, match=r"levels must be an integer in \[2, 65536\]"):
        quantize_phase(torch.zeros(3), bad)


def test_the_height_map_is_phi_lambda_over_two_pi_n_minus_one():
    phi = torch.tensor([0.0, math.pi / 2, math.pi, 6.0], dtype=torch.float64)
    h = height_map_um(phi, wavelength_um=0.633, index=1.457)
    assert torch.allclose(h, phi * 0.633 / (2 * math.pi * 0.457))
    assert height_map_um(2 * math.pi) == pytest.approx(DEFAULT_WAVELENGTH_UM / (DEFAULT_INDEX - 1))
    assert height_map_um(np.array([math.pi]), 0.5, 2.0).tolist() == pytest.approx([0.25])
    for kwargs, field in ((dict(wavelength_um=0.0), "wavelength_um"),
                          (dict(wavelength_um=-1.0), "wavelength_um"),
                          (dict(wavelength_um=math.nan), "wavelength_um"), (dict(index=1.0), "index"),
                          (dict(index=0.5), "index")):
        with pytest.raises(FabricationError, match=f"{field} must be a finite number >"):
            height_map_um(phi, **kwargs)


def _ihdr(path):
    """(width, height, bit depth, colour type) from a PNG's header."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    return int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big"), raw[24], raw[25]


def test_export_writes_phase_png_and_height_map_of_every_mask(trained, tmp_path):
    from PIL import Image
    _, run, _ = trained
    out = tmp_path / "masks"
    written = export_masks(run, out, levels=4, wavelength_um=0.633, index=1.457)
    phi = _learned_phi(run)
    size = run.config().data.image_size
    names = [f"mask_{i}{s}" for i in range(2) for s in ("_phase_rad.npy", ".png", "_height_um.npy",
                                                        "_height_um.csv")]
    assert [p.name for p in written] == names + ["masks.json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        names + ["masks.json"])
    for i in range(2):
        phase = np.load(out / f"mask_{i}_phase_rad.npy")
        assert phase.shape == (size, size) and phase.dtype == np.float64
        assert np.array_equal(phase, quantize_phase(phi[i], 4).numpy())
        assert set(np.unique(phase).tolist()) <= {0.0, math.pi / 2, math.pi, 3 * math.pi / 2}
        assert _ihdr(out / f"mask_{i}.png") == (size, size, 16, 0)
        with Image.open(out / f"mask_{i}.png") as img:
            values = np.array(img).astype(np.int64)
        assert values.shape == (size, size) and set(np.unique(values).tolist()) <= {0, 16384, 32768, 49152}
        assert np.allclose(values * 2 * math.pi / 65536, phase)
        height = np.load(out / f"mask_{i}_height_um.npy")
        assert height.dtype == np.float64 and np.allclose(height, phase * 0.633 / (2 * math.pi * 0.457))
        assert np.allclose(np.loadtxt(out / f"mask_{i}_height_um.csv", delimiter=","), height, rtol=1e-8)


def test_masks_json_records_the_levels_and_the_parameters(trained, tmp_path):
    _, run, _ = trained
    export_masks(run, tmp_path / "m", levels=8)
    record = json.loads((tmp_path / "m" / "masks.json").read_text())
    cfg = run.config()
    phi = _learned_phi(run)
    assert record["run_id"] == run.id and record["levels"] == 8 and record["n_masks"] == 2
    assert record["level_phases_rad"] == pytest.approx([2 * math.pi * k / 8 for k in range(8)])
    assert record["level_heights_um"] == pytest.approx([0.532 * k / 8 / 0.5 for k in range(8)])
    assert (record["wavelength_um"], record["index"]) == (DEFAULT_WAVELENGTH_UM, DEFAULT_INDEX)
    assert record["shape"] == [cfg.data.image_size] * 2
    assert record["pixels_per_mask"] == cfg.data.image_size ** 2
    assert (record["image_size"], record["pad_factor"]) == (cfg.data.image_size, cfg.data.pad_factor)
    error = wrapped_phase_change(phi, quantize_phase(phi, 8)).max().item()
    assert record["max_quantisation_error_rad"] == pytest.approx(error) and error <= math.pi / 8 + 1e-9
    assert [sum(c) for c in record["level_counts"]] == [cfg.data.image_size ** 2] * 2
    assert record["files"][1]["png"] == "mask_1.png"


def test_the_cli_exports_and_names_the_folder(trained, tmp_path, capsys):
    registry, run, _ = trained
    out = tmp_path / "cli"
    assert main(["--output-dir", str(registry.root), "export-masks", run.id, "--levels", "16",
                 "--wavelength-um", "0.8", "--index", "1.46", "--out", str(out)]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    record = json.loads((out / "masks.json").read_text())
    assert (record["levels"], record["wavelength_um"], record["index"]) == (16, 0.8, 1.46)


@pytest.mark.parametrize("args, says", [
    (["teacher-L2-smoke-s0-0000000000", "--levels", "4"],
     "run 'teacher-L2-smoke-s0-0000000000' does not exist"),
    (["RUN", "--levels", "1"], "levels must be an integer in [2, 65536]"),
    (["RUN", "--levels", "4", "--wavelength-um", "0"], "wavelength_um must be a finite number > 0"),
    (["RUN", "--levels", "4", "--wavelength-um", "-0.5"], "wavelength_um must be a finite number > 0"),
    (["RUN", "--levels", "4", "--index", "1"], "index must be a finite number > 1"),
    (["RUN", "--levels", "4", "--index", "0.9"], "index must be a finite number > 1"),
])
def test_the_cli_refuses_bad_input_and_writes_nothing(trained, tmp_path, capsys, args, says):
    registry, run, _ = trained
    out = tmp_path / "never"
    argv = [a.replace("RUN", run.id) for a in args]
    assert main(["--output-dir", str(registry.root), "export-masks", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("prkd: error: ") and says in err
    assert not out.exists()


def test_a_non_integer_k_is_refused_by_the_parser(trained, tmp_path, capsys):
    registry, run, _ = trained
    with pytest.raises(SystemExit) as exit_:
        main(["--output-dir", str(registry.root), "export-masks", run.id, "--levels", "2.5", "--out",
              str(tmp_path / "x")])
    assert exit_.value.code == 2 and "--levels" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_an_incomplete_run_is_refused_and_nothing_is_written(trained, tmp_path):
    _, run, _ = trained
    copy = Run(tmp_path / "runs" / run.id)
    shutil.copytree(run.path, copy.path)
    copy.metrics_file.unlink()
    with pytest.raises(RunNotFoundError, match="not complete"):
        export_masks(copy, tmp_path / "out", levels=4)
    with pytest.raises(RunNotFoundError, match="does not exist"):
        export_masks(Run(tmp_path / "runs" / "nothing-here"), tmp_path / "out", levels=4)
    assert not (tmp_path / "out").exists()


def test_quantisation_table_rows_and_the_unquantised_row_is_the_runs_own_test(trained):
    _, run, data = trained
    rows = quantisation_table(run, data=data)
    print("\n".join(f"{r['label']:>12}: PSNR {r['psnr']:.3f} dB (drop {r['psnr_drop_db']:+.3f}), SSIM "
                    f"{r['ssim']:.4f}, max error {r['max_error_rad']:.3f} rad, R at K "
                    f"{r['mask_penalty_at_levels']}" for r in rows))
    assert [r["label"] for r in rows] == ["unquantised", "K=2", "K=4", "K=8", "K=16"]
    assert [r["levels"] for r in rows] == [None, 2, 4, 8, 16]
    cfg = run.config()
    own = evaluate(run.load_system(), data.test, batch_size=256, seed=cfg.train.seed + 1)
    assert (rows[0]["psnr"], rows[0]["ssim"]) == pytest.approx((own["psnr"], own["ssim"]))
    # trained (and tested) here; a GPU's bfloat16 U-Net differs a little
    if run.metrics()["device"].startswith("cpu"):
        assert rows[0]["psnr"] == pytest.approx(run.metrics()["test_psnr"], abs=1e-4)
    phi = _learned_phi(run)
    penalty = mask_level_penalty(phi, cfg.optics.mask_levels).item()
    assert all(r["mask_penalty"] == pytest.approx(penalty) for r in rows)
    assert all(r["rho"] == cfg.optics.rho and r["max_error_rad"] <= math.pi / (r["levels"] or math.inf) + 1e-6
               for r in rows)
    assert all(r["psnr"] < rows[0]["psnr"] + 1.0 for r in rows[1:])  # coarse masks do not help (much)
    assert abs(rows[-1]["psnr_drop_db"]) < 1.0  # 16 levels: within 1 dB of the learned masks


def test_quantisation_table_refuses_bad_levels_before_loading(trained):
    _, run, _ = trained
    with pytest.raises(FabricationError, match="levels"):
        quantisation_table(run, levels=(4, 1))


def test_quantisation_table_evaluates_the_quantised_masks_and_restores_the_learned_ones(trained, monkeypatch):
    """The tiny run's U-Net has barely learned (every row scores alike), so check what each row evaluated."""
    import prkd.fabrication as fabrication
    _, run, data = trained
    seen = []

    def spy(system, images, **kw):
        seen.append(system.sensing.phi.detach().clone())
        result = evaluate(system, images, **kw)
        seen.append(system)
        return result

    monkeypatch.setattr(fabrication, "evaluate", spy)
    quantisation_table(run, levels=(2, 8), data=data.test)
    phis, systems = seen[0::2], seen[1::2]
    learned = _learned_phi(run).float()
    assert torch.equal(phis[0], learned)
    for phi, k in zip(phis[1:], (2, 8)):
        assert torch.equal(phi, quantize_phase(learned, k))
    assert torch.equal(systems[-1].sensing.phi.detach(), learned)  # put back after the last row
