"""What notebooks 03 and 04 show of a few trained runs' optics, in one place: a table of scores and mask drift
(with a warning where the masks barely moved), the drift and speckle-contrast curves from the start, each
learned run's first mask before and after training, and the checks that the loaded masks are the recorded ones."""

from __future__ import annotations

import math
from typing import Mapping

from prkd.learning.diagnostics import LOW_DRIFT_RAD
from prkd.registry import Run
from prkd.views.plots import plot_history, show_masks

__all__ = ["mask_problems", "plot_drift", "run_table", "show_first_masks"]


def _is_random(run: Run) -> bool:
    return run.config().train.mode == "random"


def run_table(runs: Mapping[str, Run]) -> str:
    """One line per run (snapshots, test PSNR / SSIM, mask drift) and a warning for every learned-mask run whose
    masks moved less than ``LOW_DRIFT_RAD``: its comparison is about U-Nets more than masks."""
    width = max(len(name) for name in runs) + 2
    lines = [f"{'run':{width}s} {'snapshots':>9s} {'test PSNR (dB)':>15s} {'test SSIM':>10s} {'mask drift (rad)':>17s}"]
    for name, run in runs.items():
        m = run.metrics()
        frozen = "  (masks frozen)" if _is_random(run) else ""
        lines.append(f"{name:{width}s} {run.config().optics.n_masks:9d} {m['test_psnr']:15.2f} {m['test_ssim']:10.3f} "
                     f"{m['mask_drift_rad']:17.3f}{frozen}")
    for name, run in runs.items():
        drift = run.metrics()["mask_drift_rad"]
        if not _is_random(run) and drift < LOW_DRIFT_RAD:
            lines.append(f"warning, {name}: masks moved only {drift:.3f} rad (< {LOW_DRIFT_RAD} rad): "
                         "this run compares U-Nets more than masks")
    return "\n".join(lines)


def plot_drift(runs: Mapping[str, Run]):
    """Mask drift |φ − φ₀| and the CDPs' speckle contrast per epoch; epoch 0 is the start (drift 0, the initial
    masks' contrast from ``metrics.json``)."""
    histories = {name: [{"epoch": 0, "mask_drift": 0.0, "speckle_contrast": r.metrics()["speckle_contrast_start"]},
                        *r.history()] for name, r in runs.items()}
    return plot_history(histories, ("mask_drift", "speckle_contrast"),
                        titles={"mask_drift": "mask drift |phi - phi_0| (rad)",
                                "speckle_contrast": "speckle contrast of the CDPs"})


def show_first_masks(runs: Mapping[str, Run], systems: Mapping[str, object]):
    """The first mask of each learned-optics run, before (φ₀, redrawn from the seed) and after training."""
    learned = [name for name, r in runs.items() if not _is_random(r)]
    return show_masks([systems[n].sensing.phi0[0] for n in learned],
                      [systems[n].sensing.phi.detach()[0] for n in learned],
                      [f"{n}, mask 1" for n in learned], suptitle="first mask of each learned-optics run")


def mask_problems(runs: Mapping[str, Run], systems: Mapping[str, object]) -> list[str]:
    """What is wrong with the loaded masks, if anything: a drift that is not the recorded one, a random
    baseline whose masks moved from their start. Empty when all is as recorded."""
    problems = []
    for name, system in systems.items():
        recorded = runs[name].metrics()["mask_drift_rad"]
        if not math.isclose(system.sensing.drift_rad(), recorded, abs_tol=1e-5):
            problems.append(f"{name}: drift {system.sensing.drift_rad():.6f} rad, recorded {recorded:.6f}")
        if _is_random(runs[name]) and (recorded != 0 or not bool((system.sensing.phi == system.sensing.phi0).all())):
            problems.append(f"{name}: the random baseline's masks moved")
    return problems
