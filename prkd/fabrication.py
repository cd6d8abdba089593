"""Fabricating the learned masks: quantise their phases to K levels, export them for a mask maker, and
measure what the quantisation costs in test PSNR / SSIM.

A coded phase mask made by K-level lithography (or shown on a phase SLM with a K-entry look-up table) can
take only the phases 2 pi k / K, k = 0..K-1 -- the levels that the regularizer R(phi) of Eq. (4) pulls toward
(``prkd.physics.optics.mask_level_penalty``, weight ``OpticsConfig.rho``, levels
``OpticsConfig.mask_levels``).

Conventions:

* **Quantisation** (``quantize_phase``): a phase is first wrapped to [0, 2 pi) (e^{j phi} is 2 pi-periodic,
  so the optics see no change) and then rounded to the *nearest* level 2 pi k / K. A phase less than pi / K
  below 2 pi rounds to k = K, which is level 0 (k = K wraps to 0). So the wrapped error |phi - q| mod 2 pi is
  at most pi / K. An exact tie goes to the even k (``torch.round``).
* **Height map** (``height_map_um``): the relief of a transmissive mask of refractive index n in air that
  delays the light by phi at wavelength lambda is h = phi lambda / (2 pi (n - 1)). Wavelengths and heights
  are in
  **micrometres** (``wavelength_um``). The defaults, 0.532 um (a green, frequency-doubled Nd:YAG line) and n
  = 1.5 (a typical photoresist; fused silica is about 1.46 at 532 nm), are examples only: the paper and the
  issue give no fabrication parameters, so pass those of your process.
* **PNG**: 16-bit grayscale, value v <-> phase 2 pi v / 65536 rad (0..65535 covers [0, 2 pi)); 65536 levels
  at most.

``export_masks`` writes, for each mask l = 0..L-1 (l zero-padded to the width of L - 1):
``mask_<l>_phase_rad.npy`` (the quantised wrapped phase, float64, radians), ``mask_<l>.png`` (16-bit),
``mask_<l>_height_um.npy`` and ``mask_<l>_height_um.csv`` (micrometres, one CSV row per pixel row), and last
``masks.json`` (levels, parameters, shapes, the quantisation error): a folder with ``masks.json`` holds a
complete export. The masks are the full M x M = (pad_factor * image_size)^2 parameter phi; the scene lights
the top-left image_size x image_size pixels (``prkd.physics.scene.phase_object``). Every file is written
atomically; on bad input (``FabricationError``, or the run's own errors) nothing is written, not even the
folder.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from prkd.data import Splits, load_splits
from prkd.learning.evaluation import evaluate
from prkd.physics.optics import mask_level_penalty, wrapped_phase_change
from prkd.registry import Run, RunNotFoundError
from prkd.utils import atomic

__all__ = ["DEFAULT_INDEX", "DEFAULT_WAVELENGTH_UM", "MAX_LEVELS", "FabricationError", "check_levels",
           "check_optics",
           "export_masks", "height_map_um", "level_index", "quantisation_table", "quantize_phase"]

DEFAULT_WAVELENGTH_UM = 0.532  # an example (a green laser line); not from the paper
DEFAULT_INDEX = 1.5  # an example (a photoresist; fused silica ~1.46); not from the paper
PNG_STEPS = 65536  # 16-bit PNG: value v <-> 2 pi v / PNG_STEPS rad
MAX_LEVELS = PNG_STEPS  # more levels than the PNG can tell apart would not survive the export

TWO_PI = 2 * math.pi


class FabricationError(ValueError):
    """A fabrication parameter (levels, wavelength_um, index, out_dir) is outside its range; the message
    names the parameter and the allowed range."""


def check_levels(levels) -> int:
    """``levels`` as an int, or FabricationError unless it is an integer K in [2, MAX_LEVELS]."""
    if isinstance(levels, bool) or not isinstance(levels, numbers.Integral) or not 2 <= levels <= MAX_LEVELS:
        raise FabricationError(f"levels must be an integer in [2, {MAX_LEVELS}] (the number K of phase "
                               f"levels 2 pi k / K); got {levels!r}")
    return int(levels)


def check_optics(wavelength_um, index) -> tuple[float, float]:
    """(wavelength_um, index) as floats, or FabricationError unless wavelength_um > 0 and index > 1, both
    finite."""
    for name, value, lo, what in (("wavelength_um", wavelength_um, 0.0, "the wavelength in micrometres"),
                                  ("index", index, 1.0, "the refractive index of the mask material")):
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value <= lo:
            raise FabricationError(f"{name} must be a finite number > {lo:g} ({what}); got {value!r}")
    return float(wavelength_um), float(index)


def level_index(phi, levels: int) -> torch.Tensor:
    """Index k in 0..K-1 (int64) of the level 2 pi k / K nearest to each phase of ``phi`` (radians, any real
    values, tensor or array): phi is wrapped to [0, 2 pi) and rounded; k = K wraps to 0 (see the module
    doc)."""
    k = check_levels(levels)
    wrapped = torch.as_tensor(phi).double().remainder(TWO_PI)
    return torch.round(wrapped * (k / TWO_PI)).long().remainder(k)


def quantize_phase(phi, levels: int) -> torch.Tensor:
    """``phi`` wrapped to [0, 2 pi) and rounded to the nearest of the K levels 2 pi k / K (radians).

    Returns a tensor of ``phi``'s shape, device and floating dtype (float64 for integer input); every value
    is one of the K levels and the wrapped error ``wrapped_phase_change(phi, q)`` is at most pi / K.
    """
    t = torch.as_tensor(phi)
    dtype = t.dtype if t.is_floating_point() else torch.float64
    return (level_index(t, levels).double() * (TWO_PI / levels)).to(dtype)


def height_map_um(phi_wrapped, wavelength_um: float = DEFAULT_WAVELENGTH_UM, index: float = DEFAULT_INDEX):
    """Relief height h = phi lambda / (2 pi (n - 1)) in micrometres of the phases ``phi_wrapped`` (radians;
    pass wrapped phases, [0, 2 pi), so h lies in [0, lambda / (n - 1))), for ``wavelength_um`` in micrometres
    and refractive index ``index`` > 1. Works on tensors, arrays and numbers alike."""
    wavelength_um, index = check_optics(wavelength_um, index)
    return phi_wrapped * (wavelength_um / (TWO_PI * (index - 1.0)))


def _png16(values: np.ndarray) -> bytes:
    """A 16-bit grayscale PNG (no interlace, no filter) of the 2-D uint16 array ``values``."""
    height, width = values.shape
    rows = np.ascontiguousarray(values, dtype=">u2").view(np.uint8).reshape(height, 2 * width)
    raw = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()  # filter type 0 before every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, 0, 0, 0, 0)  # bit depth 16, colour type 0 (grayscale)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _csv(array: np.ndarray) -> bytes:
    buffer = io.StringIO()
    np.savetxt(buffer, array, fmt="%.9g", delimiter=",")
    return buffer.getvalue().encode()


def _mask_files(q: np.ndarray, wavelength_um: float, index: float) -> tuple[dict[str, bytes], list[dict]]:
    """The bytes of every per-mask file of the quantised phases ``q`` (L, M, M), and their names per mask."""
    width = len(str(len(q) - 1))
    files, names = {}, []
    for mask, phase in enumerate(q):
        stem = f"mask_{mask:0{width}d}"
        height = height_map_um(phase, wavelength_um, index)
        png = np.round(phase * (PNG_STEPS / TWO_PI)).astype(np.int64) % PNG_STEPS
        entry = {"mask": mask, "phase_rad": f"{stem}_phase_rad.npy", "png": f"{stem}.png",
                 "height_um_npy": f"{stem}_height_um.npy", "height_um_csv": f"{stem}_height_um.csv"}
        files.update({entry["phase_rad"]: _npy(phase), entry["png"]: _png16(png.astype(np.uint16)),
                      entry["height_um_npy"]: _npy(height), entry["height_um_csv"]: _csv(height)})
        names.append(entry)
    return files, names


def _record(run: Run, cfg, phi: torch.Tensor, levels: int, wavelength_um: float, index: float,
            names: list[dict]) -> dict:
    """The content of ``masks.json``."""
    k = level_index(phi, levels)
    q = k.double() * (TWO_PI / levels)
    phases = [TWO_PI * i / levels for i in range(levels)]
    return {
        "run_id": run.id, "mode": cfg.train.mode, "preset": cfg.preset, "levels": levels,
        "level_phases_rad": phases, "level_heights_um": [height_map_um(p, wavelength_um, index)
                                                         for p in phases],
        "wavelength_um": wavelength_um, "index": index,
        "height_formula": "h_um = phase_rad * wavelength_um / (2 pi (index - 1))",
        "full_wave_height_um": wavelength_um / (index - 1.0),
        "n_masks": int(phi.shape[0]), "shape": list(phi.shape[1:]), "pixels_per_mask": int(phi[0].numel()),
        "image_size": cfg.data.image_size, "pad_factor": cfg.data.pad_factor,
        "scene_pixels": "the top-left image_size x image_size pixels of each mask",
        "max_quantisation_error_rad": wrapped_phase_change(phi, q).max().item(),
        "error_bound_rad": math.pi / levels,
        # pixels per level
        "level_counts": ([torch.bincount(m.flatten(), minlength=levels).tolist() for m in k]
                         if levels <= 256 else None),
        "png_encoding": f"16-bit grayscale; value v <-> phase 2 pi v / {PNG_STEPS} rad",
        "rounding": "wrap to [0, 2 pi), round to the nearest level 2 pi k / K; k = K wraps to 0",
        "config_mask_levels": cfg.optics.mask_levels, "config_rho": cfg.optics.rho, "files": names,
    }


def _learned_phi(run: Run, device: torch.device | str = "cpu"):
    """(system, its phi as float64) of a complete run; RunNotFoundError / DamagedRunError otherwise."""
    if not run.exists:
        raise RunNotFoundError(f"run '{run.id}' does not exist ({run.config_file} is missing)")
    system = run.load_system(device)
    return system, system.sensing.phi.detach().double()


def export_masks(run: Run, out_dir: str | os.PathLike, *, levels: int,
                 wavelength_um: float = DEFAULT_WAVELENGTH_UM,
                 index: float = DEFAULT_INDEX) -> list[Path]:
    """Write the run's masks, quantised to ``levels`` K, into ``out_dir`` (see the module doc for the files).

    Every input is checked before anything is written; files that exist are replaced (each atomically), and
    ``masks.json`` is written last.

    Returns:
        the paths written, ``masks.json`` last.
    Raises:
        FabricationError: levels, wavelength_um or index out of range, or ``out_dir`` is not a folder.
        RunNotFoundError: the run does not exist or is not complete. DamagedRunError /
        CorruptCheckpointError: its files are damaged.
    """
    levels = check_levels(levels)
    wavelength_um, index = check_optics(wavelength_um, index)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FabricationError(f"out_dir must be a folder (or not exist yet); {out} is a file")
    system, phi = _learned_phi(run)
    q = quantize_phase(phi, levels).numpy()
    files, names = _mask_files(q, wavelength_um, index)
    record = _record(run, system.cfg, phi, levels, wavelength_um, index, names)
    written = [atomic.write_bytes(out / name, data) for name, data in files.items()]
    written.append(atomic.write_json(out / "masks.json", record))
    return written


def _test_images(data, cfg) -> torch.Tensor:
    if data is None:
        return load_splits(cfg.data).test
    return data.test if isinstance(data, Splits) else data


@torch.no_grad()
def quantisation_table(run: Run, *, levels=(2, 4, 8, 16), data: Splits | torch.Tensor | None = None,
                       device: torch.device | str = "cpu", batch_size: int | None = None) -> list[dict]:
    """Test PSNR / SSIM of the run's system with its masks unquantised and quantised to each K of ``levels``.

    One row per case, the unquantised first (``levels`` None). The noise (if any) is drawn exactly as the
    run's own test (``seed = cfg.train.seed + 1``, the same batches), so the unquantised row reproduces the
    run's
    ``metrics.json`` on the device it was trained on. Every row also carries R(phi) of the learned masks at
    the config's ``mask_levels`` (``mask_penalty``) and the run's ``rho``, so runs trained with rho = 0 and
    rho > 0 can be compared; ``mask_penalty_at_levels`` is R(phi) at the row's K (0 would mean already on the
    levels).

    Args:
        data: the run's splits (their ``test``) or the test images (n, 28, 28) uint8; default ``load_splits``.
        batch_size: default as the run's test: max(min(batch_size, n_train), 256).
    """
    ks = [check_levels(k) for k in levels]
    device = torch.device(device)
    system, phi = _learned_phi(run, device)
    cfg = system.cfg
    images = _test_images(data, cfg)
    batch = batch_size or max(min(cfg.train.batch_size, cfg.data.n_train), 256)
    learned = system.sensing.phi.detach().clone()
    common = {"run_id": run.id, "mode": cfg.train.mode, "rho": cfg.optics.rho,
              "mask_levels": cfg.optics.mask_levels,
              "mask_penalty": mask_level_penalty(phi, cfg.optics.mask_levels).item()}
    rows = []
    try:
        for k in (None, *ks):
            q = learned if k is None else quantize_phase(learned, k)
            system.sensing.phi.copy_(q)
            m = evaluate(system, images, batch_size=batch, seed=cfg.train.seed + 1, device=device)
            rows.append({**common, "label": "unquantised" if k is None else f"K={k}", "levels": k,
                         "psnr": m["psnr"], "ssim": m["ssim"],
                         "psnr_drop_db": rows[0]["psnr"] - m["psnr"] if rows else 0.0,
                         "max_error_rad": wrapped_phase_change(phi, q.double()).max().item(),
                         "mask_penalty_at_levels": None if k is None else mask_level_penalty(phi, k).item()})
    finally:
        system.sensing.phi.copy_(learned)
    return rows
