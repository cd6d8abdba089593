"""Notebook 08's fair comparison at L = 1: the best-trained learned single-snapshot systems and the classical
solvers on the same CDPs, each method scored both ways, with paired per-image bootstrap intervals.

* **raw**: what a user gets without knowing the scene. A classical estimate goes through the reference-free
  global-phase rule (``prkd.classical.phase_image(reference=None)``); a learned output is scored as it is.
* **oracle**: a classical estimate is aligned to the truth's global phase (as notebook 08's sweep does); a
  learned output gets its best constant phase offset, the same least-squares alignment applied to exp(j pr
  x_hat).

The methods on each system's CDPs (its own masks and noise): the learned output, the learned output refined by
RAAR (``prkd.learning.refine``, no oracle), error reduction and RAAR from their own spectral start, and the
zero-phase floor. Each difference is paired image by image against the learned output in the same scoring.

A run's per-image scores are computed once and kept in its folder (``fair.json``, by image count and seed)
and in its record (``prkd.registry.records``), so the comparison can be written in a later sitting than the
one that trained the run.
"""

from __future__ import annotations

import json

import torch

from prkd.classical import gerchberg_saxton, phase_image, raar, zero_phase
from prkd.data import to_images
from prkd.experiments.classical_sweep import PSNR_CAP_DB
from prkd.experiments.stats import paired_images
from prkd.utils.seeding import seeded_generator
from prkd.learning.refine import refine_output
from prkd.metrics import psnr
from prkd.physics.system import PRSystem
from prkd.registry.records import RunRecord
from prkd.utils import atomic
from prkd.utils.device import default_device

__all__ = ["FAIR_FILE", "FAIR_IMAGES", "ITERATIONS", "method_scores", "run_method_scores", "fair_rows",
           "ladder_systems"]

FAIR_FILE = "fair.json"
#: Test images the fair comparison scores (notebook 08 at every preset but smoke).
FAIR_IMAGES = 256

ITERATIONS = 200
SCORINGS = ("raw", "oracle")
#: The methods in the order of every table (stored scores are re-read in this order).
METHODS = ("learned (U-Net)", f"learned + RAAR {ITERATIONS} (no oracle)", f"ER {ITERATIONS}",
           f"RAAR {ITERATIONS}",
           "zero phase")


def _per_image(estimate: torch.Tensor, img: torch.Tensor) -> list[float]:
    return psnr(estimate, img).clamp(max=PSNR_CAP_DB).tolist()


def _both(z: torch.Tensor, img: torch.Tensor, pr: float) -> dict[str, list[float]]:
    """A complex estimate (B, N, N) scored raw (reference-free rule) and with the oracle."""
    return {"raw": _per_image(phase_image(z, pr), img),
            "oracle": _per_image(phase_image(z, pr, reference=img), img)}


def _learned_both(x_hat: torch.Tensor, img: torch.Tensor, pr: float) -> dict[str, list[float]]:
    """A learned phase image scored as it is (raw) and after its best constant phase offset (oracle)."""
    z = torch.polar(torch.ones_like(x_hat[:, 0]), pr * x_hat[:, 0].clamp(0, 1))
    return {"raw": _per_image(x_hat, img), "oracle": _per_image(phase_image(z, pr, reference=img), img)}


@torch.no_grad()
def _methods(system: PRSystem, img: torch.Tensor, seed: int) -> dict[str, dict[str, list[float]]]:
    pr, n = system.cfg.data.phase_range, img.shape[-1]
    out = system(img, generator=seeded_generator(seed, "fair-comparison", device=img.device))
    refined = refine_output(out.x_hat, out.y, system.sensing, phase_range=pr, refine="raar",
                            iterations=ITERATIONS)
    scored = (_learned_both(out.x_hat, img, pr), _learned_both(refined, img, pr),
              _both(gerchberg_saxton(out.y, system.sensing, size=n, iterations=ITERATIONS).z, img, pr),
              _both(raar(out.y, system.sensing, size=n, iterations=ITERATIONS).z, img, pr),
              _both(zero_phase(out.y, system.sensing, size=n).z, img, pr))
    return dict(zip(METHODS, scored))


def method_scores(system: PRSystem, images: torch.Tensor, *, n_images: int = FAIR_IMAGES, seed: int = 0,
                  batch: int = 128
                  ) -> dict[str, dict[str, list[float]]]:
    """Per-image test PSNR of every method on ``system``'s CDPs of the first ``n_images`` images, by method
    and scoring ("raw", "oracle")."""
    system.eval()
    device = next(system.parameters()).device
    img_all = to_images(images[:n_images], system.cfg.data.image_size).to(device)
    scores: dict[str, dict[str, list[float]]] = {}
    for i, start in enumerate(range(0, len(img_all), batch)):
        for method, both in _methods(system, img_all[start:start + batch], seed + i).items():
            for scoring, values in both.items():
                scores.setdefault(method, {}).setdefault(scoring, []).extend(values)
    return scores


def run_method_scores(run, images: torch.Tensor, *, n_images: int = FAIR_IMAGES, seed: int = 0,
                      batch: int = 128,
                      device: torch.device | None = None) -> dict[str, dict[str, list[float]]]:
    """``method_scores`` of a complete run's system, computed once and then read from the run's ``fair.json``
    (or from its record, which keeps the scores it was written with)."""
    key = f"{n_images}-{seed}"
    if isinstance(run, RunRecord):
        if key not in run.fair:
            raise KeyError(f"the record of run {run.id} has no fair-comparison scores for {key} "
                           f"(it has {sorted(run.fair)})")
        return {m: run.fair[key][m] for m in METHODS}
    path = run.path / FAIR_FILE
    stored = json.loads(path.read_text()) if path.is_file() else {}
    if key not in stored:
        system = run.load_system(device or default_device())
        scores = method_scores(system, images, n_images=n_images, seed=seed, batch=batch)
        stored[key] = {m: {k: [round(v, 4) for v in vals] for k, vals in both.items()} for m,
                       both in scores.items()}
        atomic.write_json(path, stored)
    return {m: stored[key][m] for m in METHODS}


def fair_rows(runs: dict, images: torch.Tensor, *, n_images: int = FAIR_IMAGES, seed: int = 0,
              batch: int = 128,
              device: torch.device | None = None) -> list[dict]:
    """One row per (system, method, scoring): mean test PSNR over ``n_images`` and the paired per-image
    bootstrap
    95 % interval of the method minus the learned output in the same scoring. ``runs`` maps a label (which
    should say the run's steps and noise) to a complete single-snapshot run (or its record)."""
    rows = []
    for label, run in runs.items():
        scores = run_method_scores(run, images, n_images=n_images, seed=seed, batch=batch, device=device)
        for method, both in scores.items():
            for scoring in SCORINGS:
                values, base = both[scoring], scores["learned (U-Net)"][scoring]
                d = paired_images(values, base) if method != "learned (U-Net)" else None
                rows.append({"system": label, "noise": run.config().optics.noise, "method": method,
                             "scoring": scoring, "images": len(values),
                             "PSNR (dB)": round(sum(values) / len(values), 2),
                             "Δ vs learned (dB)": "" if d is None else round(d.mean, 2),
                             "low": "" if d is None else round(d.low, 2), "high": "" if d is None
                             else round(d.high, 2)})
    return rows


def ladder_systems(results, seed: int = 0) -> dict[str, "object"]:
    """The best-trained single-snapshot runs of a budget ladder
    (``prkd.experiments.engine.Results`` of ``prkd.experiments.ladder.LADDER``) by label: E2E, KD and random
    of seed ``seed`` at the highest rung where all three are complete (noise-free), and the noisy three at the
    rung that trains them. Returns label -> Run."""
    out = {}
    for suffix in ("", " noisy"):
        groups = [f"{g}{suffix}" for g in ("e2e", "KD", "random")]
        rungs = [s for s in results.rungs if all((s, g, seed) in results.runs for g in groups)]
        if rungs:
            top = max(rungs)
            for g in groups:
                out[f"{g} @{top} steps"] = results.runs[(top, g, seed)]
    return out
