"""What notebooks 03 and 04 (and the study's report) show of trained runs' optics: a table of scores and
mask drift (with a warning where the masks barely moved), the drift and speckle-contrast curves from the
start, mask phases before and after training (``show_masks``), and the checks that the loaded masks are the
recorded ones."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from prkd.learning.diagnostics import LOW_DRIFT_RAD
from prkd.registry import Run
import numpy as np
import torch

from prkd.views.plots import plot_history, to_numpy

__all__ = ["mask_problems", "plot_drift", "run_table", "show_first_masks", "show_masks", "wrapped_drift"]


def _is_random(run: Run) -> bool:
    return run.config().train.mode == "random"


def run_table(runs: Mapping[str, Run]) -> str:
    """One line per run (snapshots, test PSNR / SSIM, mask drift) and a warning for every learned-mask run
    whose masks moved less than ``LOW_DRIFT_RAD``: its comparison is about U-Nets more than masks."""
    width = max(len(name) for name in runs) + 2
    lines = [f"{'run':{width}s} {'snapshots':>9s} {'test PSNR (dB)':>15s} {'test SSIM':>10s} "
             f"{'mask drift (rad)':>17s}"]
    for name, run in runs.items():
        m = run.metrics()
        frozen = "  (masks frozen)" if _is_random(run) else ""
        lines.append(f"{name:{width}s} {run.config().optics.n_masks:9d} {m['test_psnr']:15.2f} "
                     f"{m['test_ssim']:10.3f} {m['mask_drift_rad']:17.3f}{frozen}")
    for name, run in runs.items():
        drift = run.metrics()["mask_drift_rad"]
        if not _is_random(run) and drift < LOW_DRIFT_RAD:
            lines.append(f"warning, {name}: masks moved only {drift:.3f} rad (< {LOW_DRIFT_RAD} rad): "
                         "this run compares U-Nets more than masks")
    return "\n".join(lines)


def plot_drift(runs: Mapping[str, Run]):
    """Mask drift |φ − φ₀| and the CDPs' speckle contrast per epoch; epoch 0 is the start (drift 0, the
    initial masks' contrast from ``metrics.json``)."""
    histories = {name: [{"epoch": 0, "mask_drift": 0.0,
                         "speckle_contrast": r.metrics()["speckle_contrast_start"]},
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
        moved = recorded != 0 or not bool((system.sensing.phi == system.sensing.phi0).all())
        if _is_random(runs[name]) and moved:
            problems.append(f"{name}: the random baseline's masks moved")
    return problems


def wrapped_drift(phases_before, phases_after) -> float:
    """Mean wrapped phase change |phi - phi0| in [0, pi] radians (as ``CDPSensing.drift_rad``, for any
    arrays)."""
    from prkd.physics.optics import wrapped_phase_change

    before = torch.as_tensor(to_numpy(phases_before), dtype=torch.float64)
    after = torch.as_tensor(to_numpy(phases_after), dtype=torch.float64)
    return float(wrapped_phase_change(before, after).mean())


def show_masks(phases_before, phases_after, titles: Sequence[str] | None = None, *, size: float = 2.2,
               suptitle: str | None = None):
    """Mask phases before (top row) and after (bottom row) training, wrapped to [0, 2 pi), cyclic colour map.

    Only e^{j phi} matters, so each phase is drawn modulo 2 pi on the cyclic ``twilight`` map (0 and 2 pi
    share a colour); each 'after' panel is titled with its drift, the mean wrapped |phi - phi0|
    (``wrapped_drift``).

    Args:
        phases_before: K (N, N) initial phases phi0 (radians), as a (K, N, N) tensor or a sequence.
        phases_after: the K trained phases phi, same shapes.
        titles: K labels (e.g. the run and the mask index), or None.
        size: panel side, inches.
    Returns:
        matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    before = [to_numpy(p) for p in phases_before]
    after = [to_numpy(p) for p in phases_after]
    if len(before) != len(after):
        raise ValueError(f"{len(before)} masks before training but {len(after)} after")
    k = len(before)
    fig, axes = plt.subplots(2, k, figsize=(size * k + 0.8, 2 * size + 0.5), squeeze=False)
    handle = None
    for i, (p0, p) in enumerate(zip(before, after)):
        label = titles[i] + "\n" if titles is not None else ""
        for row, (phase, title) in enumerate(((p0, "before: phi_0"),
                                              (p, f"after: phi, drift {wrapped_drift(p0, p):.3f} rad"))):
            ax = axes[row, i]
            handle = ax.imshow(np.remainder(phase, 2 * math.pi), cmap="twilight", vmin=0, vmax=2 * math.pi)
            ax.set_title((label if row == 0 else "") + title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    if handle is not None:
        bar = fig.colorbar(handle, ax=axes.ravel().tolist(), fraction=0.03, pad=0.03, label="phase (rad)")
        bar.set_ticks([0, math.pi, 2 * math.pi], labels=["0", "π", "2π"])
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return fig
